//! What the behaviour detections cost.
//!
//! - Replay cost: the mixed benchmark capture and the TLS capture replayed with the behaviour
//!   actor on and off (`[detection.behaviour] enabled = false`), best of 7 alternating runs; the
//!   ratio is the cost (goal: at most 10%).
//! - Memory under a spoofed-source flood: the detector alone, fed SYN probes from a million
//!   random sources at random ports, with its tables bounded by `max_tracked`; the heap it holds
//!   (counted by a wrapping allocator) per tracked entry, and the evictions that kept it bounded.
//!
//! Detection latency (deciding packet → alert) is measured live by
//! `SCENARIO=dns_tunnel cargo bench --bench alert_latency` (root).
//!
//! Run: `cargo bench --bench behaviour` (PACKETS=N sizes the mixed capture, TLS_FLOWS=N the TLS
//! one, SOURCES=N the flood, MAX_TRACKED=N the bound, KEEP=dir keeps the captures).

use netmonitor_behaviour::{BehaviourConfig, BehaviourDetector};
use netmonitor_capture::synth::{write_mix, TrafficMix, XorShift};
use netmonitor_common::event::ipproto;
use netmonitor_common::{Event, EventHeader, EventKind, FlowKey, FlowRecord, FlowStart, Timestamp};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Bytes currently allocated through the global allocator.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[path = "support/mod.rs"]
mod support;

use support::env_or;

fn replay_cost(dir: &Path, name: &str, mix: &TrafficMix) {
    let pcap = dir.join(format!("{name}.pcap"));
    let summary = write_mix(BufWriter::new(std::fs::File::create(&pcap).unwrap()), mix).unwrap();
    let (on, off) = (dir.join("on.toml"), dir.join("off.toml"));
    std::fs::write(&on, "").unwrap();
    std::fs::write(&off, "[detection.behaviour]\nenabled = false\n").unwrap();
    let (without, with) = support::best_off_on(7, Some(&off), Some(&on), &pcap);
    println!(
        "  replay, {name} capture ({} packets): behaviour off {without:.3} s, on {with:.3} s: \
         ratio {:.3} ({:+.1}%, best of 7, alternating)",
        summary.packets,
        with / without,
        (with / without - 1.0) * 100.0
    );
}

/// A SYN probe from a spoofed source: its flow start and its unanswered flow record.
fn probe(rng: &mut XorShift, n: u64) -> [Event; 2] {
    let src = IpAddr::V4(Ipv4Addr::from(
        0x0a00_0000 | (rng.next_u64() as u32 & 0x00ff_ffff),
    ));
    let ts = Timestamp(1_767_225_600_000_000 + n as i64 * 100);
    let header = EventHeader {
        ts,
        flow_id: n,
        key: FlowKey {
            src_ip: src,
            src_port: 40_000,
            dst_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            dst_port: 1 + (rng.next_u64() % 65_000) as u16,
            proto: ipproto::TCP,
        },
    };
    let record = FlowRecord {
        pkts_toserver: 1,
        bytes_toserver: 60,
        start: ts,
        end: ts,
        state: "new".into(),
        reason: "timeout".into(),
        tcp_flags: 0x02,
        tcp_flags_toserver: 0x02,
        ..FlowRecord::default()
    };
    [
        Event {
            header: header.clone(),
            kind: EventKind::FlowStart(FlowStart {
                tcp_flags: 0x02,
                iface: 0,
            }),
        },
        Event {
            header,
            kind: EventKind::Flow(record),
        },
    ]
}

fn flood_memory() {
    let sources = env_or("SOURCES", 1_000_000);
    let cfg = BehaviourConfig {
        max_tracked: env_or("MAX_TRACKED", 20_000) as usize,
        ..BehaviourConfig::default()
    };
    let bound = cfg.max_tracked;
    let before = LIVE.load(Ordering::Relaxed);
    let mut d = BehaviourDetector::new(cfg);
    let mut rng = XorShift::new(3);
    let mut out = Vec::new();
    let mut peak = 0isize;
    for n in 0..sources {
        for ev in probe(&mut rng, n) {
            d.inspect(&ev, &mut out);
        }
        out.clear();
        if n % 10_000 == 0 {
            peak = peak.max(LIVE.load(Ordering::Relaxed) - before);
        }
    }
    let held = LIVE.load(Ordering::Relaxed) - before;
    let s = d.stats();
    println!(
        "  spoofed-source flood: {sources} sources, max_tracked {bound} per table: {} entries \
         tracked, {} evicted; heap held {:.1} MiB (peak {:.1} MiB), {:.0} bytes per tracked entry",
        s.tracked,
        s.evicted,
        held as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        held as f64 / s.tracked.max(1) as f64
    );
}

fn main() {
    println!("behaviour bench");
    // KEEP=dir keeps the captures there (to profile a replay by hand).
    let tmp = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("KEEP").map(std::path::PathBuf::from);
    let dir = kept.as_deref().unwrap_or(tmp.path());
    replay_cost(
        dir,
        "mixed",
        &TrafficMix::benchmark(env_or("PACKETS", 500_000) as usize),
    );
    replay_cost(
        dir,
        "tls",
        &TrafficMix {
            seed: 7,
            tls_sessions: env_or("TLS_FLOWS", 50_000) as usize,
            kerberos_exchanges: 0,
            dns_queries: 0,
            port_scan_ports: 0,
            syn_flood_packets: 0,
            bulk_flows: 0,
            bulk_packets_per_flow: 0,
            ..TrafficMix::default()
        },
    );
    flood_memory();
}
