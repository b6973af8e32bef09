//! The service rides out what it will meet in the field: its embedded PostgreSQL killed under
//! it, hostile bytes in every text that reaches the database.

use crate::util::*;
use diesel::prelude::*;
use netmonitor_capture::synth::{build, Synth};
use netmonitor_common::Timestamp;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// The private cluster of a data directory, as `run` starts it.
fn private_conninfo(dir: &Path) -> String {
    format!(
        "host={} port=5432 user=postgres dbname=netmonitor",
        dir.join("run").display()
    )
}

/// `SELECT count(*)` of a query, or None while the database is unreachable.
fn count(dir: &Path, sql: &str) -> Option<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = PgConnection::establish(&private_conninfo(dir)).ok()?;
    diesel::sql_query(sql)
        .get_result::<N>(&mut conn)
        .ok()
        .map(|n| n.n)
}

fn postmaster_pid(dir: &Path) -> i32 {
    std::fs::read_to_string(dir.join("pg/postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn metric(port: u16, name: &str) -> f64 {
    let (_, _, text) = http(port, "GET", "/metrics", &[], "").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// DNS queries with distinct names, one packet each, so every one is one `app_events` row.
fn dns_queries<W: Write>(synth: &mut Synth<W>, from: u32, to: u32) {
    for i in from..to {
        let q = netmonitor_capture::synth::dns_query(
            (i % 65_536) as u16,
            &format!("q{i}.example.org"),
            1,
        );
        let frame = build::eth_ipv4_udp(
            [10, 0, 0, 2],
            [10, 0, 0, 53],
            40_000 + (i % 1000) as u16,
            53,
            &q,
        );
        synth.frame(&frame).unwrap();
    }
}

/// SIGKILL of the postmaster in the middle of a capture: the service notices, starts its cluster
/// again, drains the spool, and every event arrives exactly once.
#[test]
fn a_killed_private_cluster_is_restarted_and_nothing_is_lost() {
    let dir = data_dir();
    let fifo = dir.path().join("capture.pcap");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // The writer end opens once the service opens the reader end, which then waits for the
    // file header before the service goes on.
    let writer = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let out = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            Synth::new(out, 7, Timestamp::from_secs_micros(1_750_000_000, 0)).unwrap()
        }
    });
    let fifo_arg = fifo.to_string_lossy().into_owned();
    let (_child, port) = start_service_with(dir.path(), &[], &["--pcap", &fifo_arg]);
    let mut synth = writer.join().unwrap();
    let total_sql = "SELECT count(*) AS n FROM app_events WHERE event_type = 'dns'";

    dns_queries(&mut synth, 0, 5000);
    wait_for(
        "the first events in PostgreSQL",
        Duration::from_secs(30),
        || count(dir.path(), total_sql).is_some_and(|n| n >= 4000),
    );

    let pid = postmaster_pid(dir.path());
    let killed = std::time::Instant::now();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    wait_for(
        "/health to say the database is gone",
        Duration::from_secs(5),
        || http(port, "GET", "/health", &[], "").is_ok_and(|(s, _, _)| s == 503),
    );
    dns_queries(&mut synth, 5000, 10_000);
    drop(synth);

    wait_for(
        "every event after the restart",
        Duration::from_secs(90),
        || count(dir.path(), total_sql) == Some(10_000),
    );
    assert_ne!(postmaster_pid(dir.path()), pid, "a new postmaster runs");
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(DISTINCT eve->'dns'->>'rrname') AS n FROM app_events WHERE event_type = 'dns'"
        ),
        Some(10_000),
        "each event exactly once"
    );
    wait_for("/health healthy again", Duration::from_secs(10), || {
        http(port, "GET", "/health", &[], "").is_ok_and(|(s, _, _)| s == 200)
    });
    eprintln!(
        "cluster killed -> service healthy again in {:.2} s",
        killed.elapsed().as_secs_f64()
    );
    assert!(metric(port, "netmonitor_store_cluster_restarts_total") >= 1.0);
}
