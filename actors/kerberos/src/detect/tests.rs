//! Detector tests: real exchanges from the fixtures, and real messages re-addressed (other
//! account, other service) to build attack sequences.

use super::*;
use crate::flow::KrbFlow;
use crate::testutil::{load, Seg};
use netmonitor_common::{Direction, FlowKey, Timestamp};
use std::net::Ipv4Addr;

const SEC: i64 = 1_000_000;

fn header(client: u8, flow_id: u64, ts: i64) -> EventHeader {
    EventHeader {
        ts: Timestamp(ts),
        flow_id,
        key: FlowKey {
            src_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, client)),
            src_port: 40_000,
            dst_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)),
            dst_port: 88,
            proto: 6,
        },
    }
}

/// Decoded messages of a fixture with the flow id each came on (UDP streams offset by 1e6).
fn messages(segs: &[Seg]) -> Vec<(u64, KrbMessage)> {
    let mut flows: HashMap<u64, KrbFlow> = HashMap::new();
    let mut out = Vec::new();
    for s in segs {
        let id = u64::from(s.stream) + if s.udp { 1_000_000 } else { 0 };
        let flow = flows.entry(id).or_default();
        let dir = if s.to_server {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        if s.udp {
            out.extend(flow.on_udp(dir, &s.bytes).map(|m| (id, m)));
        } else {
            let mut v = Vec::new();
            flow.on_tcp(dir, &s.bytes, &mut v);
            out.extend(v.into_iter().map(|m| (id, m)));
        }
    }
    out
}

/// Runs a fixture through a detector, one second per message, all from client .10.
fn run(det: &mut KerberosDetector, name: &str) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for (i, (flow, m)) in messages(&load(name)).into_iter().enumerate() {
        alerts.extend(det.inspect(&header(10, flow, i as i64 * SEC), &m));
    }
    alerts
}

fn sids(alerts: &[Alert]) -> Vec<u32> {
    alerts.iter().map(|a| a.signature_id).collect()
}

/// The first message of a fixture matching a predicate.
fn find(name: &str, pred: impl Fn(&KrbMessage) -> bool) -> KrbMessage {
    messages(&load(name))
        .into_iter()
        .map(|(_, m)| m)
        .find(|m| pred(m))
        .expect("fixture has the message")
}

#[test]
fn config_defaults_validation_and_unknown_fields() {
    let cfg = KrbDetectConfig::default();
    assert_eq!(cfg.validate(), Ok(()));
    let partial: KrbDetectConfig = serde_json::from_str(r#"{"window_secs": 60}"#).unwrap();
    assert_eq!(partial.window_secs, 60);
    assert_eq!(partial.bruteforce_failures, cfg.bruteforce_failures);
    let err = serde_json::from_str::<KrbDetectConfig>(r#"{"windw_secs": 60}"#).unwrap_err();
    assert!(err.to_string().contains("windw_secs"), "{err}");
    let bad = KrbDetectConfig {
        window_secs: 0,
        ..cfg.clone()
    };
    assert_eq!(bad.validate().unwrap_err().field, "window_secs");
    let bad = KrbDetectConfig {
        spray_distinct_users: MAX_DISTINCT_PER_KEY + 1,
        ..cfg
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("kerberos.spray_distinct_users"));
}

#[test]
fn kerberoast_pcap_raises_one_weak_ticket_alert() {
    let mut det = KerberosDetector::new(KrbDetectConfig::default());
    let alerts = run(&mut det, "kerberoast.txt");
    assert_eq!(sids(&alerts), [RULE_KERBEROAST_WEAK_TICKET.signature_id]);
    let a = &alerts[0];
    assert_eq!(a.mitre, ["T1558.003"]);
    assert_eq!(a.threat_type, "kerberoasting");
    assert_eq!(a.evidence["sname"], "HTTP/dc-mantvydas.offense.local");
    assert_eq!(a.evidence["ticket_encryption"], "rc4-hmac");
    assert_eq!(a.evidence["account"], "spotless@OFFENSE.LOCAL");
    assert_eq!(a.evidence["client_offered_only_weak"], false);
    // The same exchange again within the window: no second alert; after it: one more.
    let rep = find("kerberoast.txt", |m| m.msg_type == KrbMsgType::TgsRep);
    assert!(det.inspect(&header(10, 5, 100 * SEC), &rep).is_empty());
    assert_eq!(det.inspect(&header(10, 5, 400 * SEC), &rep).len(), 1);
    assert_eq!(det.stats().alerts_by_threat.get("kerberoasting"), Some(&2));
}

#[test]
fn krbtgt_and_aes_tickets_are_not_kerberoasting() {
    let mut det = KerberosDetector::new(KrbDetectConfig::default());
    // capture-35: AES everywhere, a normal Windows logon.
    assert!(run(&mut det, "capture-35.txt").is_empty());
    let mut rep = find("kerberoast.txt", |m| m.msg_type == KrbMsgType::TgsRep);
    rep.sname = Some("krbtgt/OFFENSE.LOCAL".into());
    assert!(det.inspect(&header(11, 1, 0), &rep).is_empty());
}

#[test]
fn many_spns_from_one_client() {
    let cfg = KrbDetectConfig::default();
    let threshold = cfg.kerberoast_distinct_spns;
    let mut det = KerberosDetector::new(cfg);
    let req = find("kerberoast.txt", |m| m.msg_type == KrbMsgType::TgsReq);
    for i in 0..threshold {
        let mut m = req.clone();
        m.sname = Some(format!("MSSQLSvc/sql{i}.offense.local:1433"));
        let alerts = det.inspect(&header(20, i as u64, i as i64 * SEC), &m);
        if i + 1 < threshold {
            assert!(alerts.is_empty(), "alert after {} SPNs", i + 1);
        } else {
            assert_eq!(sids(&alerts), [RULE_KERBEROAST_MANY_SPNS.signature_id]);
            assert_eq!(alerts[0].evidence["distinct_spns"], threshold);
            assert_eq!(alerts[0].severity, 1);
        }
    }
    // Repeating one SPN does not count; another client is tracked apart.
    for i in 0..threshold * 2 {
        assert!(det
            .inspect(&header(21, 900, i as i64 * SEC), &req)
            .is_empty());
    }
}

#[test]
fn spns_outside_the_window_do_not_add_up() {
    let mut det = KerberosDetector::new(KrbDetectConfig {
        window_secs: 10,
        ..Default::default()
    });
    let req = find("kerberoast.txt", |m| m.msg_type == KrbMsgType::TgsReq);
    for i in 0..100 {
        let mut m = req.clone();
        m.sname = Some(format!("svc{i}/host"));
        assert!(det
            .inspect(&header(22, i, i as i64 * 60 * SEC), &m)
            .is_empty());
    }
}

#[test]
fn asrep_roasting_only_without_preauth() {
    let mut det = KerberosDetector::new(KrbDetectConfig::default());
    // bug-8278: AS-REQ without pre-auth gets PREAUTH_REQUIRED; the retry carries
    // PA-ENC-TIMESTAMP and gets the AS-REP: not AS-REP roasting.
    let alerts = run(&mut det, "bug-8278.txt");
    assert!(!sids(&alerts).contains(&RULE_ASREP_ROAST.signature_id));
    // kinit: valid_client_principal gets a TGT without any pre-auth, repeatedly: one alert
    // per window; the PKINIT and encrypted-timestamp logons raise none.
    let mut det = KerberosDetector::new(KrbDetectConfig::default());
    let alerts = run(&mut det, "kinit.txt");
    let roast: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.signature_id == RULE_ASREP_ROAST.signature_id)
        .collect();
    let accounts: Vec<&str> = roast
        .iter()
        .filter_map(|a| a.evidence["account"].as_str())
        .collect();
    assert!(
        accounts.contains(&"valid_client_principal@VLADG.NET"),
        "{accounts:?}"
    );
    assert!(!accounts.iter().any(|a| a.starts_with("requires_preauth")
        || a.starts_with("test_pkinit")
        || a.starts_with("WELLKNOWN")));
    let mut sorted = accounts.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        accounts.len(),
        "one alert per account per window"
    );
    assert_eq!(roast[0].mitre, ["T1558.004"]);
}

#[test]
fn asrep_without_its_request_raises_nothing() {
    let mut det = KerberosDetector::new(KrbDetectConfig::default());
    let rep = find("kinit.txt", |m| m.msg_type == KrbMsgType::AsRep);
    assert!(det.inspect(&header(30, 77, 0), &rep).is_empty());
}

/// A wrong-password error and its request from kinit (MIT: KRB_AP_ERR_BAD_INTEGRITY),
/// renamed to `account`.
fn failed_logon(account: &str, code: i32) -> (KrbMessage, KrbMessage) {
    let mut req = find("kinit.txt", |m| {
        m.msg_type == KrbMsgType::AsReq && m.padata_types.contains(&2)
    });
    let mut err = find("kinit.txt", |m| {
        m.e_text.as_deref() == Some("PREAUTH_FAILED")
    });
    req.cname = Some(account.to_owned());
    err.cname = Some(account.to_owned());
    err.error_code = Some(code);
    (req, err)
}

#[test]
fn brute_force_against_one_account() {
    let cfg = KrbDetectConfig::default();
    let threshold = cfg.bruteforce_failures;
    let mut det = KerberosDetector::new(cfg);
    // MIT's code 31 and Windows' code 24 both count.
    for i in 0..threshold {
        let (req, err) = failed_logon("alice", if i % 2 == 0 { 31 } else { 24 });
        let t = i as i64 * SEC;
        assert!(det.inspect(&header(40, i as u64, t), &req).is_empty());
        let alerts = det.inspect(&header(40, i as u64, t + 1000), &err);
        if i + 1 < threshold {
            assert!(alerts.is_empty());
        } else {
            assert_eq!(sids(&alerts), [RULE_BRUTE_FORCE.signature_id]);
            assert_eq!(alerts[0].mitre, ["T1110.001"]);
            assert_eq!(alerts[0].evidence["failures"], threshold);
            assert_eq!(alerts[0].evidence["account"], "alice@VLADG.NET");
        }
    }
    // More failures in the same window: no storm.
    let (req, err) = failed_logon("alice", 24);
    det.inspect(&header(40, 99, 20 * SEC), &req);
    assert!(det.inspect(&header(40, 99, 20 * SEC), &err).is_empty());
}

#[test]
fn password_spraying_across_accounts() {
    let cfg = KrbDetectConfig::default();
    let threshold = cfg.spray_distinct_users;
    let mut det = KerberosDetector::new(cfg);
    let mut all = Vec::new();
    for i in 0..threshold {
        let (req, mut err) = failed_logon(&format!("user{i}"), 24);
        // Windows leaves cname out of some errors: the request names the account.
        if i % 2 == 0 {
            err.cname = None;
        }
        det.inspect(&header(50, i as u64, i as i64 * SEC), &req);
        all.extend(det.inspect(&header(50, i as u64, i as i64 * SEC), &err));
    }
    assert_eq!(sids(&all), [RULE_PASSWORD_SPRAY.signature_id]);
    assert_eq!(all[0].evidence["distinct_accounts"], threshold);
    assert_eq!(all[0].mitre, ["T1110.003"]);
    assert!(all[0].evidence["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "user0@vladg.net"));
}

#[test]
fn user_enumeration_counts_distinct_unknown_principals() {
    let mut det = KerberosDetector::new(KrbDetectConfig::default());
    // kinit asks for the same unknown enterprise principal 17 times: not enumeration.
    let alerts = run(&mut det, "kinit.txt");
    assert!(!sids(&alerts).contains(&RULE_USER_ENUMERATION.signature_id));
    let err = find("kinit.txt", |m| m.error_code == Some(6));
    let threshold = det.config().enum_distinct_users;
    let mut all = Vec::new();
    for i in 0..threshold {
        let mut e = err.clone();
        e.cname = Some(format!("guess{i}"));
        all.extend(det.inspect(&header(60, 1000 + i as u64, 1000 * SEC), &e));
    }
    assert_eq!(sids(&all), [RULE_USER_ENUMERATION.signature_id]);
    assert_eq!(all[0].mitre, ["T1087.002"]);
    assert_eq!(all[0].evidence["distinct_unknown_principals"], threshold);
}

#[test]
fn weak_encryption_requested_and_downgraded() {
    // bug-8278 and capture-14: the client offers RC4 only.
    let mut det = KerberosDetector::new(KrbDetectConfig::default());
    let alerts = run(&mut det, "capture-14.txt");
    let weak = alerts
        .iter()
        .find(|a| a.signature_id == RULE_WEAK_ETYPES_REQUESTED.signature_id)
        .unwrap();
    assert_eq!(weak.evidence["requested_etypes"], json!(["rc4-hmac"]));
    assert_eq!(weak.mitre, ["T1562.010", "T1558"]);
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a.signature_id == weak.signature_id)
            .count(),
        1
    );
    // capture-14's TGS-REP also carries an RC4 service ticket.
    assert!(sids(&alerts).contains(&RULE_KERBEROAST_WEAK_TICKET.signature_id));
    let roast = alerts
        .iter()
        .find(|a| a.signature_id == RULE_KERBEROAST_WEAK_TICKET.signature_id)
        .unwrap();
    assert_eq!(roast.severity, 1, "client offered only weak etypes");
    // Downgrade: the client offered AES, the reply came back RC4.
    let mut det = KerberosDetector::new(KrbDetectConfig::default());
    let req = find("capture-15.txt", |m| {
        m.msg_type == KrbMsgType::AsReq && m.padata_types.contains(&2)
    });
    let mut rep = find("capture-15.txt", |m| m.msg_type == KrbMsgType::AsRep);
    rep.encryption = Some(23);
    assert!(det.inspect(&header(70, 1, 0), &req).is_empty());
    let alerts = det.inspect(&header(70, 1, SEC), &rep);
    assert_eq!(sids(&alerts), [RULE_ENCRYPTION_DOWNGRADE.signature_id]);
    assert_eq!(alerts[0].evidence["reply_encryption"], "rc4-hmac");
}

#[test]
fn many_renewals_from_one_client() {
    let cfg = KrbDetectConfig {
        renewal_requests: 3,
        ..Default::default()
    };
    let mut det = KerberosDetector::new(cfg);
    // capture-15 has a real renewal TGS-REQ (KDC options renew + canonicalize).
    let renew = find("capture-15.txt", |m| {
        m.kdc_options.is_some_and(|o| o & KDC_OPT_RENEW != 0)
    });
    let plain = find("capture-15.txt", |m| {
        m.msg_type == KrbMsgType::TgsReq && m.kdc_options.is_some_and(|o| o & KDC_OPT_RENEW == 0)
    });
    let mut got = Vec::new();
    for i in 0..6 {
        got.extend(det.inspect(&header(80, i, i as i64 * SEC), &plain));
    }
    assert!(got.is_empty());
    for i in 0..3 {
        got.extend(det.inspect(&header(80, 10 + i, i as i64 * SEC), &renew));
    }
    assert_eq!(sids(&got), [RULE_TICKET_RENEWALS.signature_id]);
    assert_eq!(got[0].evidence["renewals"], 3);
}

#[test]
fn disabled_detector_still_counts() {
    let mut det = KerberosDetector::new(KrbDetectConfig {
        enabled: false,
        ..Default::default()
    });
    assert!(run(&mut det, "kerberoast.txt").is_empty());
    let s = det.stats();
    assert_eq!(s.messages, 2);
    assert_eq!(s.by_msg_type.get("KRB_TGS_REP"), Some(&1));
    assert_eq!(s.weak_etypes.get("rc4-hmac"), Some(&1));
}

#[test]
fn stats_of_kinit() {
    let mut det = KerberosDetector::new(KrbDetectConfig::default());
    run(&mut det, "kinit.txt");
    let s = det.stats();
    assert_eq!(s.messages, 188);
    assert_eq!(s.by_msg_type.values().sum::<u64>(), 188);
    assert_eq!(
        s.errors_by_code.get("KDC_ERR_C_PRINCIPAL_UNKNOWN"),
        Some(&19)
    );
    assert_eq!(s.errors_by_code.get("KDC_ERR_BADOPTION"), Some(&1));
    assert_eq!(
        s.top_clients[0],
        TopCount {
            name: "192.168.1.10".into(),
            count: 188
        }
    );
    assert_eq!(s.top_accounts[0].name, "valid_client_principal@VLADG.NET");
    assert_eq!(s.top_services[0].name, "krbtgt/VLADG.NET");
    assert!(s.top_accounts.len() <= TOP_N);
    assert_eq!(s.weak_encryption_messages, 0);
    let v = serde_json::to_value(&s).unwrap();
    assert!(v["errors_by_code"].is_object() && v["top_clients"].is_array());
}

#[test]
fn memory_stays_bounded_under_many_clients() {
    let cfg = KrbDetectConfig {
        max_tracked: 64,
        ..Default::default()
    };
    let mut det = KerberosDetector::new(cfg);
    let (req, err) = failed_logon("bob", 24);
    for i in 0..5_000u32 {
        let mut h = header(0, u64::from(i), i64::from(i));
        h.key.src_ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        det.inspect(&h, &req);
        det.inspect(&h, &err);
    }
    assert!(det.pending.len() <= 64);
    assert!(det.preauth_failures.len() <= 64);
    assert!(det.sprayed.len() <= 64);
    assert!(det.stats().evicted_keys > 0);
    assert!(det.stats.clients.0.len() <= MAX_TOP_TRACKED);
    // Detection still works after evictions.
    let mut alerts = Vec::new();
    for i in 0..5 {
        det.inspect(&header(99, 50_000 + i, 10_000 + i as i64), &req);
        alerts.extend(det.inspect(&header(99, 50_000 + i, 10_000 + i as i64), &err));
    }
    assert_eq!(sids(&alerts), [RULE_BRUTE_FORCE.signature_id]);
}

#[test]
fn rules_are_unique_and_mapped() {
    let mut ids: Vec<u32> = RULES.iter().map(|r| r.signature_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), RULES.len());
    assert!(RULES
        .iter()
        .all(|r| !r.mitre.is_empty() && r.mitre.iter().all(|m| m.starts_with('T'))));
}
