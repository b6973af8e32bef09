//! End-to-end tests of the tool catalogue: real pcaps through the real sensor into a private
//! PostgreSQL and the live inventory, the registry served by the real MCP server on
//! 127.0.0.1, every tool called over HTTP as JSON-RPC.

mod util;

use netmonitor_mcp::Scope;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use util::*;

const KINIT: &str = "zeek/testing/btest/Traces/krb/kinit.pcap";
const JA4_TLS: &str = "suricata-verify/tests/ja4-tls/input.pcap";
const DRAFT22: &str = "suricata-verify/tests/tls/tls13-draft22/tls13_draft22.pcap";
/// Before every capture used here: the window argument for replayed (2015) traffic.
const SINCE: &str = "2000-01-01T00:00:00Z";

/// Declarations hold without any traffic: every tool has explicit annotations, a non-empty
/// output schema, a scope that matches what it does, and a read-only caller sees only
/// read-only tools.
#[test]
fn registry_declarations_are_complete_and_scoped() {
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let engine = netmonitor_engine::Engine::start(netmonitor_engine::EngineOptions {
            sensor: "test-sensor".into(),
            detection: Default::default(),
            eve: None,
            store: None,
            inventory: true,
            intel: None,
            devices: None,
            risk: None,
            soar: None,
        })
        .unwrap_or_else(|e| panic!("engine: {e}"));
        let ctx = std::sync::Arc::new(netmonitor_tools::ToolContext {
            // never connected: declarations only
            pool: pool("host=/nonexistent port=1 user=x dbname=x", 1),
            engine: engine.handles(),
            captures_dir: std::env::temp_dir(),
            config: test_config(),
            started: std::time::Instant::now(),
            whitelist: Default::default(),
            config_sources: Default::default(),
            settings: std::sync::Arc::new(netmonitor_tools::NoSettings),
            live_values: Default::default(),
        });
        let r = netmonitor_tools::build_registry(ctx).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.tools().len() >= 35, "only {} tools", r.tools().len());
        for t in r.tools() {
            let props = t.output_schema["properties"].as_object();
            assert!(
                props.is_some_and(|p| !p.is_empty()),
                "{}: empty output schema",
                t.name
            );
            assert_eq!(
                t.input_schema["additionalProperties"],
                json!(false),
                "{}",
                t.name
            );
            assert!(
                !t.title.is_empty() && t.description.len() > 40,
                "{}",
                t.name
            );
            let a = t.to_json()["annotations"].clone();
            for k in [
                "readOnlyHint",
                "destructiveHint",
                "idempotentHint",
                "openWorldHint",
            ] {
                assert!(a[k].is_boolean(), "{}: {k} not explicit", t.name);
            }
            // every input property is described
            if let Some(p) = t.input_schema["properties"].as_object() {
                for (k, v) in p {
                    assert!(
                        v["description"].is_string(),
                        "{}.{k} has no description",
                        t.name
                    );
                }
            }
            if t.annotations.read_only {
                assert_eq!(
                    t.scope,
                    Scope::ReadOnly,
                    "{} reads but needs {}",
                    t.name,
                    t.scope
                );
                assert!(!t.annotations.destructive, "{}", t.name);
            } else {
                assert!(
                    t.scope >= Scope::ReadWrite,
                    "{} writes with read_only scope",
                    t.name
                );
            }
            if t.annotations.destructive {
                assert_eq!(t.scope, Scope::Admin, "{} destroys without admin", t.name);
            }
        }
        let visible: Vec<&str> = r
            .tools()
            .iter()
            .filter(|t| Scope::ReadOnly.allows(t.scope))
            .map(|t| t.name.as_str())
            .collect();
        for w in [
            "acknowledge_alert",
            "add_whitelist_entry",
            "set_config_parameter",
            "delete_pcap_capture",
            "export_flow_pcap",
        ] {
            assert!(!visible.contains(&w), "read_only caller sees {w}");
        }
        assert!(visible.contains(&"get_recent_threats"));
        assert_eq!(
            r.tool("set_config_parameter").map(|t| t.scope),
            Some(Scope::Admin)
        );
        assert_eq!(
            r.tool("dns_lookup").map(|t| t.annotations.open_world),
            Some(true)
        );
        let uris: Vec<&str> = r.resources().iter().map(|x| x.uri.as_str()).collect();
        assert_eq!(
            uris,
            ["network://hosts", "network://map", "network://events"]
        );
        let tpls: Vec<&str> = r.templates().map(|x| x.uri_template.as_str()).collect();
        assert!(tpls.contains(&"network://hosts{?q,source,limit}"));
        // Seed 002's templates exactly, and the earlier names still answered.
        assert!(tpls.contains(&"network://host/{host_id}{?include_events,events_limit}"));
        assert!(tpls.contains(&"network://events{?host_id,type,since,limit}"));
        assert!(tpls.contains(&"network://hosts/{ip}"));
        assert!(tpls.contains(&"network://events{?ip,type,limit}"));
        let prompts: Vec<&str> = r.prompts().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            prompts,
            [
                "triage_ip",
                "summarize_last_hour",
                "review_pending_approvals"
            ]
        );
        engine.stop().await;
    });
}

/// Pages of `size` of a newest-first listing, followed by cursor, give the items of one page
/// holding them all, in the same order; a made-up cursor is refused.
fn assert_pages_list_the_same(c: &Client, tool: &str, key: &str, size: i64) {
    let ids = |a: &[Value]| a.iter().map(|x| x["id"].clone()).collect::<Vec<_>>();
    let whole = c.call(tool, json!({"since": SINCE, "limit": 500}));
    assert_eq!(
        whole["next_cursor"],
        Value::Null,
        "{tool}: one page holds them all"
    );
    let whole = ids(whole[key].as_array().unwrap());
    assert!(whole.len() as i64 > size, "{tool}: more than one page");
    let mut paged = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let mut args = json!({"since": SINCE, "limit": size});
        if !cursor.is_null() {
            args["cursor"] = cursor.clone();
        }
        let page = c.call(tool, args);
        paged.extend(ids(page[key].as_array().unwrap()));
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
        assert!(paged.len() < 1000, "{tool}: the cursor advances");
    }
    assert_eq!(paged, whole, "{tool}");
    assert!(c
        .call_err(tool, json!({"cursor": "not-a-cursor"}))
        .contains("cursor"));
}

fn names(list: &Value, key: &str) -> BTreeSet<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v[key].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn count_of(list: &Value, name: &str) -> i64 {
    list.as_array()
        .and_then(|a| a.iter().find(|v| v["name"] == json!(name)))
        .and_then(|v| v["count"].as_i64())
        .unwrap_or(0)
}

#[test]
fn tools_answer_from_real_pcaps_over_http() {
    let (Some(kinit), Some(ja4), Some(draft22)) = (oracle(KINIT), oracle(JA4_TLS), oracle(DRAFT22))
    else {
        return;
    };
    let stack = start(vec![kinit.clone(), ja4.clone(), draft22]);
    let c = Client::connect(&stack);

    // tools/list over HTTP shows every registered tool (auth off: admin)
    let mut listed = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = match &cursor {
            Some(cur) => json!({"cursor": cur}),
            None => json!({}),
        };
        let page = c.rpc("tools/list", params);
        listed.extend(names(&page["tools"], "name"));
        match page["nextCursor"].as_str() {
            Some(n) => cursor = Some(n.to_owned()),
            None => break,
        }
    }
    let registered: BTreeSet<String> = stack
        .registry
        .tools()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(listed, registered);

    // --- live sensor
    let status = c.call("get_sensor_status", json!({}));
    assert_eq!(status["running"], json!(true));
    assert_eq!(status["sources"].as_array().map(Vec::len), Some(3));
    let app = status["application"].clone();
    let live_as_req = app["krb_messages"]["KRB_AS_REQ"].as_i64().unwrap_or(0);
    let live_alerts: i64 = status["alerts"]["counters"]["raised_by_kind"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_i64).sum())
        .unwrap_or(0);
    let live_events: i64 = app["events"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_i64).sum())
        .unwrap_or(0);
    let internal = app["internal_events"].as_u64().unwrap_or(0);
    assert_eq!(live_events as u64 + internal, stack.events_delivered);
    assert!(live_as_req > 0 && live_alerts > 0);

    let mem = c.call("get_memory_status", json!({}));
    assert!(mem["process"]["rss_bytes"].as_u64().unwrap_or(0) > 1_000_000);
    assert!(mem["inventory"]["hosts"].as_u64().unwrap_or(0) >= 5);
    let ring = c.call("get_packet_buffer_summary", json!({}));
    assert!(ring["packets"].as_u64().unwrap_or(0) > 200);
    // the replayed days have their partitions, sizes come from the catalog, retention is shown
    let storage = c.call("get_storage_status", json!({}));
    let table = |name: &str| {
        storage["tables"]
            .as_array()
            .and_then(|t| t.iter().find(|x| x["table"] == json!(name)).cloned())
            .unwrap_or_else(|| panic!("{name} in {storage}"))
    };
    let flows = table("flows");
    assert!(flows["partitions"].as_u64().unwrap_or(0) >= 2, "{flows}");
    assert!(flows["bytes"].as_u64().unwrap_or(0) > 8192, "{flows}");
    assert_eq!(flows["retention_days"], json!(30));
    assert!(table("talker_rollup")["bytes"].as_u64().unwrap_or(0) > 0);
    assert_eq!(table("certificates")["retention_days"], Value::Null);
    assert!(
        storage["database_bytes"].as_u64().unwrap_or(0)
            >= storage["total_bytes"].as_u64().unwrap_or(u64::MAX)
    );
    assert!(ring["oldest"].as_str().is_some_and(|s| s.starts_with("20")));

    // --- Kerberos: the AS-REQ count agrees with the live counter and with tshark
    let krb = c.call("get_kerberos_stats", json!({"since": SINCE}));
    let db_as_req = count_of(&krb["by_message_type"], "KRB_AS_REQ");
    assert_eq!(db_as_req, live_as_req);
    if have_tool("tshark", &["--version"]) {
        let out = std::process::Command::new("tshark")
            .args(["-r"])
            .arg(&kinit)
            .args(["-Y", "kerberos.msg_type == 10"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
            .unwrap_or(0);
        assert_eq!(db_as_req as usize, out, "tshark counts {out} AS-REQs");
    }
    let total: i64 = krb["by_message_type"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["count"].as_i64()).sum())
        .unwrap_or(0);
    assert_eq!(krb["totals"]["messages"].as_i64(), Some(total));
    assert!(names(&krb["realms"], "name").contains("VLADG.NET"));
    assert!(names(&krb["top_principals"], "name").contains("valid_client_principal"));
    assert!(krb["error_codes"].as_array().is_some_and(|a| a
        .iter()
        .all(|e| e["name"].as_str().is_some_and(|n| n.starts_with("K")))));
    let attacks = c.call("get_kerberos_attacks", json!({"since": SINCE}));
    let live_krb_alerts: i64 = attacks["attack_types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str())
                .map(|t| {
                    status["alerts"]["counters"]["raised_by_kind"][t]
                        .as_i64()
                        .unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0);
    assert!(live_krb_alerts > 0);
    assert_eq!(attacks["total"].as_i64(), Some(live_krb_alerts));
    for a in attacks["attacks"].as_array().into_iter().flatten() {
        assert_eq!(a["src_ip"], json!("192.168.1.31"));
        assert!(a["mitre"].as_array().is_some_and(|m| !m.is_empty()));
    }
    assert_pages_list_the_same(&c, "get_kerberos_attacks", "attacks", 1);
    let weak = c.call("check_weak_encryption", json!({"since": SINCE}));
    assert!(weak["strong_etypes"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("aes256-cts-hmac-sha1-96"))));
    // kinit negotiates AES only, offering RC4 next to AES: no weak usage
    assert_eq!(weak["messages"], json!(0));

    // --- TLS: the SELKS handshake
    let tls = c.call(
        "get_tls_metadata",
        json!({"since": SINCE, "ip": "192.168.56.1"}),
    );
    assert_eq!(tls["returned"], json!(1));
    let s = &tls["sessions"][0];
    assert_eq!(s["ja4"], json!("t12i1810s1_27d4652c4487_06a4338d0495"));
    assert_eq!(
        s["cert_subject"],
        json!("C=FR, ST=IDF, L=Paris, O=Stamus, CN=SELKS")
    );
    assert_eq!(s["sni"], Value::Null);
    assert_eq!(s["cert_self_signed"], json!(true));
    let ja3 = s["ja3"].as_str().unwrap_or_default().to_owned();
    let by_sni = c.call(
        "get_tls_metadata",
        json!({"since": SINCE, "sni": "LOCALHOST"}),
    );
    assert_eq!(by_sni["returned"], json!(1));
    assert_eq!(
        c.call("get_tls_metadata", json!({"since": SINCE, "sni": "%"}))["returned"],
        json!(0)
    );
    assert_pages_list_the_same(&c, "get_tls_metadata", "sessions", 1);
    let stats = c.call("get_tls_stats", json!({"since": SINCE}));
    assert_eq!(stats["totals"]["sessions"], json!(2));
    assert!(
        stats["totals"]["self_signed_certificates"]
            .as_i64()
            .unwrap_or(0)
            >= 1
    );
    assert!(names(&stats["versions"], "name").contains("TLS 1.2"));
    let check = c.call("check_ja3_fingerprint", json!({"ja3": ja3.to_uppercase()}));
    assert_eq!(check["blocklisted"], json!(false));
    assert_eq!(check["sightings"]["sessions"], json!(1));
    assert_eq!(check["sightings"]["client_ips"], json!(["192.168.56.1"]));
    let before = status["ja3_blocklist_size"].as_i64().unwrap_or(0);
    let add = c.call(
        "add_ja3_blacklist",
        json!({"ja3": ja3, "reason": "test: SELKS client"}),
    );
    assert_eq!(add["created"], json!(true));
    assert_eq!(add["live_sensor"]["applied"], json!(true));
    let again = c.call(
        "add_ja3_blacklist",
        json!({"ja3": ja3, "reason": "updated"}),
    );
    assert_eq!(again["created"], json!(false));
    assert_eq!(again["previous_reason"], json!("test: SELKS client"));
    assert_eq!(
        c.call("check_ja3_fingerprint", json!({"ja3": ja3}))["blocklisted"],
        json!(true)
    );
    assert_eq!(
        c.call("get_sensor_status", json!({}))["ja3_blocklist_size"].as_i64(),
        Some(before + 1)
    );
    assert!(c
        .call_err(
            "check_ja3_fingerprint",
            json!({"ja3": "not-a-hash-not-a-hash-not-a-hash"})
        )
        .contains("ja3"));

    // --- inventory tools and resources
    let hosts = c.call("list_hosts", json!({"q": "192.168.1."}));
    let ips = names(&hosts["hosts"], "ip");
    assert!(
        ips.contains("192.168.1.31") && ips.contains("192.168.1.32"),
        "{ips:?}"
    );
    let by_name = c.call("list_hosts", json!({"q": "LocalHost"}));
    assert_eq!(
        names(&by_name["hosts"], "ip"),
        BTreeSet::from(["127.0.0.1".to_owned()])
    );
    assert_eq!(
        c.call("list_hosts", json!({"source": "krb5"}))["returned"],
        json!(1)
    );
    let host = c.call(
        "get_host",
        json!({"ip": "192.168.1.32", "include_events": true, "events_limit": 5}),
    );
    assert!(host["host"]["open_ports"]
        .as_array()
        .is_some_and(|p| p.contains(&json!(88))));
    assert_eq!(host["events"].as_array().map(Vec::len), Some(5));
    assert!(c
        .call_err("get_host", json!({"ip": "203.0.113.9"}))
        .contains("not found"));
    let alerts_ev = c.call("list_events", json!({"type": "alert", "limit": 1000}));
    assert_eq!(alerts_ev["returned"].as_i64(), Some(live_alerts));
    let he = c.call("host_events", json!({"ip": "192.168.56.1", "type": "tls"}));
    assert_eq!(
        he["events"][0]["tls"]["ja4"],
        json!("t12i1810s1_27d4652c4487_06a4338d0495")
    );
    let map = c.call("network_map", json!({"max_edges": 50}));
    assert!(map["edges"]
        .as_array()
        .is_some_and(|e| e.iter().any(|x| x["source"] == json!("192.168.1.31")
            && x["target"] == json!("192.168.1.32")
            && x["ports"]
                .as_array()
                .is_some_and(|p| p.contains(&json!(88))))));
    let devices = c.call("get_devices", json!({"q": "192.168.56"}));
    assert_eq!(devices["returned"], json!(2));
    assert_eq!(devices["devices"][0]["address_scope"], json!("private"));
    let rl = c.rpc("resources/list", json!({}));
    let uris = names(&rl["resources"], "uri");
    assert_eq!(uris.len(), 4, "{uris:?}");
    assert!(uris.contains("soar://pending"));
    let pending = c.rpc("resources/read", json!({"uri": "soar://pending"}));
    assert!(
        pending["contents"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("\"count\":0")),
        "{pending}"
    );
    let rt = c.rpc("resources/templates/list", json!({}));
    assert!(
        names(&rt["resourceTemplates"], "uriTemplate").contains("network://hosts{?q,source,limit}")
    );
    let read = |uri: &str| -> Value {
        let r = c.rpc("resources/read", json!({"uri": uri}));
        serde_json::from_str(r["contents"][0]["text"].as_str().unwrap_or("null"))
            .unwrap_or(Value::Null)
    };
    assert!(
        names(&read("network://hosts?q=192.168.56&limit=5")["hosts"], "ip")
            .contains("192.168.56.101")
    );
    assert_eq!(
        read("network://hosts/192.168.1.31")["host"]["ip"],
        json!("192.168.1.31")
    );
    let seed_host = read("network://host/192.168.1.32?include_events=true&events_limit=3");
    assert_eq!(seed_host["host"]["ip"], json!("192.168.1.32"));
    assert_eq!(seed_host["events"].as_array().map(Vec::len), Some(3));
    let bare = read("network://host/192.168.1.32?include_events=false");
    assert_eq!(bare["events"].as_array().map(Vec::len), Some(0));
    let krb_events = read("network://events?host_id=192.168.1.32&type=krb5&limit=1000")["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!krb_events.is_empty());
    // `since` keeps the events at or after the newest one's time: fewer, never more.
    let newest = krb_events[0]["timestamp"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let later = read(&format!(
        "network://events?host_id=192.168.1.32&type=krb5&since={}&limit=1000",
        newest.replace('+', "%2B")
    ))["events"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(
        later >= 1 && later < krb_events.len(),
        "{later} of {}",
        krb_events.len()
    );
    assert_eq!(
        c.call(
            "host_events",
            json!({"host_id": "192.168.56.1", "type": "tls"})
        )["events"],
        he["events"]
    );
    assert_eq!(
        c.call("get_host", json!({"host_id": "192.168.1.31"}))["host"]["ip"],
        json!("192.168.1.31")
    );
    assert!(c.call_err("get_host", json!({})).contains("host_id"));
    assert_eq!(
        read("network://events?type=krb5&limit=7")["events"]
            .as_array()
            .map(Vec::len),
        Some(7)
    );
    assert!(read("network://map")["hosts_total"].as_u64().unwrap_or(0) >= 5);
    assert!(read("network://hosts")["hosts"]
        .as_array()
        .is_some_and(|h| !h.is_empty()));

    // --- devices and traffic from the flows table
    let dev = c.call(
        "get_device_by_ip",
        json!({"ip": "192.168.56.101", "since": SINCE}),
    );
    assert_eq!(dev["traffic"]["flows_as_server"], json!(1));
    assert!(dev["inventory"].is_object());
    let ts = c.call(
        "get_device_traffic_stats",
        json!({"ip": "192.168.56.1", "since": SINCE}),
    );
    assert_eq!(ts["totals"]["flows_as_client"], json!(1));
    assert_eq!(ts["ports"][0]["port"], json!(443));
    assert_eq!(ts["ports"][0]["app_protos"], json!(["tls"]));
    assert_eq!(ts["app_protocols"][0]["name"], json!("tls"));
    let talkers = c.call("get_top_talkers", json!({"since": SINCE, "limit": 3}));
    let t = talkers["talkers"].as_array().cloned().unwrap_or_default();
    assert!(!t.is_empty());
    assert!(t
        .windows(2)
        .all(|w| w[0]["bytes_total"].as_i64() >= w[1]["bytes_total"].as_i64()));
    // the Kerberos client and its KDC moved the most bytes (the same flows, so equal totals)
    let top2: BTreeSet<String> = t
        .iter()
        .take(2)
        .filter_map(|x| x["ip"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        top2,
        BTreeSet::from(["192.168.1.31".to_owned(), "192.168.1.32".to_owned()])
    );
    let live = c.call("get_top_talkers", json!({"source": "live", "limit": 3}));
    let live_top: Vec<(String, i64)> = live["talkers"]
        .as_array()
        .into_iter()
        .flatten()
        .take(2)
        .map(|x| {
            (
                x["ip"].as_str().unwrap_or("").to_owned(),
                x["bytes_total"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    for (ip, bytes) in &live_top {
        assert!(top2.contains(ip), "live top talker {ip}");
        assert_eq!(
            Some(*bytes),
            t[0]["bytes_total"].as_i64(),
            "live and stored totals agree"
        );
    }
    // hours back from now: the 2015 captures are outside
    assert_eq!(
        c.call("get_top_talkers", json!({"hours": 1}))["talkers"],
        json!([])
    );

    // --- alerts, whitelist, acknowledgement, MITRE, CSV
    let recent = c.call("get_recent_threats", json!({"since": SINCE, "limit": 500}));
    assert_eq!(recent["total"].as_i64(), Some(live_alerts));
    assert_eq!(recent["suppressed_by_whitelist"], json!(0));
    assert_eq!(
        recent["next_cursor"],
        Value::Null,
        "one page holds them all"
    );
    // pages of three, by cursor, list the same alerts in the same order
    assert_pages_list_the_same(&c, "get_recent_threats", "alerts", 3);
    let tls_alerts = recent["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["src_ip"] == json!("192.168.56.1"))
                .count()
        })
        .unwrap_or(0) as i64;
    assert!(tls_alerts > 0);
    let wl = c.call(
        "add_whitelist_entry",
        json!({"ip_cidr": "192.168.56.7/24", "description": "lab"}),
    );
    assert_eq!(wl["created"], json!(true));
    assert_eq!(wl["normalized"], json!(true));
    assert_eq!(wl["entry"]["ip_cidr"], json!("192.168.56.0/24"));
    assert_eq!(
        c.call("add_whitelist_entry", json!({"ip_cidr": "192.168.56.0/24"}))["created"],
        json!(false)
    );
    assert!(c
        .call_err("add_whitelist_entry", json!({"ip_cidr": "300.1.1.1"}))
        .contains("ip_cidr"));
    let hidden = c.call("get_recent_threats", json!({"since": SINCE}));
    assert_eq!(hidden["total"].as_i64(), Some(live_alerts - tls_alerts));
    assert_eq!(hidden["suppressed_by_whitelist"].as_i64(), Some(tls_alerts));
    assert_eq!(
        c.call("get_whitelist_entries", json!({"ip": "192.168.56.1"}))["returned"],
        json!(1)
    );
    assert_eq!(
        c.call("get_whitelist_entries", json!({"ip": "192.168.1.31"}))["returned"],
        json!(0)
    );
    let det = c.call(
        "get_threat_detections",
        json!({"since": SINCE, "include_whitelisted": true}),
    );
    let asrep = det["detections"]
        .as_array()
        .and_then(|d| {
            d.iter()
                .find(|g| g["threat_type"] == json!("asrep_roasting"))
        })
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(asrep["src_ip"], json!("192.168.1.31"));
    assert_eq!(
        asrep["alerts"].as_i64(),
        Some(
            status["alerts"]["counters"]["raised_by_kind"]["asrep_roasting"]
                .as_i64()
                .unwrap_or(-1)
        )
    );
    let removed = c.call("remove_whitelist_entry", json!({"id": wl["entry"]["id"]}));
    assert_eq!(removed["removed"], json!(1));
    assert!(c
        .call_err("remove_whitelist_entry", json!({"id": wl["entry"]["id"]}))
        .contains("not found"));
    assert_eq!(
        c.call("get_recent_threats", json!({"since": SINCE}))["total"].as_i64(),
        Some(live_alerts)
    );
    suppression_tools_answer_from_the_alert_stage(&c);

    // An indicator nobody saw has context (feeds, none) and no sightings, not an error.
    let unseen = c.call(
        "get_threat_context",
        json!({"indicator": "never-seen.example", "since": SINCE}),
    );
    assert!(
        unseen.to_string().contains("never-seen.example"),
        "{unseen}"
    );
    mitre_mapping_sums_the_sensors_rollups(&stack, &c);
    let mitre = c.call("get_mitre_mapping", json!({"since": SINCE}));
    let t1558 = mitre["techniques"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["technique"] == json!("T1558.004")))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(t1558["alerts"], asrep["alerts"]);
    assert_eq!(t1558["threat_types"], json!(["asrep_roasting"]));

    let first_id = recent["alerts"][0]["id"].clone();
    let ack = c.call("acknowledge_alert", json!({"alert_id": first_id}));
    assert_eq!(ack["outcome"], json!("acknowledged"));
    assert_eq!(ack["alert"]["acknowledged"], json!(true));
    assert_eq!(ack["alert"]["acknowledged_by"], json!("anonymous"));
    assert_eq!(
        c.call("acknowledge_alert", json!({"alert_id": first_id}))["outcome"],
        json!("already_acknowledged")
    );
    assert_eq!(
        c.call("get_recent_threats", json!({"since": SINCE}))["total"].as_i64(),
        Some(live_alerts - 1)
    );
    assert!(c
        .call_err("acknowledge_alert", json!({"alert_id": 999_999_999}))
        .contains("not found"));
    let acked_first_is_krb = recent["alerts"][0]["src_ip"] == json!("192.168.1.31");
    let by_ip = c.call(
        "acknowledge_alerts_by_ip",
        json!({"ip": "192.168.1.31", "since": SINCE}),
    );
    let krb_alerts = status["alerts"]["counters"]["raised_by_kind"]["asrep_roasting"]
        .as_i64()
        .unwrap_or(0);
    assert_eq!(
        by_ip["acknowledged"].as_i64(),
        Some(krb_alerts - i64::from(acked_first_is_krb))
    );

    let csv = c.call_with_progress("export_alerts_csv", json!({"since": SINCE}));
    let progress = csv
        .iter()
        .filter(|m| m["method"] == json!("notifications/progress"))
        .count();
    assert!(progress >= 1);
    let result = csv.last().cloned().unwrap_or(Value::Null);
    let sc = &result["result"]["structuredContent"];
    assert_eq!(sc["rows"].as_i64(), Some(live_alerts));
    let text = sc["csv"].as_str().unwrap_or("");
    assert_eq!(text.lines().count() as i64, live_alerts + 1);
    assert!(text.starts_with("id,timestamp,severity,threat_type"));
    assert_eq!(
        text.matches(",true,").count() as i64,
        krb_alerts + i64::from(!acked_first_is_krb)
    );

    // --- analyze_ip with progress over SSE
    let msgs = c.call_with_progress("analyze_ip", json!({"ip": "192.168.1.31", "since": SINCE}));
    let steps: Vec<f64> = msgs
        .iter()
        .filter(|m| m["method"] == json!("notifications/progress"))
        .filter_map(|m| m["params"]["progress"].as_f64())
        .collect();
    assert!(
        steps.len() >= 3 && steps.windows(2).all(|w| w[0] < w[1]),
        "{steps:?}"
    );
    let a = msgs
        .last()
        .map(|m| m["result"]["structuredContent"].clone())
        .unwrap_or(Value::Null);
    assert_eq!(a["alerts"]["total"].as_i64(), Some(krb_alerts));
    assert_eq!(a["alerts"]["unacknowledged"], json!(0));
    assert_eq!(
        a["kerberos"]["totals"]["messages"],
        krb["totals"]["messages"]
    );
    assert_eq!(a["host"]["ip"], json!("192.168.1.31"));
    assert_eq!(a["address_scope"], json!("private"));
    assert!(
        a["traffic"]["totals"]["flows_as_client"]
            .as_i64()
            .unwrap_or(0)
            > 50
    );
    assert!(a["summary"]
        .as_str()
        .is_some_and(|s| s.contains("asrep_roasting")));

    // --- PCAP export, listing, deletion
    let exp = c.call(
        "export_flow_pcap",
        json!({"src_ip": "192.168.56.1", "dst_port": 443, "proto": "tcp"}),
    );
    let path = std::path::PathBuf::from(exp["path"].as_str().unwrap_or(""));
    assert!(path.starts_with(stack.captures_dir.canonicalize().unwrap_or_default()));
    if have_tool("tcpdump", &["--version"]) {
        assert_eq!(
            tcpdump_count(&path),
            Some(exp["packets"].as_u64().unwrap_or(0) as usize)
        );
        assert_eq!(
            tcpdump_count(&path),
            tcpdump_count(&ja4),
            "the whole SELKS flow was exported"
        );
    }
    let tls_alert = recent["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["src_ip"] == json!("192.168.56.1")))
        .cloned()
        .unwrap_or(Value::Null);
    let by_alert = c.call("export_flow_pcap", json!({"alert_id": tls_alert["id"]}));
    assert_eq!(by_alert["packets"], exp["packets"]);
    assert!(c
        .call_err("export_flow_pcap", json!({}))
        .contains("flow_id"));
    assert!(c
        .call_err("export_flow_pcap", json!({"src_ip": "203.0.113.1"}))
        .contains("no packet"));
    let caps = c.call("get_pcap_captures", json!({}));
    assert_eq!(caps["returned"], json!(2));
    assert_eq!(caps["captures"][0]["exists"], json!(true));
    let pstats = c.call("get_pcap_stats", json!({}));
    assert_eq!(pstats["captures"]["count"], json!(2));
    assert_eq!(pstats["directory"]["files"], json!(2));
    let outside = stack.db.dir().join("outside.pcap");
    std::fs::write(&outside, b"keep").unwrap_or_else(|e| panic!("{e}"));
    assert!(c
        .call_err("delete_pcap_capture", json!({"path": "../outside.pcap"}))
        .contains("path"));
    assert!(c
        .call_err(
            "delete_pcap_capture",
            json!({"path": outside.display().to_string()})
        )
        .contains("captures directory"));
    assert!(outside.exists());
    let del = c.call(
        "delete_pcap_capture",
        json!({"capture_id": exp["capture_id"]}),
    );
    assert_eq!(del["file_deleted"], json!(true));
    assert_eq!(del["record_deleted"], json!(true));
    assert!(!path.exists());
    assert_eq!(c.call("get_pcap_captures", json!({}))["returned"], json!(1));

    // --- configuration
    let cfg = c.call("get_config_parameters", json!({"prefix": "store."}));
    assert!(names(&cfg["parameters"], "key").contains("store.batch_size"));
    assert!(!names(&cfg["parameters"], "key").contains("log_level"));
    // A key that needs a restart is refused with the reason; a live key applies at once.
    assert!(c
        .call_err(
            "set_config_parameter",
            json!({"key": "store.batch_size", "value": 100})
        )
        .contains("restart"));
    let set = c.call(
        "set_config_parameter",
        json!({"key": "detection.alerts.dedup_window_secs", "value": 30}),
    );
    assert_eq!(set["recorded"], json!(true));
    assert_eq!(set["applied"], json!(true));
    assert_eq!(set["new_value"], json!(30));
    assert_ne!(set["old_value"], json!(30));
    let cfg = c.call("get_config_parameters", json!({}));
    assert_eq!(
        cfg["overrides"][0]["key"],
        json!("detection.alerts.dedup_window_secs")
    );
    assert!(c
        .call_err(
            "set_config_parameter",
            json!({"key": "database.url", "value": "x"})
        )
        .contains("key"));
    assert!(c
        .call_err(
            "set_config_parameter",
            json!({"key": "detection.alerts.dedup_window_secs", "value": "big"})
        )
        .contains("value"));

    // --- network
    let fwd = c.call("dns_lookup", json!({"query": "localhost"}));
    assert!(fwd["addresses"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("127.0.0.1")) || a.contains(&json!("::1"))));
    assert_eq!(
        c.call("dns_lookup", json!({"query": "127.0.0.1"}))["kind"],
        json!("reverse")
    );
    assert!(c
        .call_err("dns_lookup", json!({"query": "bad name!"}))
        .contains("query"));

    // --- argument validation names the field
    assert!(c
        .call_err("get_recent_threats", json!({"hours": 0}))
        .contains("hours"));
    assert!(c
        .call_err("get_recent_threats", json!({"bogus": 1}))
        .contains("bogus"));
    assert!(c
        .call_err("analyze_ip", json!({"ip": "10.0.0.999"}))
        .contains("ip"));

    // --- prompts
    let p = c.rpc(
        "prompts/get",
        json!({"name": "triage_ip", "arguments": {"ip": "192.168.1.31"}}),
    );
    assert!(p["messages"][0]["content"]["text"]
        .as_str()
        .is_some_and(|t| t.contains("`analyze_ip` with {\"hours\":24,\"ip\":\"192.168.1.31\"}")));
    let p = c.rpc("prompts/get", json!({"name": "summarize_last_hour"}));
    assert!(p["messages"][0]["content"]["text"]
        .as_str()
        .is_some_and(|t| t.contains("get_recent_threats")));
    let p = c.rpc("prompts/get", json!({"name": "review_pending_approvals"}));
    assert!(p["messages"][0]["content"]["text"]
        .as_str()
        .is_some_and(|t| t.contains("get_pending_approvals")));
}

/// Domain, port, direction and sensor entries, service providers, and the stage's answers.
fn suppression_tools_answer_from_the_alert_stage(c: &Client) {
    let ask = |args: Value| c.call("test_alert_suppression", args);
    let base = json!({"src_ip": "10.20.0.5", "dest_ip": "198.51.100.9", "dest_port": 443,
                      "domain": "eu.backup.example", "threat_type": "high_outbound_volume"});
    assert_eq!(ask(base.clone())["outcome"], json!("raised"));
    // The seed's form: a domain given where an address is expected.
    let d = c.call(
        "add_whitelist_entry",
        json!({"ip_cidr": "Backup.Example.", "port": 443}),
    );
    assert_eq!(d["entry"]["domain"], json!("backup.example"));
    assert_eq!(d["entry"]["ip_cidr"], Value::Null);
    let a = ask(base.clone());
    assert_eq!(
        (a["outcome"].clone(), a["suppressed"].clone()),
        (json!("whitelisted"), json!(true))
    );
    assert_eq!(a["whitelist_entry"]["id"], d["entry"]["id"]);
    let mut other_port = base.clone();
    other_port["dest_port"] = json!(8443);
    assert_eq!(
        ask(other_port)["outcome"],
        json!("raised"),
        "the port must match too"
    );
    let mut sibling = base.clone();
    sibling["domain"] = json!("notbackup.example");
    assert_eq!(ask(sibling)["outcome"], json!("raised"), "label boundary");
    c.call(
        "remove_whitelist_entry",
        json!({"ip_cidr": "backup.example"}),
    );
    assert_eq!(ask(base.clone())["outcome"], json!("raised"));

    let src = c.call(
        "add_whitelist_entry",
        json!({"ip_cidr": "10.20.0.0/16", "direction": "destination"}),
    );
    assert_eq!(
        ask(base.clone())["outcome"],
        json!("raised"),
        "10.20/16 is the source here"
    );
    c.call("remove_whitelist_entry", json!({"id": src["entry"]["id"]}));
    let other = c.call(
        "add_whitelist_entry",
        json!({"ip_cidr": "10.20.0.5", "sensor": "another-sensor"}),
    );
    assert_eq!(
        ask(base.clone())["outcome"],
        json!("raised"),
        "another sensor's entry"
    );
    c.call(
        "remove_whitelist_entry",
        json!({"id": other["entry"]["id"]}),
    );
    assert!(c
        .call_err(
            "add_whitelist_entry",
            json!({"direction": "sideways", "ip_cidr": "10.0.0.1"})
        )
        .contains("direction"));

    let p = c.call(
        "create_service_provider",
        json!({"name": "offsite-backup", "category": "backup", "ranges": ["198.51.100.0/24"],
               "domains": ["backup.example"], "suppress": ["high_outbound_volume"]}),
    );
    assert_eq!(p["provider"]["ranges"], json!(["198.51.100.0/24"]));
    assert!(c
        .call_err(
            "create_service_provider",
            json!({"name": "offsite-backup", "category": "backup", "ranges": ["192.0.2.0/24"]})
        )
        .contains("exists"));
    assert!(c
        .call_err("create_service_provider", json!({"name": "x", "category": "cdn", "ranges": ["192.0.2.0/24"], "suppress": ["nonsense"]}))
        .contains("suppress"));
    let a = ask(base.clone());
    assert_eq!(a["outcome"], json!("provider_suppressed"));
    assert_eq!(a["service_provider"]["name"], json!("offsite-backup"));
    let mut beacon = base.clone();
    beacon["threat_type"] = json!("beaconing");
    let b = ask(beacon);
    assert_eq!(
        b["outcome"],
        json!("raised"),
        "only the kinds it lists are suppressed"
    );
    assert_eq!(b["service_provider"]["name"], json!("offsite-backup"));
    let hit = c.call("check_ip_service_provider", json!({"ip": "198.51.100.77"}));
    assert_eq!(hit["is_service_provider"], json!(true));
    assert_eq!(hit["matched_range"], json!("198.51.100.0/24"));
    assert_eq!(
        c.call("check_ip_service_provider", json!({"ip": "198.51.101.1"}))["is_service_provider"],
        json!(false)
    );
    let list = c.call("get_service_providers", json!({"category": "backup"}));
    assert_eq!(list["returned"], json!(1));
    assert_eq!(
        c.call("get_service_providers", json!({"category": "cdn"}))["returned"],
        json!(0)
    );
    let stats = c.call("get_alert_suppression_stats", json!({}));
    assert_eq!(stats["suppressed_alerts"], json!("drop"));
    assert!(stats["raised"].as_u64().unwrap() > 0, "{stats}");
}

/// A window older than the live counters, which the rollup of every sensor sharing the
/// database covers: answered from `mitre_rollup`, the sensors' cells added up.
fn mitre_mapping_sums_the_sensors_rollups(stack: &Stack, c: &Client) {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::PgConnection::establish(&stack.db.conninfo()).unwrap();
    let cell = |sensor: &str, alerts: u32, src: &str| {
        format!(
            "('2001-01-01T00:00:00Z', 'T1046', '{sensor}', {alerts}, '{{\"alerts\": {alerts}, \"kinds\": [\"port_scan\"], \"severity\": 2, \
             \"first_us\": 978307200000000, \"last_us\": 978307260000000, \"sources\": [\"{src}\"], \"targets\": [\"10.0.0.1\"]}}')"
        )
    };
    diesel::sql_query(format!(
        "INSERT INTO mitre_rollup (bucket, technique, sensor, alerts, doc) VALUES {}, {}",
        cell("sensor-a", 3, "10.0.0.7"),
        cell("sensor-b", 4, "10.0.0.8")
    ))
    .execute(&mut conn)
    .unwrap();
    let m = c.call(
        "get_mitre_mapping",
        json!({"since": "2001-01-01T00:00:00Z", "until": "2001-01-01T01:00:00Z"}),
    );
    assert_eq!(m["source"], json!("rollup"), "{m}");
    assert_eq!(m["techniques"][0]["technique"], json!("T1046"));
    assert_eq!(m["techniques"][0]["alerts"], json!(7), "{m}");
    assert_eq!(m["techniques"][0]["sources"], json!(2));
    assert_eq!(m["tactics"][0]["name"], json!("Discovery"));
    diesel::sql_query("DELETE FROM mitre_rollup WHERE bucket < '2002-01-01'")
        .execute(&mut conn)
        .unwrap();
}
