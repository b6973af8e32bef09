//! What the device inventory costs.
//!
//! - Replay cost: the mixed benchmark capture replayed with the device inventory on and off
//!   (`[devices] enabled = false`), best of 7 alternating runs; the ratio is the cost per event
//!   batch (goal: at most 5%).
//! - `get_devices` latency with 100,000 devices: the book searched as the tool searches it
//!   (newest first, a page of 100, each device encoded to JSON), p50/p99 over 300 queries per
//!   filter, against one substring pass over the 100,000 device ids in the same run.
//!
//! Run: `cargo bench --bench devices` (PACKETS=N sizes the capture, DEVICES=N the book).

use netmonitor_capture::synth::{write_mix, TrafficMix};
use netmonitor_common::event::ipproto;
use netmonitor_common::{
    DhcpRecord, Event, EventHeader, EventKind, FlowKey, FlowRecord, Timestamp,
};
use netmonitor_devices::{DeviceBook, DeviceQuery, OuiTable};
use std::hint::black_box;
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Instant;

#[path = "support/mod.rs"]
mod support;

use support::{env_or, percentile};

fn replay_cost(dir: &Path) {
    let pcap = dir.join("mixed.pcap");
    let mix = TrafficMix::benchmark(env_or("PACKETS", 500_000) as usize);
    let summary = write_mix(BufWriter::new(std::fs::File::create(&pcap).unwrap()), &mix).unwrap();
    let (on, off) = (dir.join("on.toml"), dir.join("off.toml"));
    std::fs::write(&on, "").unwrap();
    std::fs::write(&off, "[devices]\nenabled = false\n").unwrap();
    let (without, with) = support::best_off_on(7, Some(&off), Some(&on), &pcap);
    println!(
        "  replay, mixed capture ({} packets): devices off {without:.3} s, on {with:.3} s: \
         ratio {:.3} ({:+.1}%, best of 7, alternating)",
        summary.packets,
        with / without,
        (with / without - 1.0) * 100.0
    );
}

fn event(src: Ipv4Addr, dst: Ipv4Addr, dport: u16, ts: i64, kind: EventKind) -> Event {
    Event {
        header: EventHeader {
            ts: Timestamp(ts),
            flow_id: 1,
            key: FlowKey {
                src_ip: IpAddr::V4(src),
                src_port: 40_000,
                dst_ip: IpAddr::V4(dst),
                dst_port: dport,
                proto: ipproto::TCP,
            },
        },
        kind,
    }
}

/// A book of `n` devices: every one talks, every other one took a DHCP lease (MAC-keyed,
/// with a vendor and a name), every tenth answers IPP.
fn book(n: u32) -> DeviceBook {
    let mut b = DeviceBook::new(vec!["10.0.0.0/8".parse().unwrap()], OuiTable::built_in());
    let t0 = 1_767_225_600_000_000i64;
    let mut batch = Vec::new();
    for i in 0..n {
        let ip = Ipv4Addr::from(0x0a00_0000 + i + 1);
        let ts = t0 + i64::from(i) * 1000;
        if i % 2 == 0 {
            let mac = [0u8, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8];
            batch.push(event(
                Ipv4Addr::new(10, 255, 255, 254),
                ip,
                68,
                ts,
                EventKind::Dhcp(DhcpRecord {
                    kind: "reply".into(),
                    dhcp_type: "ack".into(),
                    client_mac: mac
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                    assigned_ip: Some(ip.to_string()),
                    hostname: Some(format!("host-{i}")),
                    ..DhcpRecord::default()
                }),
            ));
        }
        let answered = i % 10 == 0;
        batch.push(event(
            Ipv4Addr::new(10, 255, 255, 253),
            ip,
            if answered { 631 } else { 443 },
            ts + 1,
            EventKind::Flow(FlowRecord {
                pkts_toserver: 3,
                bytes_toserver: 300,
                pkts_toclient: 3,
                bytes_toclient: if answered { 900 } else { 120 },
                payload_toclient: u64::from(answered) * 700,
                ..FlowRecord::default()
            }),
        ));
        if batch.len() >= 1024 {
            b.ingest(&batch);
            batch.clear();
        }
    }
    b.ingest(&batch);
    b.take_changes(); // classifies
    b
}

fn search_latency() {
    let n = env_or("DEVICES", 100_000) as u32;
    let started = Instant::now();
    let b = book(n);
    println!(
        "  device book: {} devices built and classified in {:.2} s",
        b.len(),
        started.elapsed().as_secs_f64()
    );
    let ids: Vec<String> = b
        .search(&DeviceQuery {
            limit: usize::MAX,
            ..Default::default()
        })
        .iter()
        .map(|d| d.id.clone())
        .collect();
    let mut reference = Vec::new();
    let finder = memchr::memmem::Finder::new("10.1.2");
    for _ in 0..300 {
        let t = Instant::now();
        black_box(
            ids.iter()
                .filter(|s| finder.find(s.as_bytes()).is_some())
                .count(),
        );
        reference.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let ref_p50 = percentile(&mut reference, 0.5);
    println!(
        "  reference: one substring pass (memchr::memmem) over {} ids: p50 {ref_p50:.2} ms",
        ids.len()
    );
    let queries = [
        (
            "no filter",
            DeviceQuery {
                limit: 100,
                ..Default::default()
            },
        ),
        (
            "q=10.1.2 (substring)",
            DeviceQuery {
                q: Some("10.1.2".into()),
                limit: 100,
                ..Default::default()
            },
        ),
        (
            "vendor=xerox",
            DeviceQuery {
                vendor: Some("xerox".into()),
                limit: 100,
                ..Default::default()
            },
        ),
        (
            "category=iot",
            DeviceQuery {
                category: Some("iot".into()),
                limit: 100,
                ..Default::default()
            },
        ),
    ];
    for (name, q) in queries {
        let mut ms = Vec::new();
        let mut found = 0;
        for _ in 0..300 {
            let t = Instant::now();
            let page: Vec<serde_json::Value> = b
                .search(&q)
                .into_iter()
                .map(|d| serde_json::to_value(d).unwrap())
                .collect();
            found = page.len();
            black_box(page);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let p50 = percentile(&mut ms, 0.5);
        println!(
            "  get_devices {name}: {found} returned; p50 {p50:.2} ms, p99 {:.2} ms ({:.1}x the reference; goal p50 < 20 ms)",
            percentile(&mut ms, 0.99),
            p50 / ref_p50
        );
    }
}

fn main() {
    println!("devices bench");
    let tmp = tempfile::tempdir().unwrap();
    replay_cost(tmp.path());
    search_latency();
}
