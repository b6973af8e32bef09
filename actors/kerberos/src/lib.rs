//! Kerberos 5 for NetMonitor: decoding of RFC 4120 messages carried over UDP and TCP (record
//! framing, request/response pairing) into the shared `KrbMessage` facts, and the detectors
//! that turn a stream of those facts into alerts (Kerberoasting, AS-REP roasting, brute force,
//! password spraying, user enumeration, weak or downgraded encryption, ticket renewal abuse).
//!
//! Pure code: no actix, no I/O. The pipeline owns one [`KrbFlow`] per flow, feeds it datagrams
//! or in-order stream bytes, and hands every decoded message with its event header to one
//! [`detect::KerberosDetector`].
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod actor;
pub mod detect;
pub mod flow;
pub mod parser;

pub use flow::{looks_like_krb_tcp, KrbAnomalies, KrbFlow, MAX_RECORD_LEN};
pub use parser::{find_krb_in_gss, looks_like_krb_udp, parse_message, KrbError};

#[cfg(test)]
mod fuzz;

/// Fixtures for the unit tests: packet payloads extracted from the public captures by
/// `testdata/extract.sh`.
#[cfg(test)]
pub(crate) mod testutil {
    use crate::flow::KrbFlow;
    use netmonitor_common::krb::KrbMessage;
    use netmonitor_common::Direction;
    use std::collections::HashMap;

    /// One UDP datagram or TCP segment payload.
    pub struct Seg {
        pub frame: u32,
        pub udp: bool,
        pub stream: u32,
        pub to_server: bool,
        pub bytes: Vec<u8>,
    }

    /// Decodes a hex string (test input only).
    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex digit"))
            .collect()
    }

    /// Loads `testdata/<name>`: lines of `<frame> <u|t> <stream> <c|s> <hex>`.
    pub fn load(name: &str) -> Vec<Seg> {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(f.len(), 5, "{path}: {l}");
                Seg {
                    frame: f[0].parse().expect("frame"),
                    udp: f[1] == "u",
                    stream: f[2].parse().expect("stream"),
                    to_server: f[3] == "c",
                    bytes: hex(f[4]),
                }
            })
            .collect()
    }

    /// Feeds the segments in capture order, one `KrbFlow` per stream, and returns every
    /// decoded message in order.
    pub fn replay(segs: &[Seg]) -> Vec<KrbMessage> {
        let mut flows: HashMap<(bool, u32), KrbFlow> = HashMap::new();
        let mut out = Vec::new();
        for s in segs {
            let flow = flows.entry((s.udp, s.stream)).or_default();
            let dir = if s.to_server {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            if s.udp {
                out.extend(flow.on_udp(dir, &s.bytes));
            } else {
                flow.on_tcp(dir, &s.bytes, &mut out);
            }
        }
        for f in flows.values() {
            assert_eq!(f.anomalies().malformed, 0);
            assert_eq!(f.buffered_bytes(), 0, "no record left half-read");
        }
        out
    }
}
