//! Whole conversations and traffic mixes written as pcap.

use super::build;
use super::messages::*;
use super::XorShift;
use crate::decode::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use crate::ring::{write_pcap_header, write_pcap_record};
use netmonitor_common::Timestamp;
use std::io::{self, Write};
use std::net::Ipv4Addr;

/// Kinds and amounts of synthetic traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct TrafficMix {
    /// Generator seed.
    pub seed: u64,
    /// First packet time.
    pub start: Timestamp,
    /// Complete TLS sessions (handshake, certificate, some application data, close).
    pub tls_sessions: usize,
    /// Kerberos AS + TGS exchanges over UDP.
    pub kerberos_exchanges: usize,
    /// DNS query/answer pairs.
    pub dns_queries: usize,
    /// Ports probed by one SYN scan (closed ports answer RST).
    pub port_scan_ports: usize,
    /// Spoofed SYNs of a SYN flood.
    pub syn_flood_packets: usize,
    /// Concurrent bulk TCP flows.
    pub bulk_flows: usize,
    /// Data packets per bulk flow (64–1500 bytes on the wire).
    pub bulk_packets_per_flow: usize,
}

impl Default for TrafficMix {
    fn default() -> Self {
        TrafficMix {
            seed: 1,
            start: Timestamp(1_700_000_000_000_000),
            tls_sessions: 20,
            kerberos_exchanges: 10,
            dns_queries: 50,
            port_scan_ports: 200,
            syn_flood_packets: 200,
            bulk_flows: 10,
            bulk_packets_per_flow: 100,
        }
    }
}

impl TrafficMix {
    /// A mix of roughly `packets` packets dominated by bulk data, with every kind present;
    /// used for throughput measurements.
    pub fn benchmark(packets: usize) -> Self {
        let bulk = packets * 7 / 10;
        TrafficMix {
            seed: 42,
            tls_sessions: (packets / 200).max(1),
            kerberos_exchanges: (packets / 400).max(1),
            dns_queries: (packets / 100).max(1),
            port_scan_ports: (packets / 40).max(1),
            syn_flood_packets: (packets / 20).max(1),
            bulk_flows: (bulk / 500).max(1),
            bulk_packets_per_flow: 500,
            ..TrafficMix::default()
        }
    }
}

/// What a synthesizer wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynthSummary {
    /// Frames written.
    pub packets: u64,
    /// Frame bytes written.
    pub bytes: u64,
    /// TCP connections opened with a handshake.
    pub tcp_connections: u64,
    /// UDP request/response pairs.
    pub udp_exchanges: u64,
}

/// A TCP connection in progress.
#[derive(Clone, Copy, Debug)]
pub struct TcpConn {
    /// Client address.
    pub client: [u8; 4],
    /// Server address.
    pub server: [u8; 4],
    /// Client port.
    pub cport: u16,
    /// Server port.
    pub sport: u16,
    /// Next client sequence number.
    pub cseq: u32,
    /// Next server sequence number.
    pub sseq: u32,
}

/// Writes synthetic conversations into a pcap.
pub struct Synth<W: Write> {
    out: W,
    rng: XorShift,
    ts: Timestamp,
    summary: SynthSummary,
}

/// Maximum TCP payload per synthetic segment.
const MSS: usize = 1446;

impl<W: Write> Synth<W> {
    /// Starts a pcap (Ethernet, microseconds) on `out`.
    pub fn new(mut out: W, seed: u64, start: Timestamp) -> io::Result<Self> {
        write_pcap_header(&mut out, crate::decode::linktype::ETHERNET, 65_535)?;
        Ok(Synth {
            out,
            rng: XorShift::new(seed),
            ts: start,
            summary: SynthSummary::default(),
        })
    }

    /// The generator, for callers building their own payloads.
    pub fn rng(&mut self) -> &mut XorShift {
        &mut self.rng
    }

    /// Current packet time.
    pub fn now(&self) -> Timestamp {
        self.ts
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, micros: i64) {
        self.ts = Timestamp(self.ts.0 + micros);
    }

    /// Writes one frame at the current time and advances the clock a little.
    pub fn frame(&mut self, data: &[u8]) -> io::Result<()> {
        write_pcap_record(&mut self.out, self.ts, data, data.len() as u32)?;
        self.summary.packets += 1;
        self.summary.bytes += data.len() as u64;
        let step = self.rng.range(5, 200) as i64;
        self.advance(step);
        Ok(())
    }

    /// SYN, SYN-ACK, ACK.
    pub fn tcp_open(
        &mut self,
        client: [u8; 4],
        server: [u8; 4],
        cport: u16,
        sport: u16,
    ) -> io::Result<TcpConn> {
        let cisn = self.rng.next_u64() as u32;
        let sisn = self.rng.next_u64() as u32;
        self.frame(&build::eth_ipv4_tcp(
            client, server, cport, sport, cisn, 0, SYN, b"",
        ))?;
        self.frame(&build::eth_ipv4_tcp(
            server,
            client,
            sport,
            cport,
            sisn,
            cisn.wrapping_add(1),
            SYN | ACK,
            b"",
        ))?;
        self.frame(&build::eth_ipv4_tcp(
            client,
            server,
            cport,
            sport,
            cisn.wrapping_add(1),
            sisn.wrapping_add(1),
            ACK,
            b"",
        ))?;
        self.summary.tcp_connections += 1;
        Ok(TcpConn {
            client,
            server,
            cport,
            sport,
            cseq: cisn.wrapping_add(1),
            sseq: sisn.wrapping_add(1),
        })
    }

    /// Sends `data` in MSS-sized segments, from the client when `to_server`.
    pub fn tcp_send(&mut self, c: &mut TcpConn, to_server: bool, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(MSS) {
            let f = if to_server {
                build::eth_ipv4_tcp(
                    c.client,
                    c.server,
                    c.cport,
                    c.sport,
                    c.cseq,
                    c.sseq,
                    ACK | PSH,
                    chunk,
                )
            } else {
                build::eth_ipv4_tcp(
                    c.server,
                    c.client,
                    c.sport,
                    c.cport,
                    c.sseq,
                    c.cseq,
                    ACK | PSH,
                    chunk,
                )
            };
            self.frame(&f)?;
            if to_server {
                c.cseq = c.cseq.wrapping_add(chunk.len() as u32);
            } else {
                c.sseq = c.sseq.wrapping_add(chunk.len() as u32);
            }
        }
        Ok(())
    }

    /// FIN from both sides and the final ACK.
    pub fn tcp_close(&mut self, c: &mut TcpConn) -> io::Result<()> {
        self.frame(&build::eth_ipv4_tcp(
            c.client,
            c.server,
            c.cport,
            c.sport,
            c.cseq,
            c.sseq,
            FIN | ACK,
            b"",
        ))?;
        c.cseq = c.cseq.wrapping_add(1);
        self.frame(&build::eth_ipv4_tcp(
            c.server,
            c.client,
            c.sport,
            c.cport,
            c.sseq,
            c.cseq,
            FIN | ACK,
            b"",
        ))?;
        c.sseq = c.sseq.wrapping_add(1);
        self.frame(&build::eth_ipv4_tcp(
            c.client, c.server, c.cport, c.sport, c.cseq, c.sseq, ACK, b"",
        ))
    }

    /// A TLS 1.2 session: handshake with SNI and certificate, a little application data.
    pub fn tls_session(
        &mut self,
        client: [u8; 4],
        server: [u8; 4],
        cport: u16,
        sni: &str,
    ) -> io::Result<()> {
        let mut c = self.tcp_open(client, server, cport, 443)?;
        let hello = tls_client_hello(&mut self.rng, sni);
        self.tcp_send(&mut c, true, &hello)?;
        let now = self.ts;
        let flight = tls_server_flight(&mut self.rng, sni, now);
        self.tcp_send(&mut c, false, &flight)?;
        let mut cke = handshake(16, &{
            let mut k = vec![32u8];
            k.extend(self.rng.bytes(32));
            k
        });
        cke = tls_records(22, 0x0303, &cke);
        cke.extend(tls_records(20, 0x0303, &[1]));
        cke.extend(tls_records(22, 0x0303, &self.rng.bytes(40)));
        self.tcp_send(&mut c, true, &cke)?;
        let mut fin = tls_records(20, 0x0303, &[1]);
        fin.extend(tls_records(22, 0x0303, &self.rng.bytes(40)));
        self.tcp_send(&mut c, false, &fin)?;
        let req = tls_records(23, 0x0303, &self.rng.bytes(400));
        self.tcp_send(&mut c, true, &req)?;
        let n = self.rng.range(500, 6000) as usize;
        let resp = tls_records(23, 0x0303, &self.rng.bytes(n));
        self.tcp_send(&mut c, false, &resp)?;
        self.tcp_close(&mut c)
    }

    /// A UDP request and its response.
    pub fn udp_exchange(
        &mut self,
        client: [u8; 4],
        server: [u8; 4],
        cport: u16,
        sport: u16,
        req: &[u8],
        resp: &[u8],
    ) -> io::Result<()> {
        self.frame(&build::eth_ipv4_udp(client, server, cport, sport, req))?;
        self.frame(&build::eth_ipv4_udp(server, client, sport, cport, resp))?;
        self.summary.udp_exchanges += 1;
        Ok(())
    }

    /// Kerberos over UDP/88: AS-REQ/AS-REP for `user`, then TGS-REQ/TGS-REP for `service`
    /// (whose ticket uses `ticket_etype`, e.g. 23 = rc4-hmac as in Kerberoasting).
    pub fn kerberos_exchange(
        &mut self,
        client: [u8; 4],
        kdc: [u8; 4],
        realm: &str,
        user: &str,
        service: &[&str],
        ticket_etype: i64,
    ) -> io::Result<()> {
        let krbtgt = ["krbtgt", realm];
        let mut k = KrbSpec {
            realm,
            cname: user,
            sname: &krbtgt,
            etypes: &[18, 17, 23],
            ticket_etype: 18,
            reply_etype: 18,
            now: self.ts,
        };
        let cport = self.rng.range(49_152, 65_000) as u16;
        let req = krb_request(&mut self.rng, &k, false);
        let rep = krb_reply(&mut self.rng, &k, false);
        self.udp_exchange(client, kdc, cport, 88, &req, &rep)?;
        k.sname = service;
        k.ticket_etype = ticket_etype;
        let req = krb_request(&mut self.rng, &k, true);
        let rep = krb_reply(&mut self.rng, &k, true);
        let cport = self.rng.range(49_152, 65_000) as u16;
        self.udp_exchange(client, kdc, cport, 88, &req, &rep)
    }

    /// A DNS lookup of `name` over UDP/53 with one A answer.
    pub fn dns_lookup(&mut self, client: [u8; 4], server: [u8; 4], name: &str) -> io::Result<()> {
        let id = self.rng.next_u64() as u16;
        let q = dns_query(id, name, 1);
        let a = dns_answer(&q, Ipv4Addr::new(192, 0, 2, (id % 250) as u8 + 1));
        let cport = self.rng.range(49_152, 65_000) as u16;
        self.udp_exchange(client, server, cport, 53, &q, &a)
    }

    /// A SYN scan of `ports` ports starting at 1: closed ports answer RST-ACK, every tenth
    /// is open and answers SYN-ACK (then the scanner resets).
    pub fn port_scan(&mut self, scanner: [u8; 4], target: [u8; 4], ports: usize) -> io::Result<()> {
        let sport = self.rng.range(40_000, 60_000) as u16;
        for p in 1..=ports.min(65_535) as u16 {
            let seq = self.rng.next_u64() as u32;
            self.frame(&build::eth_ipv4_tcp(
                scanner, target, sport, p, seq, 0, SYN, b"",
            ))?;
            if p % 10 == 0 {
                let sseq = self.rng.next_u64() as u32;
                self.frame(&build::eth_ipv4_tcp(
                    target,
                    scanner,
                    p,
                    sport,
                    sseq,
                    seq.wrapping_add(1),
                    SYN | ACK,
                    b"",
                ))?;
                self.frame(&build::eth_ipv4_tcp(
                    scanner,
                    target,
                    sport,
                    p,
                    seq.wrapping_add(1),
                    0,
                    RST,
                    b"",
                ))?;
            } else {
                self.frame(&build::eth_ipv4_tcp(
                    target,
                    scanner,
                    p,
                    sport,
                    0,
                    seq.wrapping_add(1),
                    RST | ACK,
                    b"",
                ))?;
            }
        }
        Ok(())
    }

    /// `count` SYNs from random spoofed sources to `target:port`.
    pub fn syn_flood(&mut self, target: [u8; 4], port: u16, count: usize) -> io::Result<()> {
        for _ in 0..count {
            let r = self.rng.next_u64();
            let src = [
                (r >> 24) as u8 | 1,
                (r >> 32) as u8,
                (r >> 40) as u8,
                (r >> 48) as u8,
            ];
            self.frame(&build::eth_ipv4_tcp(
                src,
                target,
                (r & 0xFFFF) as u16 | 1024,
                port,
                (r >> 16) as u32,
                0,
                SYN,
                b"",
            ))?;
            self.ts = Timestamp(self.ts.0 - self.rng.range(0, 150) as i64);
        }
        Ok(())
    }

    /// `flows` concurrent TCP transfers, interleaved, each with `packets` server-to-client data
    /// segments of 64–1500 bytes on the wire plus client ACKs every other segment.
    pub fn bulk(
        &mut self,
        client_base: [u8; 4],
        server: [u8; 4],
        flows: usize,
        packets: usize,
    ) -> io::Result<()> {
        let mut conns = Vec::with_capacity(flows);
        for i in 0..flows {
            let client = [
                client_base[0],
                client_base[1],
                (i >> 8) as u8,
                (i & 0xFF) as u8 | 1,
            ];
            conns.push(self.tcp_open(client, server, 30_000 + (i % 30_000) as u16, 8080)?);
        }
        let mut payload = vec![0u8; 1500];
        for n in 0..packets {
            for c in conns.iter_mut() {
                // Wire size 64..=1500 → TCP payload 10..=1446 (54 bytes of headers).
                let wire = self.rng.range(64, 1500) as usize;
                let len = wire - 54;
                let fill = (self.rng.next_u64() & 0xFF) as u8;
                payload[..len].fill(fill);
                let f = build::eth_ipv4_tcp(
                    c.server,
                    c.client,
                    c.sport,
                    c.cport,
                    c.sseq,
                    c.cseq,
                    ACK,
                    &payload[..len],
                );
                self.frame(&f)?;
                c.sseq = c.sseq.wrapping_add(len as u32);
                if n % 2 == 1 {
                    let a = build::eth_ipv4_tcp(
                        c.client, c.server, c.cport, c.sport, c.cseq, c.sseq, ACK, b"",
                    );
                    self.frame(&a)?;
                }
            }
        }
        for c in conns.iter_mut() {
            self.tcp_close(c)?;
        }
        Ok(())
    }

    /// Flushes and returns the counts.
    pub fn finish(mut self) -> io::Result<SynthSummary> {
        self.out.flush()?;
        Ok(self.summary)
    }
}

/// Writes a whole traffic mix as one pcap.
pub fn write_mix<W: Write>(out: W, mix: &TrafficMix) -> io::Result<SynthSummary> {
    let mut s = Synth::new(out, mix.seed, mix.start)?;
    let client = [10, 1, 0, 10];
    for i in 0..mix.tls_sessions {
        let sni = format!("www{}.example.test", i % 97);
        let c = [10, 1, (i >> 8) as u8, (i & 0xFF) as u8 | 2];
        let port = 40_000 + (i % 20_000) as u16;
        s.tls_session(c, [198, 51, 100, 10], port, &sni)?;
    }
    for i in 0..mix.kerberos_exchanges {
        let user = format!("user{i}");
        let etype = if i % 5 == 0 { 23 } else { 18 };
        s.kerberos_exchange(
            client,
            [10, 1, 0, 2],
            "EXAMPLE.TEST",
            &user,
            &["cifs", "fs1.example.test"],
            etype,
        )?;
    }
    for i in 0..mix.dns_queries {
        s.dns_lookup(client, [10, 1, 0, 3], &format!("host{i}.example.test"))?;
    }
    if mix.port_scan_ports > 0 {
        s.port_scan([10, 9, 9, 9], [10, 1, 0, 20], mix.port_scan_ports)?;
    }
    if mix.syn_flood_packets > 0 {
        s.syn_flood([10, 1, 0, 30], 80, mix.syn_flood_packets)?;
    }
    if mix.bulk_flows > 0 {
        s.bulk(
            [10, 2, 0, 0],
            [10, 1, 0, 40],
            mix.bulk_flows,
            mix.bulk_packets_per_flow,
        )?;
    }
    s.finish()
}

/// Random traffic on well-known ports: `packets` packets over `flows` flows between random
/// hosts of 10/8 and 192.168/16, to ports 443, 80, 53, 88, 22, 8443 and 3389; three quarters
/// TCP (PSH/ACK segments without a handshake, sequence numbers advancing per packet), one
/// quarter UDP; frame sizes 60/128/576/1514 in the ratio 4:1:1:4; random payloads. The payloads
/// look like nothing the dissectors know, on the ports where they look hardest.
pub fn write_random_mix<W: Write>(
    out: W,
    packets: usize,
    flows: usize,
    seed: u64,
) -> io::Result<SynthSummary> {
    const PORTS: [u16; 7] = [443, 80, 53, 88, 22, 8443, 3389];
    const SIZES: [usize; 10] = [60, 60, 60, 60, 128, 576, 1514, 1514, 1514, 1514];
    let mut s = Synth::new(out, seed, Timestamp::from_secs_micros(1_700_000_000, 0))?;
    let mut rng = XorShift::new(seed ^ 0x9e37_79b9);
    struct F {
        a: [u8; 4],
        b: [u8; 4],
        sport: u16,
        dport: u16,
        tcp: bool,
        /// Next sequence number per direction (client, server).
        seq: [u32; 2],
    }
    let flows = flows.max(1);
    let mut table: Vec<F> = (0..flows)
        .map(|i| {
            let host = |r: &mut XorShift| {
                let v = r.next_u64();
                if v & 1 == 0 {
                    [10, (v >> 8) as u8, (v >> 16) as u8, (v >> 24) as u8 | 1]
                } else {
                    [192, 168, (v >> 8) as u8, (v >> 16) as u8 | 1]
                }
            };
            F {
                a: host(&mut rng),
                b: host(&mut rng),
                sport: 1024 + (rng.next_u64() % 60_000) as u16,
                dport: PORTS[i % PORTS.len()],
                tcp: i % 4 != 0,
                seq: [rng.next_u64() as u32, rng.next_u64() as u32],
            }
        })
        .collect();
    let mut payload = vec![0u8; 1514];
    for i in 0..packets {
        let f = &mut table[(rng.next_u64() as usize) % flows];
        let frame_len = SIZES[i % SIZES.len()];
        let headers = if f.tcp { 14 + 20 + 20 } else { 14 + 20 + 8 };
        let n = frame_len.saturating_sub(headers);
        rng.fill(&mut payload[..n]);
        let frame = if f.tcp {
            let to_server = rng.next_u64() & 3 != 0;
            let (src, dst, sp, dp) = if to_server {
                (f.a, f.b, f.sport, f.dport)
            } else {
                (f.b, f.a, f.dport, f.sport)
            };
            let d = usize::from(!to_server);
            let (seq, ack) = (f.seq[d], f.seq[1 - d]);
            f.seq[d] = seq.wrapping_add(n as u32);
            build::eth_ipv4_tcp(src, dst, sp, dp, seq, ack, ACK | PSH, &payload[..n])
        } else {
            build::eth_ipv4_udp(f.a, f.b, f.sport, f.dport, &payload[..n])
        };
        s.frame(&frame)?;
    }
    s.finish()
}
