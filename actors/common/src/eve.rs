//! Suricata-EVE JSON for our events: one object per line, Suricata's field names, so that any
//! SIEM that reads Suricata reads us.

use crate::krb::{error_code_name, etype_name, is_weak_etype, KrbMessage};
use crate::time::format_utc;
use crate::{proto_name, Event, EventKind, Fingerprint, TlsHandshake};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::io::{self, Write};

/// The EVE object of one event (for callers that want a `Value`: inventory, store, tools).
pub fn to_eve(event: &Event) -> Value {
    serde_json::to_value(Eve(event)).unwrap_or(Value::Null)
}

/// Serializes an event straight to EVE JSON, without building an intermediate `Value`: the
/// one definition of the EVE layout, used for files and for [`to_eve`] alike.
pub struct Eve<'a>(pub &'a Event);

impl Serialize for Eve<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (h, kind) = (&self.0.header, &self.0.kind);
        let event_type = kind.event_type();
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("timestamp", &h.ts.to_eve())?;
        m.serialize_entry("flow_id", &h.flow_id)?;
        m.serialize_entry("event_type", event_type)?;
        m.serialize_entry("src_ip", &h.key.src_ip)?;
        m.serialize_entry("src_port", &h.key.src_port)?;
        m.serialize_entry("dest_ip", &h.key.dst_ip)?;
        m.serialize_entry("dest_port", &h.key.dst_port)?;
        m.serialize_entry("proto", &proto_name(h.key.proto))?;
        match kind {
            // Internal events have no EVE body; sinks skip them (`EventKind::is_internal`).
            EventKind::FlowStart(_)
            | EventKind::Arp(_)
            | EventKind::HostName(_)
            | EventKind::Neighbor(_) => {}
            EventKind::Flow(f) => {
                if let Some(app) = &f.app_proto {
                    m.serialize_entry("app_proto", app)?;
                }
                m.serialize_entry(
                    "flow",
                    &FlowBody {
                        pkts_toserver: f.pkts_toserver,
                        pkts_toclient: f.pkts_toclient,
                        bytes_toserver: f.bytes_toserver,
                        bytes_toclient: f.bytes_toclient,
                        start: f.start.to_eve(),
                        end: f.end.to_eve(),
                        age: (f.end.secs() - f.start.secs()).max(0),
                        state: &f.state,
                        reason: &f.reason,
                        alerted: f.alerted,
                    },
                )?;
            }
            EventKind::Tls(t) if t.quic_version.is_some() => {
                m.serialize_entry("quic", &QuicBody::new(t))?
            }
            EventKind::Tls(t) => m.serialize_entry("tls", &TlsBody::new(t))?,
            EventKind::Krb5(k) => m.serialize_entry("krb5", &Krb5Body::new(k))?,
            EventKind::Dns(d) => m.serialize_entry(
                "dns",
                &DnsBody {
                    version: 2,
                    kind: &d.kind,
                    id: d.id,
                    rrname: &d.rrname,
                    rrtype: &d.rrtype,
                    rcode: d.rcode.as_deref(),
                    answers: d.answers.iter().map(|a| Rdata { rdata: a }).collect(),
                },
            )?,
            EventKind::Dhcp(d) => m.serialize_entry(
                "dhcp",
                &DhcpBody {
                    kind: &d.kind,
                    id: d.id,
                    client_mac: &d.client_mac,
                    dhcp_type: &d.dhcp_type,
                    assigned_ip: d.assigned_ip.as_deref(),
                    hostname: d.hostname.as_deref(),
                    requested_ip: d.requested_ip.as_deref(),
                    client_id: d.client_id.as_deref(),
                    vendor_class_identifier: d.vendor_class.as_deref(),
                    params: dhcp_param_names(&d.params),
                },
            )?,
            EventKind::Http(r) => m.serialize_entry("http", r)?,
            EventKind::Alert(a) => m.serialize_entry(
                "alert",
                &AlertBody {
                    action: "allowed",
                    gid: 1,
                    signature_id: a.signature_id,
                    rev: 1,
                    signature: &a.signature,
                    category: &a.category,
                    severity: a.severity,
                    metadata: AlertMetadata::new(&a.threat_type, &a.mitre),
                    context: a.evidence.as_object().filter(|o| !o.is_empty()),
                },
            )?,
        }
        m.end()
    }
}

#[derive(Serialize)]
struct FlowBody<'a> {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: String,
    end: String,
    age: i64,
    state: &'a str,
    reason: &'a str,
    alerted: bool,
}

#[derive(Serialize)]
struct FingerprintBody<'a> {
    hash: &'a str,
    string: &'a str,
}

impl<'a> From<&'a Fingerprint> for FingerprintBody<'a> {
    fn from(f: &'a Fingerprint) -> Self {
        FingerprintBody {
            hash: &f.hash,
            string: &f.string,
        }
    }
}

#[derive(Serialize)]
struct TlsBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuerdn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notbefore: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notafter: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    subjectaltname: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3: Option<FingerprintBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3s: Option<FingerprintBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    client_alpns: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    server_alpns: Option<[&'a str; 1]>,
}

impl<'a> TlsBody<'a> {
    fn new(t: &'a TlsHandshake) -> Self {
        let cert = t.certificates.first();
        TlsBody {
            subject: cert.map(|c| c.subject.as_str()),
            issuerdn: cert.map(|c| c.issuer.as_str()),
            serial: cert.map(|c| c.serial.as_str()),
            fingerprint: cert.map(|c| c.fingerprint.as_str()),
            notbefore: cert.map(|c| format_utc(c.not_before)),
            notafter: cert.map(|c| format_utc(c.not_after)),
            subjectaltname: cert.map_or(&[], |c| c.sans.as_slice()),
            sni: t.sni.as_deref(),
            version: t.version.clone(),
            ja3: t.ja3.as_ref().map(FingerprintBody::from),
            ja3s: t.ja3s.as_ref().map(FingerprintBody::from),
            ja4: t.ja4.as_deref(),
            client_alpns: &t.alpn_offered,
            server_alpns: t.alpn_selected.as_deref().map(|a| [a]),
        }
    }
}

/// Suricata's `quic` object: the ClientHello's fingerprints and, as Suricata logs them, its
/// extensions (ALPN among them) in `extensions`.
#[derive(Serialize)]
struct QuicBody<'a> {
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3: Option<FingerprintBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3s: Option<FingerprintBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extensions: Vec<QuicExtension<'a>>,
}

#[derive(Serialize)]
struct QuicExtension<'a> {
    name: &'static str,
    #[serde(rename = "type")]
    kind: u16,
    values: &'a [String],
}

impl<'a> QuicBody<'a> {
    fn new(t: &'a TlsHandshake) -> Self {
        let mut extensions = Vec::new();
        if !t.alpn_offered.is_empty() {
            extensions.push(QuicExtension {
                name: "alpn",
                kind: 16,
                values: &t.alpn_offered,
            });
        }
        QuicBody {
            version: t.quic_version.map(quic_version_name).unwrap_or_default(),
            sni: t.sni.as_deref(),
            ja3: t.ja3.as_ref().map(FingerprintBody::from),
            ja3s: t.ja3s.as_ref().map(FingerprintBody::from),
            ja4: t.ja4.as_deref(),
            extensions,
        }
    }
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

#[derive(Serialize)]
struct Krb5Body<'a> {
    msg_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    realm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_encryption: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket_encryption: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_request: Option<&'static str>,
}

impl<'a> Krb5Body<'a> {
    fn new(k: &'a KrbMessage) -> Self {
        Krb5Body {
            msg_type: k.msg_type.name(),
            cname: k.cname.as_deref(),
            realm: k.realm.as_deref(),
            sname: k.sname.as_deref(),
            encryption: k.encryption.map(etype_name),
            weak_encryption: k.encryption.map(is_weak_etype),
            ticket_encryption: k.ticket_encryption.map(etype_name),
            error_code: k.error_code.map(error_code_name),
            failed_request: k.failed_request.map(|r| r.name()),
        }
    }
}

#[derive(Serialize)]
struct Rdata<'a> {
    rdata: &'a str,
}

/// Suricata's DNS v2 layout (one event per message, the first question flat in `dns`), with
/// the `version` its schema requires.
#[derive(Serialize)]
struct DnsBody<'a> {
    version: u8,
    #[serde(rename = "type")]
    kind: &'a str,
    id: u16,
    rrname: &'a str,
    rrtype: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rcode: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    answers: Vec<Rdata<'a>>,
}

#[derive(Serialize)]
struct DhcpBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: u32,
    client_mac: &'a str,
    dhcp_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    assigned_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor_class_identifier: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    params: Vec<&'static str>,
}

/// The parameter request list as Suricata's extended DHCP log names it (codes it has no name
/// for are left out, as Suricata does; the full list is the inventory's fingerprint).
fn dhcp_param_names(codes: &[u8]) -> Vec<&'static str> {
    codes
        .iter()
        .filter_map(|c| match c {
            1 => Some("subnet_mask"),
            3 => Some("router"),
            6 => Some("dns_server"),
            15 => Some("domain"),
            35 => Some("arp_timeout"),
            42 => Some("ntp_server"),
            66 => Some("tftp_server_name"),
            150 => Some("tftp_server_ip"),
            _ => None,
        })
        .collect()
}

/// Suricata's `alert` object. Our own facts go where its schema allows them: the kind and the
/// MITRE ATT&CK mapping in `metadata` (arrays of strings, as ET rules write
/// `mitre_technique_id`, `mitre_tactic_id`, ...), the evidence object in `context`.
#[derive(Serialize)]
struct AlertBody<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: &'a str,
    category: &'a str,
    severity: u8,
    metadata: AlertMetadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a serde_json::Map<String, Value>>,
}

/// `alert.metadata`: every key an array with at least one string (keys with nothing to say
/// are left out).
#[derive(Serialize)]
struct AlertMetadata {
    threat_type: [String; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mitre_technique_id: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mitre_technique_name: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mitre_tactic_id: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mitre_tactic_name: Vec<String>,
}

impl AlertMetadata {
    fn new(threat_type: &str, techniques: &[String]) -> Self {
        let tactics = crate::mitre::tactics_of(techniques.iter().map(String::as_str));
        AlertMetadata {
            threat_type: [threat_type.to_owned()],
            mitre_technique_id: techniques.to_vec(),
            mitre_technique_name: techniques
                .iter()
                .filter_map(|t| crate::mitre::technique(t))
                .map(|t| t.name.to_owned())
                .collect(),
            mitre_tactic_id: tactics.iter().map(|t| t.id.to_owned()).collect(),
            mitre_tactic_name: tactics.iter().map(|t| t.name.to_owned()).collect(),
        }
    }
}

/// Writes events as EVE lines; buffered by the caller's writer.
pub struct EveWriter<W: Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write> EveWriter<W> {
    /// Wraps a writer (a `BufWriter<File>` for `--eve`).
    pub fn new(out: W) -> Self {
        EveWriter {
            out,
            line: Vec::with_capacity(4096),
        }
    }

    /// Appends one event as one JSON line.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        // serializing into a plain vector and writing the line at once is faster than many
        // small writes through the buffered writer
        self.line.clear();
        serde_json::to_writer(&mut self.line, &Eve(event))?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
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
