//! Threat feeds end to end: feeds in every published format served by a real HTTP server
//! (Python's http.server), a real TAXII 2.1 server (the OASIS reference server `medallion`),
//! replays whose traffic hits indicators of each kind (and near misses that must stay quiet),
//! and the intel tools over MCP on a running service with PostgreSQL: incremental TAXII polls,
//! a malformed download that keeps the last good copy, indicators surviving a restart.

use crate::util::*;
use netmonitor_capture::synth::{Synth, TcpConn};
use netmonitor_common::Timestamp;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn python() -> Option<&'static str> {
    let ok = Command::new("python3").arg("--version").output().is_ok();
    if !ok {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI has python3");
        eprintln!("skipping: python3 missing");
    }
    ok.then_some("python3")
}

/// `python3 -m http.server` serving `dir` on a free loopback port.
fn serve_dir(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let p = Proc(child);
    wait_for("the feed HTTP server", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (p, port)
}

const PCAP_START_SECS: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn http_exchange(
    s: &mut Synth<std::fs::File>,
    client: [u8; 4],
    server: [u8; 4],
    host: &str,
    path: &str,
) {
    let mut c: TcpConn = s.tcp_open(client, server, 41_000, 80).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
    );
    s.tcp_send(&mut c, true, req.as_bytes()).unwrap();
    s.tcp_send(
        &mut c,
        false,
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\n\r\nMZ\x90\x00",
    )
    .unwrap();
    s.tcp_close(&mut c).unwrap();
}

fn connect(s: &mut Synth<std::fs::File>, client: [u8; 4], server: [u8; 4], port: u16) {
    let mut c = s.tcp_open(client, server, 40_000, port).unwrap();
    s.tcp_close(&mut c).unwrap();
}

/// Traffic touching one indicator of each kind (every flow from its own client), and near
/// misses: the next address, an adjacent block, an expired indicator, a sibling domain, a URL
/// with another query.
fn write_pcap(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut s = Synth::new(f, 7, Timestamp(PCAP_START_SECS * 1_000_000)).unwrap();
    connect(&mut s, [10, 1, 0, 1], [198, 51, 100, 7], 8080); // feodo IP
    connect(&mut s, [10, 1, 0, 2], [203, 0, 113, 77], 80); // Spamhaus DROP block
    connect(&mut s, [10, 1, 0, 3], [198, 18, 5, 5], 80); // Spamhaus DROP JSON block
    connect(&mut s, [10, 1, 0, 4], [198, 51, 100, 8], 80); // miss: next address
    connect(&mut s, [10, 1, 0, 4], [203, 0, 114, 1], 80); // miss: adjacent block
    s.dns_lookup([10, 1, 0, 5], [10, 0, 0, 53], "a.b.evil.example")
        .unwrap(); // plain list parent
    s.dns_lookup([10, 1, 0, 5], [10, 0, 0, 53], "notevil.example")
        .unwrap(); // miss: sibling
    s.dns_lookup([10, 1, 0, 5], [10, 0, 0, 53], "evil.example.org")
        .unwrap(); // miss
    s.dns_lookup([10, 1, 0, 6], [10, 0, 0, 53], "ads.tracker.example")
        .unwrap(); // hosts file
    connect(&mut s, [10, 1, 0, 7], [100, 64, 1, 1], 22); // Zeek ADDR
    s.dns_lookup([10, 1, 0, 8], [10, 0, 0, 53], "zeek-listed.example")
        .unwrap(); // Zeek DOMAIN
    connect(&mut s, [10, 1, 0, 9], [100, 100, 3, 3], 443); // STIX ISSUBSET
    connect(&mut s, [10, 1, 0, 10], [100, 101, 1, 1], 443); // miss: expired STIX indicator
    http_exchange(
        &mut s,
        [10, 1, 0, 11],
        [10, 2, 0, 80],
        "bad.example",
        "/dl/x.exe",
    ); // URLhaus
    http_exchange(
        &mut s,
        [10, 1, 0, 13],
        [10, 2, 0, 80],
        "bad.example",
        "/dl/x.exe?v=2",
    ); // miss
    s.tls_session(
        [10, 1, 0, 12],
        [10, 2, 0, 44],
        50_000,
        "c2.evil-tls.example",
    )
    .unwrap(); // JA3, certificate, STIX domain
    s.finish().unwrap();
}

#[test]
fn feeds_of_every_format_raise_exactly_the_expected_alerts() {
    if python().is_none() {
        return;
    }
    let dir = data_dir();
    let pcap = dir.path().join("intel.pcap");
    write_pcap(&pcap);
    // A first replay without feeds: the TLS session's JA3 and certificate, and no alert at all.
    let plain = replay_eve(dir.path(), None, &pcap, &dir.path().join("plain.json"));
    assert!(plain.iter().all(|e| e["event_type"] != "alert"));
    let tls = plain
        .iter()
        .find(|e| e["event_type"] == "tls" && e["dest_ip"] == "10.2.0.44")
        .expect("the TLS session");
    let ja3 = tls["tls"]["ja3"]["hash"].as_str().unwrap().to_owned();
    let sha1 = tls["tls"]["fingerprint"].as_str().unwrap().replace(':', "");
    assert!(
        plain.iter().any(|e| e["event_type"] == "http"),
        "HTTP is dissected"
    );

    let feeds = dir.path().join("feeds");
    std::fs::create_dir(&feeds).unwrap();
    let put = |name: &str, text: String| std::fs::write(feeds.join(name), text).unwrap();
    put(
        "plain.txt",
        "# plain list\nevil.example\n192.0.2.0/30 ; unused\n".into(),
    );
    put(
        "hosts",
        "127.0.0.1 localhost\n0.0.0.0 ads.tracker.example\n".into(),
    );
    put(
        "drop.txt",
        "; Spamhaus DROP List\n203.0.113.0/24 ; SBL000001\n".into(),
    );
    put(
        "drop_v4.json",
        "{\"cidr\":\"198.18.0.0/15\",\"sblid\":\"SBL000002\",\"rir\":\"arin\"}\n\
         {\"type\":\"metadata\",\"timestamp\":1767225600,\"size\":64,\"records\":1,\"copyright\":\"test\"}\n"
            .into(),
    );
    put(
        "ipblocklist.csv",
        "# abuse.ch Feodo Tracker\n# \"first_seen_utc\",\"dst_ip\",\"dst_port\",\"c2_status\",\"last_online\",\"malware\"\n\
         \"2025-12-01 10:00:00\",\"198.51.100.7\",\"8080\",\"online\",\"2025-12-31\",\"Dridex\"\n"
            .into(),
    );
    put(
        "urlhaus.csv",
        "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
         \"1\",\"2025-12-01 10:00:00\",\"http://bad.example/dl/x.exe\",\"online\",\"2025-12-01 10:00:00\",\"malware_download\",\"exe\",\"https://urlhaus.abuse.ch/url/1/\",\"test\"\n"
            .into(),
    );
    put(
        "sslblacklist.csv",
        format!("# Listingdate,SHA1,Listingreason\n2025-12-01 10:00:00,{sha1},Test C&C\n"),
    );
    put(
        "ja3.csv",
        format!("# ja3_md5,Firstseen,Lastseen,Listingreason\n{ja3},2025-12-01 10:00:00,2025-12-31 10:00:00,Test malware\n"),
    );
    put(
        "intel.dat",
        "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n\
         100.64.1.1\tIntel::ADDR\ttest\tC2\n\
         zeek-listed.example\tIntel::DOMAIN\ttest\t-\n\
         someone@example.org\tIntel::EMAIL\ttest\t-\n"
            .into(),
    );
    put(
        "bundle.json",
        json!({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001", "objects": [
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--00000000-0000-4000-8000-000000000002",
             "created": "2025-01-01T00:00:00Z", "modified": "2025-01-01T00:00:00Z",
             "pattern": "[ipv4-addr:value ISSUBSET '100.100.0.0/16'] OR [domain-name:value = 'evil-tls.example']",
             "pattern_type": "stix", "valid_from": "2025-01-01T00:00:00Z", "confidence": 90},
            {"type": "indicator", "spec_version": "2.1", "id": "indicator--00000000-0000-4000-8000-000000000003",
             "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z",
             "pattern": "[ipv4-addr:value = '100.101.1.1']", "pattern_type": "stix",
             "valid_from": "2024-01-01T00:00:00Z", "valid_until": "2025-01-01T00:00:00Z"}
        ]})
        .to_string(),
    );
    let (_server, port) = serve_dir(&feeds);
    let feed = |name: &str, file: &str, format: &str| {
        format!(
            "[[intel.feeds]]\nname = \"{name}\"\nsource = \"http://127.0.0.1:{port}/{file}\"\nformat = \"{format}\"\nconfidence = 85\n"
        )
    };
    let config = dir.path().join("netmonitor.toml");
    let text = [
        feed("plain", "plain.txt", "plain"),
        feed("hosts", "hosts", "hosts"),
        feed("drop", "drop.txt", "spamhaus_drop"),
        feed("drop-json", "drop_v4.json", "spamhaus_drop_json"),
        feed("feodo", "ipblocklist.csv", "feodo_csv"),
        feed("urlhaus", "urlhaus.csv", "urlhaus_csv"),
        feed("sslbl", "sslblacklist.csv", "sslbl_csv"),
        feed("sslbl-ja3", "ja3.csv", "sslbl_ja3_csv"),
        feed("zeek", "intel.dat", "zeek_intel"),
        feed("stix", "bundle.json", "stix"),
    ]
    .concat();
    std::fs::write(&config, text).unwrap();
    let events = replay_eve(
        dir.path(),
        Some(&config),
        &pcap,
        &dir.path().join("intel.json"),
    );
    let got: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .map(|e| {
            let m = &e["alert"]["metadata"];
            let ctx = &e["alert"]["context"];
            (
                m["threat_type"][0].as_str().unwrap_or("").to_owned(),
                ctx["matched_field"].as_str().unwrap_or("").to_owned(),
                ctx["indicator"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let t = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    let want: BTreeSet<_> = [
        t("blacklisted_ip", "dest_ip", "198.51.100.7"),
        t("blacklisted_ip", "dest_ip", "203.0.113.0/24"),
        t("blacklisted_ip", "dest_ip", "198.18.0.0/15"),
        t("malicious_domain", "dns.rrname", "evil.example"),
        t("malicious_domain", "dns.rrname", "ads.tracker.example"),
        t("blacklisted_ip", "dest_ip", "100.64.1.1"),
        t("malicious_domain", "dns.rrname", "zeek-listed.example"),
        t("blacklisted_ip", "dest_ip", "100.100.0.0/16"),
        t("malicious_url", "http.url", "http://bad.example/dl/x.exe"),
        t("malicious_ja3", "tls.ja3.hash", &ja3),
        t("malicious_cert", "tls.fingerprint", &sha1),
        t("malicious_domain", "tls.sni", "evil-tls.example"),
    ]
    .into_iter()
    .collect();
    let got_set: BTreeSet<_> = got.iter().cloned().collect();
    assert_eq!(got_set, want, "alerts raised");
    assert_eq!(
        got.len(),
        want.len(),
        "one alert per indicator and flow: {got:?}"
    );
    // The evidence names the feed, its confidence, and the MITRE mapping is attached.
    let feodo = events
        .iter()
        .find(|e| e["alert"]["context"]["indicator"] == "198.51.100.7")
        .unwrap();
    assert_eq!(feodo["alert"]["context"]["feed"], "feodo");
    assert_eq!(feodo["alert"]["context"]["confidence"], 85);
    assert_eq!(feodo["alert"]["severity"], 1);
    assert!(feodo["alert"]["metadata"]["mitre_technique_id"].is_array());
}

/// The OASIS TAXII 2.1 reference server with one readable and writable collection.
fn medallion(dir: &Path, objects: &[Value]) -> (Proc, u16, String) {
    let port = free_port();
    let collection = "9b2b2c2a-7c3e-4c84-9a43-0c6c1a2f5f01";
    let manifest: Vec<Value> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({"id": o["id"], "date_added": format!("2025-01-01T00:00:{:02}.000000Z", i + 1),
                   "version": o["modified"], "media_type": "application/stix+json;version=2.1"})
        })
        .collect();
    let data = json!({
        "/discovery": {"title": "test", "default": format!("http://127.0.0.1:{port}/api1/"),
                       "api_roots": [format!("http://127.0.0.1:{port}/api1/")]},
        "api1": {
            "information": {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 10_485_760},
            "status": [],
            "collections": [{"id": collection, "title": "indicators", "can_read": true, "can_write": true,
                "media_types": ["application/stix+json;version=2.1"],
                "objects": objects, "manifest": manifest}]
        }
    });
    let data_path = dir.join("taxii-data.json");
    std::fs::write(&data_path, data.to_string()).unwrap();
    let config = json!({
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": data_path},
        "users": {"reader": "taxii-secret"},
        "taxii": {"max_page_size": 100}
    });
    let config_path = dir.join("taxii-config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let child = Command::new("python3")
        .args([
            "-m",
            "medallion.scripts.run",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("medallion.log")).unwrap(),
        ))
        .spawn()
        .expect("medallion (pip install medallion)");
    let p = Proc(child);
    wait_for("medallion", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (
        p,
        port,
        format!("http://127.0.0.1:{port}/api1/collections/{collection}/"),
    )
}

fn stix_indicator(n: u32, pattern: &str) -> Value {
    json!({"type": "indicator", "spec_version": "2.1",
           "id": format!("indicator--{n:08}-0000-4000-8000-000000000000"),
           "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
           "name": format!("indicator {n}"), "pattern": pattern, "pattern_type": "stix",
           "valid_from": "2025-01-01T00:00:00Z", "confidence": 90})
}

fn has_medallion() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import medallion"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI installs medallion (deploy/bootstrap.sh)"
        );
        eprintln!("skipping: medallion not installed (pip install medallion)");
    }
    ok
}

/// A tool result's structured content, failing on a tool error.
fn sc(r: &Value, what: &str) -> Value {
    assert_eq!(r["isError"], json!(false), "{what}: {r}");
    r["structuredContent"].clone()
}

fn listed(mcp: &McpSession, indicator: &str) -> bool {
    let r = mcp.call("check_indicator", json!({"indicator": indicator}));
    sc(&r, "check_indicator")["listed"] == true
}

#[test]
fn taxii_polls_incrementally_and_feeds_survive_bad_downloads_and_restarts() {
    if python().is_none() || !has_medallion() {
        return;
    }
    let dir = data_dir();
    let objects = [
        stix_indicator(1, "[ipv4-addr:value = '198.51.100.7']"),
        stix_indicator(2, "[domain-name:value = 'evil.example']"),
    ];
    let (taxii, taxii_port, collection) = medallion(dir.path(), &objects);
    let feeds = dir.path().join("feeds");
    std::fs::create_dir(&feeds).unwrap();
    std::fs::write(feeds.join("plain.txt"), "203.0.113.9\n").unwrap();
    std::fs::write(
        feeds.join("ip2asn.tsv"),
        "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n8.8.8.0\t8.8.8.255\t15169\tUS\tGOOGLE\n",
    )
    .unwrap();
    let (web, web_port) = serve_dir(&feeds);
    let config = dir.path().join("netmonitor.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\n\
             [[intel.feeds]]\nname = \"taxii\"\nsource = \"{collection}\"\nformat = \"taxii\"\n\
             username = \"reader\"\npassword_env = \"TAXII_PASSWORD\"\nrefresh_secs = 86400\n\
             [[intel.feeds]]\nname = \"plain\"\nsource = \"http://127.0.0.1:{web_port}/plain.txt\"\nformat = \"plain\"\nrefresh_secs = 86400\n\
             [[intel.feeds]]\nname = \"asn\"\nsource = \"http://127.0.0.1:{web_port}/ip2asn.tsv\"\nformat = \"ip2asn\"\nrefresh_secs = 86400\n"
        ),
    )
    .unwrap();
    let start = || {
        let port = free_port();
        let child = netmonitor(dir.path())
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("MCP_API_PORT", port.to_string())
            .env("TAXII_PASSWORD", "taxii-secret")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("service.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let running = Running(child);
        wait_for("the service", Duration::from_secs(60), || {
            http(port, "GET", "/health", &[], "").is_ok_and(|(s, _, _)| s == 200)
        });
        (running, port)
    };
    let (service, port) = start();
    let token = create_polling_token(dir.path(), "intel", "admin");
    let mcp = McpSession::open(port, &token);
    let stats = |mcp: &McpSession| sc(&mcp.call("get_threat_feed_stats", json!({})), "stats");
    let feed = |s: &Value, name: &str| {
        s["feeds"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    wait_for("every feed fetched", Duration::from_secs(60), || {
        let s = stats(&mcp);
        ["taxii", "plain", "asn"]
            .iter()
            .all(|n| feed(&s, n)["last_success"].is_string())
    });
    let s = stats(&mcp);
    assert_eq!(feed(&s, "taxii")["indicators"], 2);
    assert_eq!(feed(&s, "plain")["indicators"], 1);
    assert_eq!(feed(&s, "asn")["indicators"], 2);
    assert!(feed(&s, "taxii")["taxii_cursor"].is_string());
    assert!(listed(&mcp, "198.51.100.7"));
    assert!(
        listed(&mcp, "www.evil.example"),
        "a parent domain covers its names"
    );
    assert!(!listed(&mcp, "198.51.100.8"));
    assert!(!listed(&mcp, "notevil.example"));
    let c = sc(
        &mcp.call("check_indicator", json!({"indicator": "198.51.100.7"})),
        "check",
    );
    assert_eq!(c["matches"][0]["feed"], "taxii");
    assert_eq!(c["matches"][0]["confidence"], 90);
    assert!(c["matches"][0]["first_seen"].is_string(), "{c}");
    let owner = sc(
        &mcp.call("lookup_ip_owner", json!({"ip": "8.8.8.8"})),
        "owner",
    );
    assert_eq!(owner["asn"], 15169);
    assert_eq!(owner["as_name"], "GOOGLE");
    let intel = sc(
        &mcp.call("lookup_threat_intel", json!({"indicator": "198.51.100.7"})),
        "lookup",
    );
    assert_eq!(intel["verdict"], "malicious");
    assert_eq!(intel["feeds"][0]["name"], "taxii");

    // Something is added to the collection: the next poll brings only that.
    let added = stix_indicator(3, "[url:value = 'http://bad.example/dl/x.exe']");
    let (status, _, body) = http(
        taxii_port,
        "POST",
        &format!(
            "{}objects/",
            collection.trim_start_matches(&format!("http://127.0.0.1:{taxii_port}"))
        ),
        &[
            ("Authorization", "Basic cmVhZGVyOnRheGlpLXNlY3JldA=="),
            ("Content-Type", "application/taxii+json;version=2.1"),
            ("Accept", "application/taxii+json;version=2.1"),
        ],
        &json!({"objects": [added]}).to_string(),
    )
    .unwrap();
    assert!(status < 300, "TAXII add: {status} {body}");
    // With a progress token the answer streams progress notifications before the result.
    let auth = format!("Bearer {token}");
    let req = json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {
        "name": "update_threat_feeds", "arguments": {"feeds": ["taxii"]},
        "_meta": {"progressToken": "feeds-1"}}});
    let (status, _, body) = http(
        port,
        "POST",
        "/mcp",
        &[
            ("Accept", "application/json, text/event-stream"),
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
            ("Mcp-Session-Id", &mcp.session),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        &req.to_string(),
    )
    .unwrap();
    assert_eq!(status, 200);
    let messages: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    let progress = messages
        .iter()
        .filter(|m| {
            m["method"] == "notifications/progress" && m["params"]["progressToken"] == "feeds-1"
        })
        .count();
    assert!(progress >= 2, "progress notifications: {body}");
    let result = messages.iter().find(|m| m["id"] == 77).expect("the result");
    let out = &result["result"]["structuredContent"]["feeds"][0];
    assert_eq!(out["result"], "updated", "{out}");
    assert_eq!(out["records"], 1, "only the added object comes back");
    assert_eq!(out["indicators"], 3);
    assert!(listed(&mcp, "http://bad.example/dl/x.exe"));

    // A broken download (an HTML page) keeps the last good copy and says which lines failed.
    std::fs::write(
        feeds.join("plain.txt"),
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>bad gateway</body>\n</html>\n",
    )
    .unwrap();
    let r = sc(
        &mcp.call("sync_threat_feeds", json!({"feeds": ["plain"]})),
        "sync",
    );
    assert_eq!(r["feeds"][0]["result"], "failed", "{r}");
    assert!(r["feeds"][0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("malformed"));
    assert!(listed(&mcp, "203.0.113.9"), "the last good copy stays");
    let s = stats(&mcp);
    assert!(feed(&s, "plain")["last_error"].is_string());
    assert_eq!(feed(&s, "plain")["error_lines"][0]["line"], 1);

    // Feeds managed over MCP: a local file, then removed with its indicators.
    let local = feeds.join("local.txt");
    std::fs::write(&local, "192.0.2.66\n").unwrap();
    let m = sc(
        &mcp.call(
            "manage_threat_feed",
            json!({"action": "add", "name": "local", "source": local, "format": "plain", "confidence": 40}),
        ),
        "manage",
    );
    assert_eq!(m["feed"]["indicators"], 1, "{m}");
    let v = sc(
        &mcp.call("lookup_threat_intel", json!({"indicator": "192.0.2.66"})),
        "lookup",
    );
    assert_eq!(v["verdict"], "suspicious");
    let refused = mcp.call(
        "manage_threat_feed",
        json!({"action": "remove", "name": "taxii"}),
    );
    assert_eq!(
        refused["isError"], true,
        "configured feeds are changed in the file"
    );
    sc(
        &mcp.call(
            "manage_threat_feed",
            json!({"action": "remove", "name": "local"}),
        ),
        "remove",
    );
    assert!(!listed(&mcp, "192.0.2.66"));

    // Alert kinds can be switched off live; the configuration shows it.
    let e = sc(
        &mcp.call(
            "enable_threat_detection",
            json!({"kind": "malicious_url", "enabled": false}),
        ),
        "enable",
    );
    assert_eq!(e["changes"][0]["new_value"], false);
    let cfg = sc(&mcp.call("get_threat_config", json!({})), "config");
    let url = cfg["detections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "malicious_url")
        .unwrap()
        .clone();
    assert_eq!(url["enabled"], false);

    // A restart needs no download: the feeds' servers are gone, the indicators are not.
    drop(service);
    drop(taxii);
    drop(web);
    let (_service, port) = start();
    let mcp = McpSession::open(port, &token);
    // The stored indicators load in the background while the service already answers.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !listed(&mcp, "198.51.100.7") {
        assert!(
            std::time::Instant::now() < deadline,
            "the stored indicators did not load: {}",
            std::fs::read_to_string(dir.path().join("service.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(listed(&mcp, "http://bad.example/dl/x.exe"));
    assert!(listed(&mcp, "203.0.113.9"));
    let s = stats(&mcp);
    assert_eq!(feed(&s, "taxii")["indicators"], 3);
    assert!(feed(&s, "local").is_null(), "a removed feed stays removed");
    let owner = sc(
        &mcp.call("lookup_ip_owner", json!({"ip": "1.0.0.1"})),
        "owner",
    );
    assert_eq!(owner["asn"], 13335);
}
