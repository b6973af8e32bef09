#!/bin/sh
# Regenerates the fixtures in this folder from the public captures: every UDP datagram and TCP
# segment with payload on a port-88 flow, one per line, as
#   <frame> <u|t> <stream> <c|s> <payload hex>
# where c = client to KDC (destination port 88) and s = KDC to client.
set -eu
cd "$(dirname "$0")"
ORA=/work/shared/oracles
CAP=/work/shared/captures
dump() {
    tshark -r "$1" -o tcp.desegment_tcp_streams:FALSE -Y '(tcp.port==88 and tcp.len>0) or udp.port==88' \
        -T fields -E separator=';' -e frame.number -e tcp.stream -e udp.stream -e tcp.dstport -e udp.dstport \
        -e tcp.payload -e udp.payload 2>/dev/null |
    awk -F';' '{ if ($2 != "") { p="t"; s=$2; d=$4; h=$6 } else { p="u"; s=$3; d=$5; h=$7 }
                 print $1, p, s, (d == 88 ? "c" : "s"), h }' > "$2"
}
dump "$ORA/suricata-verify/tests/bug-8278-krb5-03/baseline.2.flows.pcap" bug-8278.txt
dump "$ORA/suricata-verify/tests/krb5-kerberoasting/kerberoast.pcap" kerberoast.txt
dump "$ORA/suricata-verify/tests/krb5-probing/krb.pcap" probing.txt
dump "$ORA/zeek/testing/btest/Traces/krb/error-preauth-padata.pcap" error-preauth-padata.txt
dump "$ORA/zeek/testing/btest/Traces/krb/kinit.pcap" kinit.txt
for n in 14 15 16 17 36 38; do dump "$CAP/capture-$n.pcap" "capture-$n.txt"; done
dump "$CAP/capture-35.pcapng" capture-35.txt
# SMB Session Setup requests/responses carrying SPNEGO-wrapped Kerberos (AP-REQ / AP-REP).
dump_frames() {
    tshark -r "$1" -Y "$2" -T fields -E separator=';' -e frame.number -e tcp.stream -e tcp.dstport -e tcp.payload 2>/dev/null |
    awk -F';' '{ print $1, "t", $2, ($3 == 445 ? "c" : "s"), $4 }'
}
{
    dump_frames "$CAP/capture-35.pcapng" 'frame.number in {35,37,118,120}'
    dump_frames "$CAP/capture-37.pcap" 'frame.number in {6,7,8}'
} > smb.txt
