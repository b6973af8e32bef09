//! Kerberos: one message as over UDP, the GSS-API search, and the TCP record framing of the same
//! bytes split at an input-chosen point.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netmonitor_common::Direction;
use netmonitor_kerberos::flow::KrbFlow;
use netmonitor_kerberos::parser::{find_krb_in_gss, parse_message};

fuzz_target!(|data: &[u8]| {
    let _ = parse_message(data);
    let _ = find_krb_in_gss(data);
    let mut udp = KrbFlow::new();
    std::hint::black_box(udp.on_udp(Direction::ToServer, data));
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(cut) * rest.len() / 256;
    let (a, b) = rest.split_at(at);
    let mut tcp = KrbFlow::new();
    let mut out = Vec::new();
    tcp.on_tcp(Direction::ToServer, a, &mut out);
    tcp.on_tcp(Direction::ToServer, b, &mut out);
    tcp.on_tcp_gap(Direction::ToClient);
    tcp.on_tcp(Direction::ToClient, rest, &mut out);
    std::hint::black_box(out);
});
