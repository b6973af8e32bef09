//! Development tool: runs the TLS and QUIC dissectors over stream dumps and prints one JSON line
//! per flow, to compare with other tools' output on real captures.
//!
//! Input files (as written by a `tshark -z follow,tcp,raw` helper): `NAME.c2s` / `NAME.s2c`,
//! each a sequence of `u32 big-endian length + segment bytes`, and `NAME.udp`, a sequence of
//! `b'C' | b'S'`, `u32 length`, datagram.
//!
//! Usage: `cargo run -p netmonitor-tls --example dissect_streams -- FILE.c2s|FILE.udp ...`

use netmonitor_common::{Direction, TlsHandshake};
use netmonitor_tls::quic::QuicFlowParser;
use netmonitor_tls::TlsFlowParser;
use std::path::Path;

fn segments(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let (Some(len), Some(tail)) = (rest.get(..4), rest.get(4..)) {
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(seg) = tail.get(..n) else { break };
        out.push(seg);
        rest = &tail[n..];
    }
    out
}

fn summary(name: &str, hs: Option<TlsHandshake>, extra: serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::json!({ "flow": name, "extra": extra });
    if let Some(hs) = hs {
        let leaf = hs.certificates.first();
        v["sni"] = serde_json::json!(hs.sni);
        v["version"] = serde_json::json!(hs.version);
        v["ja3"] = serde_json::json!(hs.ja3.as_ref().map(|f| &f.string));
        v["ja3_hash"] = serde_json::json!(hs.ja3.as_ref().map(|f| &f.hash));
        v["ja3s"] = serde_json::json!(hs.ja3s.as_ref().map(|f| &f.string));
        v["ja4"] = serde_json::json!(hs.ja4);
        v["quic_version"] = serde_json::json!(hs.quic_version);
        v["subject"] = serde_json::json!(leaf.map(|c| &c.subject));
        v["issuer"] = serde_json::json!(leaf.map(|c| &c.issuer));
        v["serial"] = serde_json::json!(leaf.map(|c| &c.serial));
        v["fingerprint"] = serde_json::json!(leaf.map(|c| &c.fingerprint));
        v["notbefore"] =
            serde_json::json!(leaf.map(|c| netmonitor_common::time::format_utc(c.not_before)));
        v["notafter"] =
            serde_json::json!(leaf.map(|c| netmonitor_common::time::format_utc(c.not_after)));
        v["sans"] = serde_json::json!(leaf.map(|c| c.sans.len()));
        v["certs"] = serde_json::json!(hs.certificates.len());
    }
    v
}

fn main() {
    for arg in std::env::args().skip(1) {
        let path = Path::new(&arg);
        let name = path.display().to_string();
        if arg.ends_with(".udp") {
            let data = std::fs::read(path).unwrap_or_default();
            let mut p = QuicFlowParser::new();
            let mut events = Vec::new();
            let mut rest = data.as_slice();
            while rest.len() >= 5 {
                let dir = if rest[0] == b'C' {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                let n = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
                let Some(d) = rest.get(5..5 + n) else { break };
                p.feed_datagram(dir, d);
                events.extend(p.poll_event());
                rest = &rest[5 + n..];
            }
            events.extend(p.finish());
            let extra = serde_json::json!(format!("{:?}", p.anomalies()));
            if events.is_empty() {
                println!("{}", summary(&name, None, extra.clone()));
            }
            for e in events {
                println!("{}", summary(&name, Some(e), extra.clone()));
            }
            continue;
        }
        let Some(base) = arg.strip_suffix(".c2s") else {
            continue;
        };
        let c2s = std::fs::read(path).unwrap_or_default();
        let s2c = std::fs::read(format!("{base}.s2c")).unwrap_or_default();
        let (c, s) = (segments(&c2s), segments(&s2c));
        // Alternate: each client segment, then server segments until the server has sent as
        // much as... we do not know timing, so feed client segments until the hello, then all
        // of the server, then the rest of the client.
        let mut p = TlsFlowParser::new();
        let mut events = Vec::new();
        let mut ci = 0;
        while ci < c.len() {
            p.feed(Direction::ToServer, c[ci]);
            events.extend(p.poll_event());
            ci += 1;
            if netmonitor_tls::looks_like_tls(c[ci - 1]) {
                break;
            }
        }
        for seg in &s {
            p.feed(Direction::ToClient, seg);
            events.extend(p.poll_event());
        }
        for seg in &c[ci..] {
            p.feed(Direction::ToServer, seg);
            events.extend(p.poll_event());
        }
        events.extend(p.finish());
        let extra = serde_json::json!({
            "anomalies": format!("{:?}", p.anomalies()),
            "swapped": p.roles_swapped(),
            "done": p.is_done(),
        });
        if events.is_empty() {
            println!("{}", summary(&name, None, extra.clone()));
        }
        for e in events {
            println!("{}", summary(&name, Some(e), extra.clone()));
        }
    }
}
