//! Suricata-EVE JSON for our events: one object per line, Suricata's field names, so that any
//! SIEM that reads Suricata reads us.

use crate::krb::{error_code_name, etype_name, is_weak_etype, KrbMessage};
use crate::time::format_utc;
use crate::{proto_name, Event, EventKind, Fingerprint, TlsHandshake};
use serde_json::{json, Map, Value};
use std::io::{self, Write};

/// The EVE object of one event.
pub fn to_eve(event: &Event) -> Value {
    let h = &event.header;
    let mut obj = Map::new();
    obj.insert("timestamp".into(), Value::String(h.ts.to_eve()));
    obj.insert("flow_id".into(), json!(h.flow_id));
    let event_type = event.kind.event_type();
    obj.insert("event_type".into(), Value::String(event_type.into()));
    obj.insert("src_ip".into(), Value::String(h.key.src_ip.to_string()));
    obj.insert("src_port".into(), json!(h.key.src_port));
    obj.insert("dest_ip".into(), Value::String(h.key.dst_ip.to_string()));
    obj.insert("dest_port".into(), json!(h.key.dst_port));
    obj.insert("proto".into(), Value::String(proto_name(h.key.proto)));
    match &event.kind {
        EventKind::Flow(f) => {
            if let Some(app) = &f.app_proto {
                obj.insert("app_proto".into(), Value::String(app.clone()));
            }
            obj.insert(
                "flow".into(),
                json!({
                    "pkts_toserver": f.pkts_toserver,
                    "pkts_toclient": f.pkts_toclient,
                    "bytes_toserver": f.bytes_toserver,
                    "bytes_toclient": f.bytes_toclient,
                    "start": f.start.to_eve(),
                    "end": f.end.to_eve(),
                    "age": (f.end.secs() - f.start.secs()).max(0),
                    "state": f.state,
                    "reason": f.reason,
                    "alerted": f.alerted,
                }),
            );
        }
        EventKind::Tls(t) => {
            obj.insert(event_type.into(), tls_body(t));
        }
        EventKind::Krb5(k) => {
            obj.insert("krb5".into(), krb5_body(k));
        }
        EventKind::Dns(d) => {
            let mut dns =
                json!({"type": d.kind, "id": d.id, "rrname": d.rrname, "rrtype": d.rrtype});
            if let Some(rcode) = &d.rcode {
                dns["rcode"] = json!(rcode);
            }
            if !d.answers.is_empty() {
                dns["answers"] = json!(d
                    .answers
                    .iter()
                    .map(|a| json!({"rdata": a}))
                    .collect::<Vec<_>>());
            }
            obj.insert("dns".into(), dns);
        }
        EventKind::Dhcp(d) => {
            let mut dhcp = json!({"type": d.kind, "id": d.id, "client_mac": d.client_mac, "dhcp_type": d.dhcp_type});
            if let Some(ip) = &d.assigned_ip {
                dhcp["assigned_ip"] = json!(ip);
            }
            if let Some(host) = &d.hostname {
                dhcp["hostname"] = json!(host);
            }
            obj.insert("dhcp".into(), dhcp);
        }
        EventKind::Alert(a) => {
            obj.insert(
                "alert".into(),
                json!({
                    "action": "allowed",
                    "gid": 1,
                    "signature_id": a.signature_id,
                    "rev": 1,
                    "signature": a.signature,
                    "category": a.category,
                    "severity": a.severity,
                    "threat_type": a.threat_type,
                    "mitre": a.mitre,
                    "evidence": a.evidence,
                }),
            );
        }
    }
    Value::Object(obj)
}

fn fingerprint(f: &Fingerprint) -> Value {
    json!({"hash": f.hash, "string": f.string})
}

fn tls_body(t: &TlsHandshake) -> Value {
    let mut m = Map::new();
    if let Some(cert) = t.certificates.first() {
        m.insert("subject".into(), json!(cert.subject));
        m.insert("issuerdn".into(), json!(cert.issuer));
        m.insert("serial".into(), json!(cert.serial));
        m.insert("fingerprint".into(), json!(cert.fingerprint));
        m.insert("notbefore".into(), json!(format_utc(cert.not_before)));
        m.insert("notafter".into(), json!(format_utc(cert.not_after)));
        if !cert.sans.is_empty() {
            m.insert("subjectaltname".into(), json!(cert.sans));
        }
    }
    if let Some(sni) = &t.sni {
        m.insert("sni".into(), json!(sni));
    }
    if let Some(v) = &t.version {
        m.insert("version".into(), json!(v));
    }
    if let Some(q) = t.quic_version {
        m.insert("version".into(), json!(quic_version_name(q)));
    }
    if let Some(f) = &t.ja3 {
        m.insert("ja3".into(), fingerprint(f));
    }
    if let Some(f) = &t.ja3s {
        m.insert("ja3s".into(), fingerprint(f));
    }
    if let Some(j) = &t.ja4 {
        m.insert("ja4".into(), json!(j));
    }
    if !t.alpn_offered.is_empty() {
        m.insert("client_alpns".into(), json!(t.alpn_offered));
    }
    if let Some(a) = &t.alpn_selected {
        m.insert("server_alpns".into(), json!([a]));
    }
    Value::Object(m)
}

/// How Suricata prints a QUIC version (`1`, `2`, `Q043`, or hex for others).
pub fn quic_version_name(v: u32) -> String {
    match v {
        1 => "1".into(),
        0x6b33_43cf => "2".into(),
        v if (v >> 24) == u32::from(b'Q') => String::from_utf8_lossy(&v.to_be_bytes()).into_owned(),
        v => format!("{v:#010x}"),
    }
}

fn krb5_body(k: &KrbMessage) -> Value {
    let mut m = Map::new();
    m.insert("msg_type".into(), json!(k.msg_type.name()));
    if let Some(v) = &k.cname {
        m.insert("cname".into(), json!(v));
    }
    if let Some(v) = &k.realm {
        m.insert("realm".into(), json!(v));
    }
    if let Some(v) = &k.sname {
        m.insert("sname".into(), json!(v));
    }
    if let Some(e) = k.encryption {
        m.insert("encryption".into(), json!(etype_name(e)));
        m.insert("weak_encryption".into(), json!(is_weak_etype(e)));
    }
    if let Some(e) = k.ticket_encryption {
        m.insert("ticket_encryption".into(), json!(etype_name(e)));
    }
    if let Some(code) = k.error_code {
        m.insert("error_code".into(), json!(error_code_name(code)));
    }
    if let Some(req) = k.failed_request {
        m.insert("failed_request".into(), json!(req.name()));
    }
    Value::Object(m)
}

/// Writes events as EVE lines; buffered by the caller's writer.
pub struct EveWriter<W: Write> {
    out: W,
}

impl<W: Write> EveWriter<W> {
    /// Wraps a writer (a `BufWriter<File>` for `--eve`).
    pub fn new(out: W) -> Self {
        EveWriter { out }
    }

    /// Appends one event as one JSON line.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &to_eve(event))?;
        self.out.write_all(b"\n")
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krb::KrbMsgType;
    use crate::{EventHeader, FlowKey, Timestamp};

    fn header() -> EventHeader {
        EventHeader {
            ts: Timestamp::from_secs_micros(1_600_000_000, 42),
            flow_id: 7,
            key: FlowKey {
                src_ip: "10.0.0.1".parse().unwrap(),
                src_port: 50000,
                dst_ip: "10.0.0.2".parse().unwrap(),
                dst_port: 88,
                proto: 17,
            },
        }
    }

    #[test]
    fn krb5_event_uses_suricata_names() {
        let mut k = KrbMessage::new(KrbMsgType::AsRep);
        k.encryption = Some(23);
        k.ticket_encryption = Some(18);
        let v = to_eve(&Event {
            header: header(),
            kind: EventKind::Krb5(k),
        });
        assert_eq!(v["event_type"], "krb5");
        assert_eq!(v["proto"], "UDP");
        assert_eq!(v["krb5"]["msg_type"], "KRB_AS_REP");
        assert_eq!(v["krb5"]["encryption"], "rc4-hmac");
        assert_eq!(v["krb5"]["weak_encryption"], true);
        assert_eq!(v["krb5"]["ticket_encryption"], "aes256-cts-hmac-sha1-96");
        assert!(v["krb5"].get("cname").is_none());
    }

    #[test]
    fn quic_handshake_is_a_quic_event() {
        let t = TlsHandshake {
            quic_version: Some(1),
            sni: Some("a.example".into()),
            ..Default::default()
        };
        let v = to_eve(&Event {
            header: header(),
            kind: EventKind::Tls(t),
        });
        assert_eq!(v["event_type"], "quic");
        assert_eq!(v["quic"]["sni"], "a.example");
        assert_eq!(v["quic"]["version"], "1");
    }
}
