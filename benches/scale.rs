//! Storage at volume: a private PostgreSQL filled with ALERTS alerts, FLOWS flows and TLS TLS
//! sessions spread over DAYS days, in the project's real schema (`generate_series`, in chunks
//! with progress), then `netmonitor run` on that database and every tool a read_only token
//! sees called over HTTP (addresses and indicators taken from the data), REPEAT times each:
//! p50/p99 per tool, slowest first, against `GET /health` in the same run; and the disk bytes
//! per alert, flow and TLS row.
//!
//! Run: `cargo bench --bench scale` (the defaults, 1,000,000 alerts, 5,000,000 flows and
//! 500,000 TLS sessions over 30 days, fit this VM's disk; issue 18 asks for 10 M / 50 M / 5 M).
//! `SCALE_DATABASE_URL` names a database this bench filled before (with the same ALERTS, FLOWS,
//! TLS and DAYS): it is used as it is, migrated by the service, and not filled again, so that
//! query changes can be measured on a large fill without repeating it. A migrated database
//! without alerts (`netmonitor migrate` on a cluster of one's own) is filled first.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use netmonitor_store::testing::TestDatabase;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

use support::{env_or, percentile};

/// Rows per INSERT statement while filling.
const CHUNK: u64 = 500_000;

#[derive(QueryableByName)]
struct Size {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    bytes: i64,
}

fn fill(conn: &mut PgConnection, table: &str, total: u64, select: &str) {
    let t = Instant::now();
    let mut done = 0;
    while done < total {
        let n = CHUNK.min(total - done);
        diesel::sql_query(format!(
            "INSERT INTO {table} {select} FROM generate_series({}, {}) AS g",
            done + 1,
            done + n
        ))
        .execute(conn)
        .unwrap();
        done += n;
        eprintln!(
            "  filling {table}: {done}/{total} ({:.0} s)",
            t.elapsed().as_secs_f64()
        );
    }
}

fn per_row(conn: &mut PgConnection, table: &str, rows: u64) -> f64 {
    let s: Size = diesel::sql_query(format!(
        "SELECT COALESCE((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('{table}')), \
           pg_total_relation_size('{table}'))::int8 AS bytes"
    ))
    .get_result(conn)
    .unwrap();
    s.bytes as f64 / rows.max(1) as f64
}

fn call(port: u16, token: &str, body: &Value) -> (u16, Value) {
    let r = ureq::post(&format!("http://127.0.0.1:{port}/mcp"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Accept", "application/json, text/event-stream")
        .timeout(Duration::from_secs(120))
        .send_json(body.clone());
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(s, r)) => (s, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("HTTP: {e}"),
    }
}

/// Fills the event tables as a sensor would have over `days` days, then the rollups and
/// statistics, and prints the disk bytes per row.
fn fill_all(conn: &mut PgConnection, alerts: u64, flows: u64, tls: u64, days: u64, incidents: u64) {
    // Rows arrive in time order, as a sensor appends them, spread evenly over the days.
    let ts = |total: u64| {
        format!(
            "now() - ({total} - g) * interval '1 second' * ({} / {total}::float8)",
            days * 86_400
        )
    };
    // 4,000 internal hosts talking to 50,000 outside addresses
    let src = "('10.1.' || ((g * 7) % 4000 / 250) || '.' || ((g * 7) % 250 + 1))::inet";
    let dst = "('203.' || ((g * 13) % 50000 / 250) || '.' || ((g * 13) % 250 + 1) || '.1')::inet";
    // the days' partitions, as the store writer makes them
    diesel::sql_query(format!(
        "SELECT netmonitor_ensure_day(d::date) FROM generate_series(current_date - {}, current_date, interval '1 day') d",
        days + 1
    ))
    .execute(conn)
    .unwrap();
    // Alerts repeat, as a sensor's do (a beacon, a scanner, a brute-forcer raise the same
    // detection between the same hosts again and again): nine in ten belong to one of 400
    // recurring incidents, the tenth is one of a kind. ALERT_INCIDENTS=0 makes every alert
    // one of a kind (the rollups then hold about a row per alert).
    let k = if incidents == 0 {
        "g".to_owned()
    } else {
        format!("(CASE WHEN g % 10 = 0 THEN g ELSE (g * 31) % {incidents} END)")
    };
    let a_src = src.replace("(g * 7)", &format!("({k} * 7)"));
    let a_dst = dst.replace("(g * 13)", &format!("({k} * 13)"));
    let (ts_a, ts_f, ts_t) = (ts(alerts), ts(flows), ts(tls));
    let started = Instant::now();
    fill(
        conn,
        "alerts (sensor, flow_id, ts, src_ip, src_port, dest_ip, dest_port, proto, signature_id, signature, category, severity, threat_type, mitre, evidence)",
        alerts,
        &format!(
            "SELECT 'bench', g, {ts_a}, {a_src}, 40000 + g % 20000, {a_dst}, (ARRAY[22, 80, 443, 88, 53])[g % 5 + 1], 6, \
             9500000 + {k} % 15, 'NetMonitor bench signature ' || ({k} % 15), 'Misc activity', 1 + {k} % 4, \
             (ARRAY['port_scan', 'brute_force', 'beaconing', 'dns_tunnel', 'malicious_domain', 'kerberoasting', 'weak_tls_version', 'dga'])[{k} % 8 + 1], \
             CASE {k} % 8 WHEN 0 THEN ARRAY['T1046'] WHEN 1 THEN ARRAY['T1110'] WHEN 2 THEN ARRAY['T1071'] \
               WHEN 3 THEN ARRAY['T1071.004'] WHEN 4 THEN ARRAY['T1071.004'] WHEN 5 THEN ARRAY['T1558.003'] \
               WHEN 6 THEN ARRAY['T1557', 'T1040'] ELSE ARRAY['T1568.002'] END, \
             jsonb_build_object('count', g % 100, 'domain', 'host' || (g % 5000) || '.example')"
        ),
    );
    fill(
        conn,
        "flows (sensor, flow_id, ts, start_ts, end_ts, src_ip, src_port, dest_ip, dest_port, proto, app_proto, pkts_toserver, pkts_toclient, bytes_toserver, bytes_toclient, state, reason, tcp_flags, alerted)",
        flows,
        &format!(
            "SELECT 'bench', g, {ts_f}, {ts_f}, {ts_f}, {src}, 40000 + g % 20000, {dst}, (ARRAY[443, 80, 53, 22, 123])[g % 5 + 1], \
             (ARRAY[6, 6, 17, 6, 17])[g % 5 + 1], (ARRAY['tls', 'http', 'dns', 'ssh', NULL])[g % 5 + 1], \
             g % 50, g % 40, g % 50000, g % 400000, 'closed', 'timeout', 27, g % 97 = 0"
        ),
    );
    fill(
        conn,
        "tls_sessions (sensor, flow_id, ts, src_ip, src_port, dest_ip, dest_port, transport, sni, version, ja3, ja4, alpn, cipher_selected)",
        tls,
        &format!(
            "SELECT 'bench', g, {ts_t}, {src}, 40000 + g % 20000, {dst}, 443, 'tcp', 'site' || (g % 20000) || '.example', 'TLS 1.3', \
             md5((g % 3000)::text), 't13d1516h2_' || substr(md5((g % 500)::text), 1, 12), ARRAY['h2'], 4865"
        ),
    );
    // the flows' talker sums and the sessions' TLS counts, as a store writer adds them at start
    // for rows it has not counted
    let t = Instant::now();
    conn.batch_execute(
        "SELECT netmonitor_rollup_flows('bench'); SELECT netmonitor_rollup_tls('bench')",
    )
    .unwrap();
    eprintln!(
        "  talker and TLS rollups summed in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    // the past hours folded into the daily rollups, as the writer does a few at a time
    let t = Instant::now();
    conn.batch_execute(
        "SELECT netmonitor_fold(r, date_trunc('hour', now())) FROM unnest(ARRAY['alert', 'tls', 'talker']) r; \
         SELECT netmonitor_roll_all(date_trunc('hour', now()))",
    )
    .unwrap();
    println!(
        "  hours folded into the daily rollups and rolling sums counted in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    diesel::sql_query("ANALYZE").execute(conn).unwrap();
    println!(
        "  filled in {:.0} s; disk bytes per row: alert {:.0}, flow {:.0}, TLS session {:.0}; \
         rollups (both tiers): alerts {:.0} bytes per alert, talkers {:.0} bytes per flow, TLS {:.0} bytes per session",
        started.elapsed().as_secs_f64(),
        per_row(conn, "alerts", alerts),
        per_row(conn, "flows", flows),
        per_row(conn, "tls_sessions", tls),
        per_row(conn, "alert_rollup", alerts) + per_row(conn, "alert_rollup_daily", alerts),
        per_row(conn, "talker_rollup", flows) + per_row(conn, "talker_rollup_daily", flows),
        per_row(conn, "tls_rollup", tls) + per_row(conn, "tls_rollup_daily", tls),
    );
}

/// Whether the database holds alerts already (a fill to reuse).
fn has_alerts(conn: &mut PgConnection) -> bool {
    #[derive(QueryableByName)]
    struct Any {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        any: bool,
    }
    diesel::sql_query("SELECT EXISTS (SELECT 1 FROM alerts) AS any")
        .get_result::<Any>(conn)
        .unwrap()
        .any
}

fn main() {
    let alerts = env_or("ALERTS", 1_000_000);
    let flows = env_or("FLOWS", 5_000_000);
    let tls = env_or("TLS", 500_000);
    let days = env_or("DAYS", 30);
    let repeat = env_or("REPEAT", 10) as usize;
    println!("scale bench: {alerts} alerts, {flows} flows, {tls} TLS sessions over {days} days");
    let incidents = env_or("ALERT_INCIDENTS", 400);
    let private;
    let conninfo = match std::env::var("SCALE_DATABASE_URL") {
        Ok(url) => {
            let mut conn = PgConnection::establish(&url).unwrap();
            if !has_alerts(&mut conn) {
                fill_all(&mut conn, alerts, flows, tls, days, incidents);
            }
            url
        }
        Err(_) => {
            private = TestDatabase::start().expect("private PostgreSQL");
            let mut conn = PgConnection::establish(&private.conninfo()).unwrap();
            fill_all(&mut conn, alerts, flows, tls, days, incidents);
            private.conninfo()
        }
    };

    // The service on that database.
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = env!("CARGO_BIN_EXE_netmonitor");
    let token = Command::new(bin)
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "tokens",
            "create",
            "--name",
            "bench",
            "--scope",
            "read_only",
            "--rate-limit",
            "1000000",
        ])
        .env("DATABASE_URL", &conninfo)
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    let mut svc = Command::new(bin)
        .arg("--data-dir")
        .arg(data.path())
        .arg("run")
        .env("DATABASE_URL", &conninfo)
        .env("MCP_API_PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while ureq::get(&format!("http://127.0.0.1:{port}/health"))
        .call()
        .is_err()
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the service did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut health = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let _ = ureq::get(&format!("http://127.0.0.1:{port}/health")).call();
        health.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let h50 = percentile(&mut health, 0.5);

    let (_, list) = call(
        port,
        &token,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    );
    let tools = list["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // An address the data holds: the source of incident 31 (g = 1) and of flow g = 31.
    let sample_ip = if incidents == 0 {
        "10.1.0.8"
    } else {
        "10.1.0.218"
    };
    let mut rows = Vec::new();
    for t in &tools {
        let name = t["name"].as_str().unwrap_or("").to_owned();
        let schema = &t["inputSchema"];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut args = json!({});
        let mut callable = true;
        for r in required {
            match r {
                "ip" | "source_ip" | "host_id" | "device" => args[r] = json!(sample_ip),
                "indicator" | "value" | "query" => args[r] = json!("host17.example"),
                _ => callable = false,
            }
        }
        if !callable || name == "web_search" || name == "dns_lookup" {
            continue;
        }
        if name == "get_asset_risk" {
            args["ip"] = json!(sample_ip);
        }
        // tools with a window are also asked about a week
        let mut variants = vec![(name.clone(), args.clone())];
        if schema["properties"].get("hours").is_some() {
            let mut week = args.clone();
            week["hours"] = json!(168);
            variants.push((format!("{name} (7 days)"), week));
        }
        for (label, args) in variants {
            let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": args}});
            let mut ms = Vec::new();
            let mut error = None;
            for _ in 0..repeat {
                let t = Instant::now();
                let (status, v) = call(port, &token, &body);
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                if status != 200 || v["result"]["isError"] == json!(true) {
                    error = Some(
                        v["result"]["content"][0]["text"]
                            .as_str()
                            .unwrap_or("")
                            .chars()
                            .take(80)
                            .collect::<String>(),
                    );
                }
            }
            let p50 = percentile(&mut ms, 0.5);
            let p99 = percentile(&mut ms, 0.99);
            rows.push((p50, p99, label, error));
        }
    }
    let _ = svc.kill();
    let _ = svc.wait();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "  GET /health p50 {h50:.2} ms; {} tools, slowest first:",
        rows.len()
    );
    for (p50, p99, name, error) in rows {
        println!(
            "    {name:<36} p50 {p50:>9.2} ms  p99 {p99:>9.2} ms  ({:.0}x /health){}",
            p50 / h50,
            error
                .map(|e| format!("  [answered an error: {e}]"))
                .unwrap_or_default()
        );
    }
}
