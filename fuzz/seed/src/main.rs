//! `netmonitor-fuzz-seed OUT_DIR`: writes one corpus directory per fuzz target, seeded from every
//! capture in `../shared` (found from this crate's manifest directory) and a few synthesized
//! inputs, so the fuzzers start from real traffic instead of from nothing.

use netmonitor_capture::decode::linktype;
use netmonitor_capture::pipeline::{AppHandler, Pipeline, PipelineConfig};
use netmonitor_capture::source::PcapFileSource;
use netmonitor_capture::flow::FlowInfo;
use netmonitor_common::{Direction, FlowRecord, Timestamp};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Link types in the order the `decode` target picks them by its first byte.
const LINKTYPES: [u32; 12] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::NULL,
    linktype::LOOP,
    linktype::PPP,
    linktype::PPP_HDLC,
    linktype::RAW_BSD,
    linktype::RAW_OPENBSD,
    linktype::IPV4,
    linktype::IPV6,
];
/// Seeds kept per target at most (libFuzzer minimises further).
const MAX_SEEDS: usize = 2000;
/// Longest seed written.
const MAX_SEED_LEN: usize = 64 * 1024;

struct Corpus {
    out: PathBuf,
    seen: HashSet<(String, u64)>,
    counts: std::collections::BTreeMap<String, usize>,
}

impl Corpus {
    fn add(&mut self, target: &str, data: &[u8]) {
        if data.is_empty() || data.len() > MAX_SEED_LEN {
            return;
        }
        let n = self.counts.entry(target.to_string()).or_default();
        if *n >= MAX_SEEDS {
            return;
        }
        let h = fnv(data);
        if !self.seen.insert((target.to_string(), h)) {
            return;
        }
        *n += 1;
        let dir = self.out.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(format!("{h:016x}")), data).expect("seed file");
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Default)]
struct Stream {
    client: Vec<u8>,
    server: Vec<u8>,
    udp: Vec<(Direction, Vec<u8>)>,
}

/// Collects what the dissectors of each flow would see.
#[derive(Default)]
struct Collector {
    flows: Vec<(FlowInfo, Stream)>,
}

const KEEP: usize = 16 * 1024;

impl AppHandler for Collector {
    type State = Stream;

    fn on_tcp_data(&mut self, _f: &mut FlowInfo, s: &mut Stream, dir: Direction, data: &[u8], _ts: Timestamp) -> bool {
        let buf = if dir == Direction::ToServer { &mut s.client } else { &mut s.server };
        let room = KEEP.saturating_sub(buf.len());
        buf.extend_from_slice(&data[..data.len().min(room)]);
        s.client.len() < KEEP || s.server.len() < KEEP
    }

    fn on_udp(&mut self, _f: &mut FlowInfo, s: &mut Stream, dir: Direction, payload: &[u8], _ts: Timestamp) {
        if s.udp.len() < 16 {
            s.udp.push((dir, payload.to_vec()));
        }
    }

    fn on_flow_end(&mut self, flow: &FlowInfo, state: Stream, _record: FlowRecord) {
        self.flows.push((*flow, state));
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng")) {
            out.push(p);
        }
    }
}

/// Certificates inside a server's TLS stream (handshake type 11 in plaintext records).
fn certificates(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut hs = Vec::new();
    let mut rest = stream;
    while let [22, _, _, a, b, tail @ ..] = rest {
        let n = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        hs.extend_from_slice(&tail[..n]);
        rest = &tail[n..];
    }
    let u24 = |b: &[u8]| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
    let mut certs = Vec::new();
    let mut h = hs.as_slice();
    while h.len() >= 4 {
        let len = u24(&h[1..4]).min(h.len() - 4);
        let body = &h[4..4 + len];
        if h[0] == 11 && body.len() >= 3 {
            let mut list = &body[3..];
            while list.len() >= 3 {
                let n = u24(&list[..3]).min(list.len() - 3);
                certs.push(list[3..3 + n].to_vec());
                list = &list[3 + n..];
            }
        }
        h = &h[4 + len..];
    }
    certs
}

fn main() {
    let out = std::env::args_os().nth(1).map(PathBuf::from).expect("usage: netmonitor-fuzz-seed OUT_DIR");
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let mut files = Vec::new();
    for d in ["oracles", "captures"] {
        collect(&shared.join(d), &mut files);
    }
    let mut c = Corpus { out, seen: HashSet::new(), counts: Default::default() };
    for f in &files {
        if let Ok(bytes) = std::fs::read(f) {
            c.add("pcap", &bytes);
        }
        let Ok(mut src) = PcapFileSource::open(f) else { continue };
        let mut pipe = Pipeline::new(PipelineConfig::default(), Collector::default()).expect("pipeline");
        let mut sensor_seed = Vec::new();
        let mut n = 0usize;
        while let Ok(Some(p)) = src.next_packet() {
            if let Some(i) = LINKTYPES.iter().position(|l| *l == p.linktype) {
                let mut s = vec![i as u8];
                s.extend_from_slice(p.data);
                c.add("decode", &s);
            }
            if p.linktype == linktype::ETHERNET && n < 64 && p.data.len() < 4096 {
                sensor_seed.extend_from_slice(&(p.data.len() as u16).to_be_bytes());
                sensor_seed.extend_from_slice(p.data);
                n += 1;
            }
            pipe.process(&p);
        }
        c.add("sensor", &sensor_seed);
        pipe.finish();
        for (info, s) in std::mem::take(&mut pipe.handler_mut().flows) {
            let ports = [info.key.src_port, info.key.dst_port];
            let has = |p: u16| ports.contains(&p);
            if !s.client.is_empty() || !s.server.is_empty() {
                let total = s.client.len() + s.server.len();
                let cut = (s.client.len() * 256 / total.max(1)).min(255) as u8;
                let mut two = vec![cut];
                two.extend_from_slice(&s.client);
                two.extend_from_slice(&s.server);
                if s.client.first() == Some(&22) || s.server.first() == Some(&22) {
                    c.add("tls", &two);
                    for cert in certificates(&s.server).into_iter().chain(certificates(&s.client)) {
                        c.add("x509", &cert);
                    }
                }
                if has(88) {
                    c.add("kerberos", &two);
                }
                // the stream as 200-byte in-order segments
                let mut segs = Vec::new();
                for (i, chunk) in s.client.chunks(200).take(40).enumerate() {
                    segs.extend_from_slice(&[0, 0x18]);
                    let delta: i16 = if i == 0 { 0 } else { 200 };
                    segs.extend_from_slice(&delta.to_be_bytes());
                    segs.push(chunk.len().min(255) as u8);
                    segs.extend_from_slice(&chunk[..chunk.len().min(255)]);
                }
                c.add("reassembly", &segs);
            }
            let mut quic = Vec::new();
            for (dir, p) in &s.udp {
                if has(53) || has(5353) || has(5355) {
                    c.add("dns", p);
                }
                if has(67) || has(68) {
                    c.add("dhcp", p);
                }
                if has(88) {
                    c.add("kerberos", p);
                }
                if has(443) {
                    let flag = if *dir == Direction::ToClient { 0x8000 } else { 0 };
                    quic.extend_from_slice(&((p.len() as u16 & 0x7fff) | flag).to_be_bytes());
                    quic.extend_from_slice(p);
                }
            }
            c.add("quic", &quic);
        }
    }
    let mut rng = netmonitor_capture::synth::XorShift::new(7);
    let now = Timestamp::from_secs_micros(1_750_000_000, 0);
    for cn in ["a.example", "very-long-name.subdomain.example.org", "x"] {
        c.add("x509", &netmonitor_capture::synth::x509_certificate(&mut rng, cn, now));
    }
    for msg in [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"analyze_ip","arguments":{"ip":"10.0.0.1"},"_meta":{"progressToken":7}}}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}]"#,
        r#"{"jsonrpc":"2.0","id":3,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"x"}}"#,
    ] {
        c.add("jsonrpc", msg.as_bytes());
    }
    for (target, n) in &c.counts {
        println!("{target}: {n} seeds");
    }
}
