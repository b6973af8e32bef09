//! Threat-feed matching at scale: 1,000,000 indicators (500,000 addresses, 100,000 blocks of
//! mixed prefix lengths /8–/32 as block lists have them, 300,000 domains, 50,000 URLs, 50,000
//! JA3 hashes).
//!
//! - lookups per second per kind through the matcher, as a ratio to a plain `HashSet` lookup of
//!   the same probe keys in the same run (half the probes hit; blocks and parent domains do
//!   more work than an exact set can, which is the point of the ratio);
//! - memory per indicator (bytes allocated by the build, counted by this binary's allocator);
//! - reload time: parsing the feed text and building the matcher;
//! - the replay slowdown of the mixed benchmark capture with those indicators loaded versus no
//!   feed (the replay's own time, feeds loaded before it starts; goal ≤ 5%).
//!
//! Run: `cargo bench --bench intel` (INDICATORS=N scales the set, PACKETS=N the capture).

use netmonitor_capture::synth::{write_mix, TrafficMix, XorShift};
use netmonitor_intel::matcher::{lower_name, Entry, Match, MatcherBuilder};
use netmonitor_intel::{parse, FeedFormat, IndicatorKind};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::hint::black_box;
use std::io::BufWriter;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts bytes currently allocated, to measure what the matcher holds.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

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

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn label(rng: &mut XorShift, len: usize) -> String {
    (0..len)
        .map(|_| (b'a' + (rng.next_u64() % 26) as u8) as char)
        .collect()
}

struct Set {
    ips: Vec<Ipv4Addr>,
    cidrs: Vec<(Ipv4Addr, u8)>,
    domains: Vec<String>,
    urls: Vec<String>,
    ja3: Vec<String>,
}

fn generate(n: usize) -> Set {
    let mut rng = XorShift::new(42);
    let part = |f: f64| (n as f64 * f) as usize;
    let ips = (0..part(0.5))
        .map(|_| Ipv4Addr::from(rng.next_u64() as u32))
        .collect();
    // Mixed prefix lengths as block lists have them (DROP: mostly /16-/24): 0.1% /8-/15,
    // 79.9% /16-/24, 20% /25-/32; none over the capture's own networks, whose traffic would
    // then all match and the figure would be the cost of alerting, not of looking up.
    let own: [(u32, u32); 4] = [
        (0x0A00_0000, 0xFF00_0000), // 10/8
        (0xC0A8_0000, 0xFFFF_0000), // 192.168/16
        (0xC633_6400, 0xFFFF_FF00), // 198.51.100/24
        (0xC000_0200, 0xFFFF_FF00), // 192.0.2/24
    ];
    let overlaps = |a: u32, mask: u32| own.iter().any(|(n, m)| (a & m & mask) == (n & mask & m));
    let mut cidrs = Vec::with_capacity(part(0.1));
    while cidrs.len() < part(0.1) {
        let r = rng.next_u64() % 1000;
        let len = match r {
            0 => 8 + (rng.next_u64() % 8) as u8,
            1..=799 => 16 + (rng.next_u64() % 9) as u8,
            _ => 25 + (rng.next_u64() % 8) as u8,
        };
        let mask = u32::MAX << (32 - len);
        let a = (rng.next_u64() as u32) & mask;
        if !overlaps(a, mask) {
            cidrs.push((Ipv4Addr::from(a), len));
        }
    }
    let domains = (0..part(0.3))
        .map(|_| {
            let len = 6 + (rng.next_u64() % 8) as usize;
            let a = label(&mut rng, len);
            let b = ["com", "net", "org", "info", "xyz"][(rng.next_u64() % 5) as usize];
            format!("{a}.{b}")
        })
        .collect();
    let urls = (0..part(0.05))
        .map(|_| {
            let (h, p) = (label(&mut rng, 10), label(&mut rng, 12));
            format!("http://{h}.example/{p}.exe")
        })
        .collect();
    let ja3 = (0..part(0.05))
        .map(|_| format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()))
        .collect();
    Set {
        ips,
        cidrs,
        domains,
        urls,
        ja3,
    }
}

/// The set as a plain list feed (the JA3 hashes as an SSLBL JA3 CSV).
fn feed_text(s: &Set) -> (String, String) {
    let mut t = String::new();
    for a in &s.ips {
        t.push_str(&format!("{a}\n"));
    }
    for (a, l) in &s.cidrs {
        t.push_str(&format!("{a}/{l}\n"));
    }
    for d in &s.domains {
        t.push_str(d);
        t.push('\n');
    }
    for u in &s.urls {
        t.push_str(u);
        t.push('\n');
    }
    let mut j = String::from("# ja3_md5,Firstseen,Lastseen,Listingreason\n");
    for h in &s.ja3 {
        j.push_str(&format!(
            "{h},2025-01-01 00:00:00,2025-01-02 00:00:00,bench\n"
        ));
    }
    (t, j)
}

/// Nanoseconds per call of `f` over `probes`, best of 3.
fn per_lookup<T>(probes: &[T], mut f: impl FnMut(&T) -> usize) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            let mut hits = 0;
            for p in probes {
                hits += f(p);
            }
            black_box(hits);
            t.elapsed().as_nanos() as f64 / probes.len() as f64
        })
        .fold(f64::MAX, f64::min)
}

fn line(kind: &str, ours: f64, reference: f64) {
    println!(
        "  {kind:<8} {:>8.0} ns/lookup  {:>10.0} lookups/s   HashSet {:>6.0} ns   ratio {:>5.2}x",
        ours,
        1e9 / ours,
        reference,
        ours / reference
    );
}

fn main() {
    let n = env_or("INDICATORS", 1_000_000);
    let s = generate(n);
    let total = s.ips.len() + s.cidrs.len() + s.domains.len() + s.urls.len() + s.ja3.len();
    println!("intel bench: {total} indicators ({} addresses, {} blocks /8-/32, {} domains, {} URLs, {} JA3)",
        s.ips.len(), s.cidrs.len(), s.domains.len(), s.urls.len(), s.ja3.len());

    // Reload: parse the feed text and build the matcher.
    let (text, ja3_csv) = feed_text(&s);
    let before = LIVE.load(Ordering::Relaxed);
    let t = Instant::now();
    let r = parse(FeedFormat::Plain, &text);
    let r2 = parse(FeedFormat::SslblJa3Csv, &ja3_csv);
    let parsed = t.elapsed();
    assert_eq!(r.indicators.len() + r2.indicators.len(), total);
    let t = Instant::now();
    let mut b = MatcherBuilder::new();
    for i in r.indicators.iter().chain(&r2.indicators) {
        b.add(
            "bench",
            &Entry {
                kind: i.kind,
                value: &i.value,
                confidence: 80,
                valid_until: None,
                description: i.description.as_deref(),
            },
        );
    }
    let m = b.build();
    let built = t.elapsed();
    drop(r);
    drop(r2);
    let held = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "  reload: parse {:.2} s + build {:.2} s = {:.2} s; matcher holds {:.1} MB, {:.0} bytes per indicator",
        parsed.as_secs_f64(),
        built.as_secs_f64(),
        (parsed + built).as_secs_f64(),
        held as f64 / 1e6,
        held as f64 / total as f64
    );

    // Probes: half listed values, half not.
    let mut rng = XorShift::new(7);
    let probes = 200_000;
    let ip_probes: Vec<IpAddr> = (0..probes)
        .map(|i| {
            if i % 2 == 0 {
                IpAddr::V4(s.ips[(rng.next_u64() as usize) % s.ips.len()])
            } else {
                IpAddr::V4(Ipv4Addr::from(rng.next_u64() as u32))
            }
        })
        .collect();
    let ip_set: HashSet<IpAddr> = s.ips.iter().map(|a| IpAddr::V4(*a)).collect();
    let mut out: Vec<Match<'_>> = Vec::new();
    let ours = per_lookup(&ip_probes, |a| {
        out.clear();
        m.ip(*a, 0, &mut out);
        out.len()
    });
    let reference = per_lookup(&ip_probes, |a| ip_set.contains(a) as usize);
    line("ip+cidr", ours, reference);

    let block_probes: Vec<IpAddr> = (0..probes)
        .map(|i| {
            let (a, l) = s.cidrs[(rng.next_u64() as usize) % s.cidrs.len()];
            let host = if i % 2 == 0 {
                (rng.next_u64() as u32) & u32::MAX.checked_shr(u32::from(l)).unwrap_or(0)
            } else {
                rng.next_u64() as u32
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) | host))
        })
        .collect();
    let ours = per_lookup(&block_probes, |a| {
        out.clear();
        m.ip(*a, 0, &mut out);
        out.len()
    });
    let reference = per_lookup(&block_probes, |a| ip_set.contains(a) as usize);
    line("cidr", ours, reference);

    let name_probes: Vec<String> = (0..probes)
        .map(|i| {
            let d = &s.domains[(rng.next_u64() as usize) % s.domains.len()];
            if i % 2 == 0 {
                format!("www.{d}")
            } else {
                format!("www.{}.example", label(&mut rng, 9))
            }
        })
        .collect();
    let name_set: HashSet<String> = s.domains.iter().cloned().collect();
    let mut buf = String::new();
    let ours = per_lookup(&name_probes, |n| {
        out.clear();
        m.domain(lower_name(n, &mut buf), 0, &mut out);
        out.len()
    });
    // The reference looks up the registered name itself (what a feed lists), the matcher the
    // name seen on the wire and its parents.
    let reference = per_lookup(&name_probes, |n| {
        name_set.contains(n.strip_prefix("www.").unwrap_or(n)) as usize
    });
    line("domain", ours, reference);

    let url_probes: Vec<String> = (0..probes)
        .map(|i| {
            if i % 2 == 0 {
                s.urls[(rng.next_u64() as usize) % s.urls.len()].clone()
            } else {
                format!("http://{}.example/x", label(&mut rng, 10))
            }
        })
        .collect();
    let url_set: HashSet<String> = s.urls.iter().cloned().collect();
    let ours = per_lookup(&url_probes, |u| {
        out.clear();
        m.url(u, 0, &mut out);
        out.len()
    });
    let reference = per_lookup(&url_probes, |u| url_set.contains(u.as_str()) as usize);
    line("url", ours, reference);

    let ja3_probes: Vec<String> = (0..probes)
        .map(|i| {
            if i % 2 == 0 {
                s.ja3[(rng.next_u64() as usize) % s.ja3.len()].clone()
            } else {
                format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
            }
        })
        .collect();
    let ja3_set: HashSet<String> = s.ja3.iter().cloned().collect();
    let ours = per_lookup(&ja3_probes, |h| {
        out.clear();
        m.digest(IndicatorKind::Ja3, h, 0, &mut out);
        out.len()
    });
    let reference = per_lookup(&ja3_probes, |h| ja3_set.contains(h.as_str()) as usize);
    line("ja3", ours, reference);
    drop(out);
    drop(m);

    // Replay slowdown: the mixed capture with and without the million indicators.
    // BENCH_DIR keeps the capture, the feeds and the config for profiling.
    let tmp = tempfile::tempdir().unwrap();
    let dir_path = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir_path).unwrap();
    let dir = &dir_path;
    let pcap = dir.join("mixed.pcap");
    write_mix(
        BufWriter::new(std::fs::File::create(&pcap).unwrap()),
        &TrafficMix::benchmark(env_or("PACKETS", 500_000)),
    )
    .unwrap();
    std::fs::write(dir.join("feed.txt"), &text).unwrap();
    std::fs::write(dir.join("ja3.csv"), &ja3_csv).unwrap();
    let config = dir.join("intel.toml");
    std::fs::write(
        &config,
        format!(
            "[[intel.feeds]]\nname = \"bench\"\nsource = \"{}\"\nformat = \"plain\"\n\
             [[intel.feeds]]\nname = \"bench-ja3\"\nsource = \"{}\"\nformat = \"sslbl_ja3_csv\"\n",
            dir.join("feed.txt").display(),
            dir.join("ja3.csv").display()
        ),
    )
    .unwrap();
    let (none, with) = support::best_off_on(7, None, Some(&config), &pcap);
    let t = Instant::now();
    let _ = Command::new(env!("CARGO_BIN_EXE_netmonitor"))
        .arg("--config")
        .arg(&config)
        .args(["replay", "--no-db", "-q"])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let whole = t.elapsed();
    println!(
        "  replay, mixed capture: no feeds {:.3} s, {} indicators {:.3} s: slowdown {:+.1}% (best of 7, alternating); \
         with loading the feeds the whole command took {:.2} s",
        none,
        total,
        with,
        (with / none - 1.0) * 100.0,
        whole.as_secs_f64()
    );
}
