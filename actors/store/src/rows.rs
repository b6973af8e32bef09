//! Table rows built from events: one plain struct per table, so the writer can `COPY` them.

use crate::schema::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use netmonitor_common::eve::to_eve;
use netmonitor_common::krb::is_weak_etype;
use netmonitor_common::{Event, EventHeader, EventKind, Timestamp};

/// Converts a capture timestamp to the database's timestamptz.
pub fn ts(t: Timestamp) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(t.0).unwrap_or_default()
}

/// A `flows` row.
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = flows, treat_none_as_default_value = false)]
#[allow(missing_docs)]
pub struct FlowRow {
    pub sensor: String,
    pub flow_id: i64,
    pub ts: DateTime<Utc>,
    pub start_ts: DateTime<Utc>,
    pub end_ts: DateTime<Utc>,
    pub src_ip: String,
    pub src_port: i32,
    pub dest_ip: String,
    pub dest_port: i32,
    pub proto: i16,
    pub app_proto: Option<String>,
    pub pkts_toserver: i64,
    pub pkts_toclient: i64,
    pub bytes_toserver: i64,
    pub bytes_toclient: i64,
    pub state: String,
    pub reason: String,
    pub tcp_flags: i16,
    pub alerted: bool,
}

/// An `alerts` row.
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = alerts, treat_none_as_default_value = false)]
#[allow(missing_docs)]
pub struct AlertRow {
    pub sensor: String,
    pub flow_id: i64,
    pub ts: DateTime<Utc>,
    pub src_ip: String,
    pub src_port: i32,
    pub dest_ip: String,
    pub dest_port: i32,
    pub proto: i16,
    pub signature_id: i64,
    pub signature: String,
    pub category: String,
    pub severity: i16,
    pub threat_type: String,
    pub mitre: Vec<String>,
    pub evidence: serde_json::Value,
}

/// A `tls_sessions` row.
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = tls_sessions, treat_none_as_default_value = false)]
#[allow(missing_docs)]
pub struct TlsRow {
    pub sensor: String,
    pub flow_id: i64,
    pub ts: DateTime<Utc>,
    pub src_ip: String,
    pub src_port: i32,
    pub dest_ip: String,
    pub dest_port: i32,
    pub transport: String,
    pub sni: Option<String>,
    pub version: Option<String>,
    pub ja3: Option<String>,
    pub ja3_string: Option<String>,
    pub ja3s: Option<String>,
    pub ja3s_string: Option<String>,
    pub ja4: Option<String>,
    pub alpn: Vec<String>,
    pub cipher_selected: Option<i32>,
    pub cert_fingerprint: Option<String>,
}

/// A `certificates` row (upserted by fingerprint).
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = certificates)]
#[allow(missing_docs)]
pub struct CertRow {
    pub fingerprint: String,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub sans: Vec<String>,
    pub self_signed: bool,
    pub is_ca: bool,
    pub key_type: Option<String>,
    pub key_bits: Option<i32>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// A `kerberos_events` row.
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = kerberos_events, treat_none_as_default_value = false)]
#[allow(missing_docs)]
pub struct KrbRow {
    pub sensor: String,
    pub flow_id: i64,
    pub ts: DateTime<Utc>,
    pub src_ip: String,
    pub src_port: i32,
    pub dest_ip: String,
    pub dest_port: i32,
    pub proto: i16,
    pub msg_type: String,
    pub cname: Option<String>,
    pub realm: Option<String>,
    pub sname: Option<String>,
    pub encryption: Option<i32>,
    pub ticket_encryption: Option<i32>,
    pub requested_etypes: Vec<i32>,
    pub padata_types: Vec<i32>,
    pub error_code: Option<i32>,
    pub failed_request: Option<String>,
    pub weak_encryption: bool,
}

/// An `app_events` row (EVE JSON of events without a table of their own).
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = app_events, treat_none_as_default_value = false)]
#[allow(missing_docs)]
pub struct AppEventRow {
    pub sensor: String,
    pub flow_id: i64,
    pub ts: DateTime<Utc>,
    pub event_type: String,
    pub src_ip: String,
    pub dest_ip: String,
    pub eve: serde_json::Value,
}

/// Rows of one batch, grouped by table.
#[derive(Default, Debug)]
#[allow(missing_docs)]
pub struct RowBatch {
    pub flows: Vec<FlowRow>,
    pub alerts: Vec<AlertRow>,
    pub tls: Vec<TlsRow>,
    pub certs: Vec<CertRow>,
    pub krb: Vec<KrbRow>,
    pub app: Vec<AppEventRow>,
}

impl RowBatch {
    /// Number of event rows (certificates are a side table and not counted).
    pub fn len(&self) -> usize {
        self.flows.len() + self.alerts.len() + self.tls.len() + self.krb.len() + self.app.len()
    }

    /// True when nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.certs.is_empty()
    }

    /// Adds one event's rows.
    pub fn push(&mut self, sensor: &str, event: &Event) {
        let h = &event.header;
        match &event.kind {
            EventKind::Flow(f) => self.flows.push(FlowRow {
                sensor: sensor.to_owned(),
                flow_id: h.flow_id as i64,
                ts: ts(h.ts),
                start_ts: ts(f.start),
                end_ts: ts(f.end),
                src_ip: h.key.src_ip.to_string(),
                src_port: i32::from(h.key.src_port),
                dest_ip: h.key.dst_ip.to_string(),
                dest_port: i32::from(h.key.dst_port),
                proto: i16::from(h.key.proto),
                app_proto: f.app_proto.clone(),
                pkts_toserver: f.pkts_toserver as i64,
                pkts_toclient: f.pkts_toclient as i64,
                bytes_toserver: f.bytes_toserver as i64,
                bytes_toclient: f.bytes_toclient as i64,
                state: f.state.clone(),
                reason: f.reason.clone(),
                tcp_flags: i16::from(f.tcp_flags),
                alerted: f.alerted,
            }),
            EventKind::Alert(a) => self.alerts.push(AlertRow {
                sensor: sensor.to_owned(),
                flow_id: h.flow_id as i64,
                ts: ts(h.ts),
                src_ip: h.key.src_ip.to_string(),
                src_port: i32::from(h.key.src_port),
                dest_ip: h.key.dst_ip.to_string(),
                dest_port: i32::from(h.key.dst_port),
                proto: i16::from(h.key.proto),
                signature_id: i64::from(a.signature_id),
                signature: a.signature.clone(),
                category: a.category.clone(),
                severity: i16::from(a.severity),
                threat_type: a.threat_type.clone(),
                mitre: a.mitre.clone(),
                evidence: a.evidence.clone(),
            }),
            EventKind::Tls(t) => {
                for c in &t.certificates {
                    self.certs.push(CertRow {
                        fingerprint: c.fingerprint.clone(),
                        subject: c.subject.clone(),
                        issuer: c.issuer.clone(),
                        serial: c.serial.clone(),
                        not_before: DateTime::<Utc>::from_timestamp(c.not_before, 0)
                            .unwrap_or_default(),
                        not_after: DateTime::<Utc>::from_timestamp(c.not_after, 0)
                            .unwrap_or_default(),
                        sans: c.sans.clone(),
                        self_signed: c.self_signed,
                        is_ca: c.is_ca,
                        key_type: c.key_type.clone(),
                        key_bits: c.key_bits.and_then(|b| i32::try_from(b).ok()),
                        first_seen: ts(h.ts),
                        last_seen: ts(h.ts),
                    });
                }
                self.tls.push(TlsRow {
                    sensor: sensor.to_owned(),
                    flow_id: h.flow_id as i64,
                    ts: ts(h.ts),
                    src_ip: h.key.src_ip.to_string(),
                    src_port: i32::from(h.key.src_port),
                    dest_ip: h.key.dst_ip.to_string(),
                    dest_port: i32::from(h.key.dst_port),
                    transport: if t.quic_version.is_some() {
                        "quic"
                    } else {
                        "tcp"
                    }
                    .to_owned(),
                    sni: t.sni.clone(),
                    version: t.version.clone(),
                    ja3: t.ja3.as_ref().map(|f| f.hash.clone()),
                    ja3_string: t.ja3.as_ref().map(|f| f.string.clone()),
                    ja3s: t.ja3s.as_ref().map(|f| f.hash.clone()),
                    ja3s_string: t.ja3s.as_ref().map(|f| f.string.clone()),
                    ja4: t.ja4.clone(),
                    alpn: t.alpn_offered.clone(),
                    cipher_selected: t.cipher_selected.map(i32::from),
                    cert_fingerprint: t.certificates.first().map(|c| c.fingerprint.clone()),
                });
            }
            EventKind::Krb5(k) => self.krb.push(KrbRow {
                sensor: sensor.to_owned(),
                flow_id: h.flow_id as i64,
                ts: ts(h.ts),
                src_ip: h.key.src_ip.to_string(),
                src_port: i32::from(h.key.src_port),
                dest_ip: h.key.dst_ip.to_string(),
                dest_port: i32::from(h.key.dst_port),
                proto: i16::from(h.key.proto),
                msg_type: k.msg_type.name().to_owned(),
                cname: k.cname.clone(),
                realm: k.realm.clone(),
                sname: k.sname.clone(),
                encryption: k.encryption,
                ticket_encryption: k.ticket_encryption,
                requested_etypes: k.requested_etypes.clone(),
                padata_types: k.padata_types.clone(),
                error_code: k.error_code,
                failed_request: k.failed_request.map(|r| r.name().to_owned()),
                weak_encryption: k.encryption.is_some_and(is_weak_etype),
            }),
            EventKind::Dns(_) | EventKind::Dhcp(_) => self.app.push(app_row(sensor, h, event)),
        }
    }
}

fn app_row(sensor: &str, h: &EventHeader, event: &Event) -> AppEventRow {
    AppEventRow {
        sensor: sensor.to_owned(),
        flow_id: h.flow_id as i64,
        ts: ts(h.ts),
        event_type: event.kind.event_type().to_owned(),
        src_ip: h.key.src_ip.to_string(),
        dest_ip: h.key.dst_ip.to_string(),
        eve: to_eve(event),
    }
}
