//! Our EVE against the constraints of Suricata's published EVE JSON schema (`etc/schema.json` of
//! OISF/suricata, 8.0/9.0-dev; restated here as a table for the objects we emit): unknown keys
//! are refused at every level, types are exact, most arrays need an item, `dns` needs
//! `version`, timestamps and certificate dates follow the schema's patterns, and
//! `alert.metadata` holds arrays of strings. Checked on every public capture and on a
//! synthesized one that makes every event type we write (alerts included) appear.

use crate::util::*;
use netmonitor_capture::synth::{build, Synth};
use netmonitor_common::Timestamp;
use serde_json::Value;
use std::collections::BTreeSet;

/// A property's type in the schema.
#[derive(Clone, Copy)]
enum T {
    Str,
    Int,
    Bool,
    /// `timestamp`: fraction required, offset without colon.
    Timestamp,
    /// `tls_date`: no fraction, no zone.
    TlsDate,
    /// Array of strings; `true` when it needs at least one item.
    Strs(bool),
    /// An object with these properties (unknown keys refused).
    Obj(&'static Spec),
    /// Array (at least one item) of such objects.
    Objs(&'static Spec),
    /// Object accepting any key.
    AnyObj,
    /// `alert.metadata`: any key, each an array of at least one string.
    Metadata,
}

struct Spec {
    name: &'static str,
    keys: &'static [(&'static str, T)],
    required: &'static [&'static str],
}

const FINGERPRINT: Spec = Spec {
    name: "ja3",
    keys: &[("hash", T::Str), ("string", T::Str)],
    required: &[],
};

const TLS: Spec = Spec {
    name: "tls",
    keys: &[
        ("version", T::Str),
        ("sni", T::Str),
        ("subject", T::Str),
        ("issuerdn", T::Str),
        ("serial", T::Str),
        ("fingerprint", T::Str),
        ("notbefore", T::TlsDate),
        ("notafter", T::TlsDate),
        ("session_resumed", T::Bool),
        ("from_proto", T::Str),
        ("certificate", T::Str),
        ("chain", T::Strs(true)),
        ("subjectaltname", T::Strs(false)),
        ("client_alpns", T::Strs(false)),
        ("server_alpns", T::Strs(false)),
        ("ja3", T::Obj(&FINGERPRINT)),
        ("ja3s", T::Obj(&FINGERPRINT)),
        ("ja4", T::Str),
    ],
    required: &[],
};

const QUIC_EXTENSION: Spec = Spec {
    name: "quic.extensions[]",
    keys: &[
        ("name", T::Str),
        ("type", T::Int),
        ("values", T::Strs(true)),
    ],
    required: &[],
};

const QUIC: Spec = Spec {
    name: "quic",
    keys: &[
        ("version", T::Str),
        ("sni", T::Str),
        ("ua", T::Str),
        ("ja3", T::Obj(&FINGERPRINT)),
        ("ja3s", T::Obj(&FINGERPRINT)),
        ("ja4", T::Str),
        ("extensions", T::Objs(&QUIC_EXTENSION)),
    ],
    required: &[],
};

const KRB5: Spec = Spec {
    name: "krb5",
    keys: &[
        ("msg_type", T::Str),
        ("cname", T::Str),
        ("sname", T::Str),
        ("realm", T::Str),
        ("encryption", T::Str),
        ("weak_encryption", T::Bool),
        ("ticket_encryption", T::Str),
        ("ticket_weak_encryption", T::Bool),
        ("error_code", T::Str),
        ("failed_request", T::Str),
    ],
    required: &[],
};

const DNS_ANSWER: Spec = Spec {
    name: "dns.answers[]",
    keys: &[
        ("rrname", T::Str),
        ("rrtype", T::Str),
        ("ttl", T::Int),
        ("rdata", T::Str),
    ],
    required: &[],
};

const DNS_QUERY: Spec = Spec {
    name: "dns.queries[]",
    keys: &[
        ("rrname", T::Str),
        ("rrtype", T::Str),
        ("rrname_truncated", T::Bool),
        ("id", T::Int),
        ("tx_id", T::Int),
        ("type", T::Str),
        ("opcode", T::Int),
        ("z", T::Bool),
    ],
    required: &[],
};

const DNS: Spec = Spec {
    name: "dns",
    keys: &[
        ("version", T::Int),
        ("type", T::Str),
        ("tx_id", T::Int),
        ("id", T::Int),
        ("flags", T::Str),
        ("qr", T::Bool),
        ("aa", T::Bool),
        ("tc", T::Bool),
        ("rd", T::Bool),
        ("ra", T::Bool),
        ("z", T::Bool),
        ("opcode", T::Int),
        ("rcode", T::Str),
        ("rrname", T::Str),
        ("rrtype", T::Str),
        ("queries", T::Objs(&DNS_QUERY)),
        ("answers", T::Objs(&DNS_ANSWER)),
    ],
    required: &["version"],
};

const DHCP: Spec = Spec {
    name: "dhcp",
    keys: &[
        ("type", T::Str),
        ("id", T::Int),
        ("client_mac", T::Str),
        ("assigned_ip", T::Str),
        ("client_ip", T::Str),
        ("relay_ip", T::Str),
        ("next_server_ip", T::Str),
        ("requested_ip", T::Str),
        ("subnet_mask", T::Str),
        ("client_id", T::Str),
        ("hostname", T::Str),
        ("vendor_class_identifier", T::Str),
        ("dhcp_type", T::Str),
        ("lease_time", T::Int),
        ("rebinding_time", T::Int),
        ("renewal_time", T::Int),
        ("dns_servers", T::Strs(true)),
        ("params", T::Strs(true)),
        ("routers", T::Strs(true)),
    ],
    required: &[],
};

const FLOW: Spec = Spec {
    name: "flow",
    keys: &[
        ("pkts_toserver", T::Int),
        ("pkts_toclient", T::Int),
        ("bytes_toserver", T::Int),
        ("bytes_toclient", T::Int),
        ("start", T::Str),
        ("end", T::Str),
        ("age", T::Int),
        ("state", T::Str),
        ("reason", T::Str),
        ("alerted", T::Bool),
        ("action", T::Str),
        ("bypass", T::Str),
        ("emergency", T::Bool),
        ("src_ip", T::Str),
        ("dest_ip", T::Str),
        ("src_port", T::Int),
        ("dest_port", T::Int),
        ("tx_cnt", T::Int),
        ("wrong_thread", T::Bool),
    ],
    required: &[],
};

const ALERT: Spec = Spec {
    name: "alert",
    keys: &[
        ("action", T::Str),
        ("category", T::Str),
        ("context", T::AnyObj),
        ("gid", T::Int),
        ("signature_id", T::Int),
        ("rev", T::Int),
        ("signature", T::Str),
        ("severity", T::Int),
        ("metadata", T::Metadata),
        ("references", T::Strs(true)),
        ("rule", T::Str),
        ("xff", T::Str),
    ],
    required: &[],
};

const HTTP: Spec = Spec {
    name: "http",
    keys: &[
        ("hostname", T::Str),
        ("http_port", T::Int),
        ("url", T::Str),
        ("http_user_agent", T::Str),
        ("http_content_type", T::Str),
        ("http_refer", T::Str),
        ("http_method", T::Str),
        ("protocol", T::Str),
        ("status", T::Int),
        ("length", T::Int),
    ],
    required: &[],
};

const TOP: Spec = Spec {
    name: "(top level)",
    keys: &[
        ("timestamp", T::Timestamp),
        ("event_type", T::Str),
        ("flow_id", T::Int),
        ("parent_id", T::Int),
        ("pcap_cnt", T::Int),
        ("in_iface", T::Str),
        ("src_ip", T::Str),
        ("dest_ip", T::Str),
        ("src_port", T::Int),
        ("dest_port", T::Int),
        ("proto", T::Str),
        ("icmp_type", T::Int),
        ("icmp_code", T::Int),
        ("community_id", T::Str),
        ("host", T::Str),
        ("app_proto", T::Str),
        ("tx_id", T::Int),
        ("alert", T::Obj(&ALERT)),
        ("tls", T::Obj(&TLS)),
        ("quic", T::Obj(&QUIC)),
        ("krb5", T::Obj(&KRB5)),
        ("dns", T::Obj(&DNS)),
        ("dhcp", T::Obj(&DHCP)),
        ("http", T::Obj(&HTTP)),
        ("flow", T::Obj(&FLOW)),
    ],
    required: &["event_type", "timestamp"],
};

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$` (the first digit 1 or 2)
fn is_tls_date(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 19
        && matches!(b[0], b'1' | b'2')
        && digits(&s[0..4], 4)
        && b[4] == b'-'
        && digits(&s[5..7], 2)
        && b[7] == b'-'
        && digits(&s[8..10], 2)
        && b[10] == b'T'
        && digits(&s[11..13], 2)
        && b[13] == b':'
        && digits(&s[14..16], 2)
        && b[16] == b':'
        && digits(&s[17..19], 2)
}

/// `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+[+\-]\d+$`
fn is_timestamp(s: &str) -> bool {
    if s.len() < 23 {
        return false;
    }
    let date = format!("2{}", &s[1..19]);
    if !is_tls_date(&date) || !s[0..1].bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let rest = &s[19..];
    let Some(frac) = rest.strip_prefix('.') else {
        return false;
    };
    let Some(pos) = frac.find(['+', '-']) else {
        return false;
    };
    let (f, zone) = frac.split_at(pos);
    !f.is_empty()
        && f.bytes().all(|b| b.is_ascii_digit())
        && zone.len() > 1
        && zone[1..].bytes().all(|b| b.is_ascii_digit())
}

fn check(v: &Value, t: T, path: &str, errors: &mut Vec<String>) {
    let mut bad = |what: &str| errors.push(format!("{path}: {what}, got {v}"));
    match t {
        T::Str => {
            if !v.is_string() {
                bad("expected a string")
            }
        }
        T::Int => {
            if !(v.is_i64() || v.is_u64()) {
                bad("expected an integer")
            }
        }
        T::Bool => {
            if !v.is_boolean() {
                bad("expected a boolean")
            }
        }
        T::Timestamp => {
            if !v.as_str().is_some_and(is_timestamp) {
                bad("timestamp does not match the schema's pattern")
            }
        }
        T::TlsDate => {
            if !v.as_str().is_some_and(is_tls_date) {
                bad("tls_date does not match the schema's pattern")
            }
        }
        T::Strs(min1) => match v.as_array() {
            Some(a) if min1 && a.is_empty() => bad("needs at least one item"),
            Some(a) if a.iter().all(Value::is_string) => {}
            _ => bad("expected an array of strings"),
        },
        T::Obj(spec) => check_obj(v, spec, path, errors),
        T::Objs(spec) => match v.as_array() {
            Some(a) if !a.is_empty() => {
                for (i, item) in a.iter().enumerate() {
                    check_obj(item, spec, &format!("{path}[{i}]"), errors);
                }
            }
            _ => bad("expected a non-empty array of objects"),
        },
        T::AnyObj => {
            if !v.is_object() {
                bad("expected an object")
            }
        }
        T::Metadata => match v.as_object() {
            Some(m) => {
                for (k, val) in m {
                    check(val, T::Strs(true), &format!("{path}.{k}"), errors);
                }
            }
            None => bad("expected an object"),
        },
    }
}

fn check_obj(v: &Value, spec: &Spec, path: &str, errors: &mut Vec<String>) {
    let Some(o) = v.as_object() else {
        errors.push(format!(
            "{path} ({}): expected an object, got {v}",
            spec.name
        ));
        return;
    };
    for r in spec.required {
        if !o.contains_key(*r) {
            errors.push(format!("{path}: {} requires {r}", spec.name));
        }
    }
    for (k, val) in o {
        match spec.keys.iter().find(|(name, _)| name == k) {
            Some((_, t)) => check(val, *t, &format!("{path}.{k}"), errors),
            None => errors.push(format!(
                "{path}: {} does not allow the key {k:?}",
                spec.name
            )),
        }
    }
}

/// One TLS session with a self-signed certificate (an alert), Kerberoasting, DNS, HTTP, DHCP.
fn synthesized(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("all-types.pcap");
    let mut s = Synth::new(
        std::fs::File::create(&path).unwrap(),
        11,
        Timestamp::from_secs_micros(1_750_000_000, 0),
    )
    .unwrap();
    s.tls_session([10, 0, 0, 2], [10, 0, 0, 9], 40_001, "self.example")
        .unwrap();
    s.kerberos_exchange(
        [10, 0, 0, 2],
        [10, 0, 0, 10],
        "EXAMPLE.TEST",
        "alice",
        &["MSSQLSvc", "db.example.test"],
        23,
    )
    .unwrap();
    s.dns_lookup([10, 0, 0, 2], [10, 0, 0, 53], "www.example.org")
        .unwrap();
    let mut c = s
        .tcp_open([10, 0, 0, 2], [10, 0, 0, 80], 40_002, 8080)
        .unwrap();
    let req = b"GET /index.html HTTP/1.1\r\nHost: www.example.org:8080\r\nUser-Agent: test\r\nReferer: http://a.example/\r\n\r\n";
    s.tcp_send(&mut c, true, req).unwrap();
    let resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi";
    s.tcp_send(&mut c, false, resp).unwrap();
    s.tcp_close(&mut c).unwrap();
    let mut dhcp = vec![0u8; 236];
    dhcp[0] = 1;
    dhcp[1] = 1;
    dhcp[2] = 6;
    dhcp[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 7]);
    dhcp.extend_from_slice(&[
        99, 130, 83, 99, 53, 1, 1, 12, 4, b'h', b'o', b's', b't', 255,
    ]);
    s.frame(&build::eth_ipv4_udp([0; 4], [255; 4], 68, 67, &dhcp))
        .unwrap();
    s.finish().unwrap();
    path
}

#[test]
fn our_eve_satisfies_suricatas_schema() {
    let Some(shared) = shared_dir() else { return };
    let dir = data_dir();
    let mut files = vec![synthesized(dir.path())];
    for sub in ["oracles", "captures"] {
        let mut stack = vec![shared.join(sub)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if matches!(
                    p.extension().and_then(|x| x.to_str()),
                    Some("pcap" | "pcapng")
                ) {
                    files.push(p);
                }
            }
        }
    }
    let eve = dir.path().join("eve.json");
    let out = netmonitor(dir.path())
        .args(["replay", "--no-db", "-q", "--eve"])
        .arg(&eve)
        .args(&files)
        .output()
        .unwrap();
    // some public captures are deliberately broken: the replay reports them and goes on
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&eve).unwrap();
    let mut errors = Vec::new();
    let mut types = BTreeSet::new();
    let mut lines = 0;
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).expect("each line is JSON");
        types.insert(v["event_type"].as_str().unwrap_or("").to_owned());
        check_obj(&v, &TOP, &format!("line {}", i + 1), &mut errors);
        lines += 1;
    }
    errors.truncate(20);
    assert!(
        errors.is_empty(),
        "{} lines checked:\n{}",
        lines,
        errors.join("\n")
    );
    for t in [
        "flow", "tls", "quic", "krb5", "dns", "dhcp", "http", "alert",
    ] {
        assert!(types.contains(t), "no {t} event was checked: {types:?}");
    }
}

/// The table refuses what the schema refuses (the layouts our EVE had before it conformed).
#[test]
fn the_checks_refuse_what_the_schema_refuses() {
    let refused = [
        r#"{"timestamp":"2024-01-02T03:04:05.123456+0000","event_type":"alert","alert":{"signature":"x","threat_type":"y"}}"#,
        r#"{"timestamp":"2024-01-02T03:04:05.123456+0000","event_type":"dns","dns":{"type":"query","id":1}}"#,
        r#"{"timestamp":"2024-01-02T03:04:05.123456+0000","event_type":"quic","quic":{"version":"1","client_alpns":["h3"]}}"#,
        r#"{"timestamp":"2024-01-02T03:04:05.123456+0000","event_type":"alert","alert":{"metadata":{"tag":[]}}}"#,
        r#"{"timestamp":"2024-01-02T03:04:05Z","event_type":"flow"}"#,
        r#"{"timestamp":"2024-01-02T03:04:05.1+0000","event_type":"tls","tls":{"notafter":"2024-01-02 03:04:05"}}"#,
        r#"{"timestamp":"2024-01-02T03:04:05.1+0000","event_type":"flow","threat_type":"x"}"#,
    ];
    for line in refused {
        let mut errors = Vec::new();
        check_obj(&serde_json::from_str(line).unwrap(), &TOP, "t", &mut errors);
        assert!(!errors.is_empty(), "accepted: {line}");
    }
    let mut errors = Vec::new();
    let ok = r#"{"timestamp":"2024-01-02T03:04:05.123456+0000","event_type":"dns","src_port":53,"proto":"UDP","dns":{"version":2,"type":"query","id":1,"rrname":"a","rrtype":"A"}}"#;
    check_obj(&serde_json::from_str(ok).unwrap(), &TOP, "t", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
}
