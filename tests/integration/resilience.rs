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

/// A DHCP REQUEST whose host name option carries `hostname` as raw bytes.
fn dhcp_request(hostname: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 236];
    m[0] = 1; // BOOTREQUEST
    m[1] = 1;
    m[2] = 6;
    m[4..8].copy_from_slice(&[9, 8, 7, 6]);
    m[28..34].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x42]);
    m.extend_from_slice(&[99, 130, 83, 99, 53, 1, 3, 12, hostname.len() as u8]);
    m.extend_from_slice(hostname);
    m.push(255);
    m
}

/// NUL bytes (and bytes that are not UTF-8) in the SNI and certificate names of a TLS
/// handshake, a Kerberos client name, a DHCP host name and a DNS name, replayed into the
/// database: every row is written, none spooled or refused; the EVE output stays valid JSON.
#[test]
fn hostile_bytes_from_the_wire_reach_the_database() {
    let dir = data_dir();
    let pcap = dir.path().join("hostile.pcap");
    let mut synth = Synth::new(
        std::fs::File::create(&pcap).unwrap(),
        3,
        Timestamp::from_secs_micros(1_750_000_000, 0),
    )
    .unwrap();
    synth
        .tls_session([10, 0, 0, 2], [10, 0, 0, 9], 40_001, "evil\0zz.example")
        .unwrap();
    synth
        .kerberos_exchange(
            [10, 0, 0, 2],
            [10, 0, 0, 10],
            "EXAMPLE.TEST",
            "ali\0ce",
            &["cifs", "srv\0one"],
            18,
        )
        .unwrap();
    let dhcp = dhcp_request(b"pr\0in\xffter");
    synth
        .frame(&build::eth_ipv4_udp([0; 4], [255; 4], 68, 67, &dhcp))
        .unwrap();
    synth
        .dns_lookup([10, 0, 0, 2], [10, 0, 0, 53], "a\0b.example")
        .unwrap();
    synth.finish().unwrap();

    let eve = dir.path().join("eve.json");
    let out = netmonitor(dir.path())
        .arg("replay")
        .arg("--eve")
        .arg(&eve)
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in std::fs::read_to_string(&eve).unwrap().lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("EVE line is JSON");
    }
    // `replay` stopped the cluster it started; start it again to look.
    let db = netmonitor_store::Database::open(&netmonitor_store::DbTarget::Private {
        data_dir: dir.path().to_owned(),
        fsync: false,
    })
    .unwrap();
    let n = |sql: &str| count(dir.path(), sql).unwrap();
    let rep = "U&'\\FFFD'";
    assert_eq!(
        n(&format!(
            "SELECT count(*) AS n FROM tls_sessions WHERE sni = 'evil' || {rep} || 'zz.example'"
        )),
        1
    );
    assert_eq!(
        n(&format!(
            "SELECT count(*) AS n FROM certificates WHERE subject LIKE '%evil' || {rep} || 'zz%'"
        )),
        1
    );
    assert!(
        n(&format!(
            "SELECT count(*) AS n FROM kerberos_events WHERE cname = 'ali' || {rep} || 'ce'"
        )) >= 1
    );
    assert!(
        n(&format!(
            "SELECT count(*) AS n FROM kerberos_events WHERE sname LIKE '%srv' || {rep} || 'one'"
        )) >= 1
    );
    assert_eq!(n(&format!("SELECT count(*) AS n FROM app_events WHERE eve->'dhcp'->>'hostname' = 'pr' || {rep} || 'in' || {rep} || 'ter'")), 1);
    assert!(
        n("SELECT count(*) AS n FROM app_events WHERE eve->'dns'->>'rrname' = 'a?b.example'") >= 1,
        "the DNS name has its NUL shown as ?"
    );
    assert!(
        !dir.path().join("deadletter").exists()
            || std::fs::read_dir(dir.path().join("deadletter"))
                .unwrap()
                .count()
                == 0
    );
    let spooled = std::fs::read_dir(dir.path().join("spool")).map_or(0, |d| d.count());
    assert_eq!(spooled, 0, "nothing spooled");
    drop(db);
}

/// The exact request that once stopped every database write (a NUL as the JSON-RPC method, no
/// session, any token), and NULs in a tool's name and arguments: audited, and writes go on.
#[test]
fn a_nul_in_an_mcp_request_is_audited_and_writes_go_on() {
    let dir = data_dir();
    let (_child, port) = start_service(dir.path(), &[]);
    let token = create_token(dir.path(), "reader", "read_only");
    let auth = format!("Bearer {token}");
    let headers = [
        ("Accept", "application/json, text/event-stream"),
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    // Without a session it is served statelessly, and there is no such method.
    let (status, _, body) = http(
        port,
        "POST",
        "/mcp",
        &headers,
        r#"{"jsonrpc":"2.0","id":1,"method":"\u0000"}"#,
    )
    .unwrap();
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &reply["error"]["code"]),
        (200, &serde_json::json!(-32601)),
        "{body}"
    );
    let s = McpSession::open(port, &token);
    s.post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_\u0000status","arguments":{"q":"\u0000"}}}"#);
    s.call("get_sensor_status", serde_json::json!({}));
    let rep = "U&'\\FFFD'";
    wait_for("the audit rows", Duration::from_secs(10), || {
        count(dir.path(), &format!("SELECT count(*) AS n FROM api_token_usage WHERE method = {rep}")) == Some(1)
            && count(dir.path(), &format!("SELECT count(*) AS n FROM api_token_usage WHERE tool = 'get_' || {rep} || 'status'")) == Some(1)
            && count(dir.path(), "SELECT count(*) AS n FROM api_token_usage WHERE tool = 'get_sensor_status'") == Some(1)
    });
    let (_, _, body) = http(port, "GET", "/health", &[], "").unwrap();
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["store"]["rows_spooled"], 0, "{health}");
    assert_eq!(health["store"]["rows_rejected"], 0, "{health}");
}
