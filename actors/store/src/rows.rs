//! Store items encoded straight into one binary `COPY` stream per table (no intermediate row
//! structs, no per-row binds), and the statements that hand those streams to PostgreSQL.

use crate::audit::AuditRecord;
use crate::copy::CopyBuf;
use crate::partitions::day_of_us;
use crate::writer::StoreItem;
use chrono::{DateTime, Utc};
use diesel::pg::CopyFormat;
use diesel::prelude::*;
use netmonitor_common::eve::to_eve;
use netmonitor_common::krb::is_weak_etype;
use netmonitor_common::{Event, EventHeader, EventKind, Timestamp};

/// Converts a capture timestamp to the database's timestamptz.
pub fn ts(t: Timestamp) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(t.0).unwrap_or_default()
}

/// `tls_sessions.transport` of a handshake.
pub(crate) fn transport(t: &netmonitor_common::TlsHandshake) -> &'static str {
    if t.quic_version.is_some() {
        "quic"
    } else {
        "tcp"
    }
}

/// Bytes handed to libpq per call.
const COPY_CHUNK: usize = 64 * 1024;

/// Statements run once per writer connection: certificates and the talker and TLS rollups are
/// upserted through these per-session staging tables, which `COPY` can fill (an upsert cannot
/// be a `COPY`).
pub const SESSION_SETUP: &str = "CREATE TEMP TABLE IF NOT EXISTS certificates_stage \
     (LIKE certificates) ON COMMIT DELETE ROWS; \
     CREATE TEMP TABLE IF NOT EXISTS talker_stage (LIKE talker_rollup) ON COMMIT DELETE ROWS; \
     CREATE TEMP TABLE IF NOT EXISTS tls_stage (LIKE tls_rollup) ON COMMIT DELETE ROWS; \
     CREATE TEMP TABLE IF NOT EXISTS tls_address_stage (bucket timestamptz NOT NULL, \
       sensor text NOT NULL, client bool NOT NULL, ip inet NOT NULL) ON COMMIT DELETE ROWS";

/// Moves the staged certificates into `certificates`: one row per fingerprint, first seen kept,
/// last seen advanced.
const CERT_UPSERT: &str = "INSERT INTO certificates \
     SELECT DISTINCT ON (fingerprint) * FROM certificates_stage ORDER BY fingerprint, last_seen DESC \
     ON CONFLICT (fingerprint) DO UPDATE SET last_seen = GREATEST(certificates.last_seen, EXCLUDED.last_seen)";

/// One `COPY` stream per table, filled from store items and reused between batches.
#[derive(Default, Debug)]
pub struct TableCopies {
    flows: CopyBuf,
    alerts: CopyBuf,
    tls: CopyBuf,
    certs: CopyBuf,
    krb: CopyBuf,
    app: CopyBuf,
    audit: CopyBuf,
    /// Latest use of each token among the audit rows, for `api_tokens.last_used_at`.
    token_use: std::collections::HashMap<i64, DateTime<Utc>>,
    /// The UTC days (since 1970) the rows fall on, whose partitions must exist.
    days: std::collections::BTreeSet<i32>,
}

impl TableCopies {
    /// Forgets every row, keeping the buffers.
    pub fn clear(&mut self) {
        for b in self.all_mut() {
            b.clear();
        }
        self.token_use.clear();
        self.days.clear();
    }

    /// The UTC days the encoded rows fall on.
    pub fn days(&self) -> &std::collections::BTreeSet<i32> {
        &self.days
    }

    /// Advances `api_tokens.last_used_at` once per token per batch, not once per request.
    fn touch_tokens(&mut self, conn: &mut PgConnection) -> QueryResult<()> {
        if self.token_use.is_empty() {
            return Ok(());
        }
        use diesel::sql_types::{Array, BigInt, Timestamptz};
        let (ids, times): (Vec<i64>, Vec<DateTime<Utc>>) = self.token_use.drain().unzip();
        diesel::sql_query(
            "UPDATE api_tokens SET last_used_at = v.ts \
             FROM unnest($1::bigint[], $2::timestamptz[]) AS v(id, ts) \
             WHERE api_tokens.id = v.id AND (last_used_at IS NULL OR last_used_at < v.ts)",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Timestamptz>, _>(times)
        .execute(conn)
        .map(|_| ())
    }

    fn all_mut(&mut self) -> [&mut CopyBuf; 7] {
        [
            &mut self.flows,
            &mut self.alerts,
            &mut self.tls,
            &mut self.certs,
            &mut self.krb,
            &mut self.app,
            &mut self.audit,
        ]
    }

    /// Encodes one item into the streams of the tables it fills.
    pub fn push(&mut self, sensor: &str, item: &StoreItem) {
        match item {
            StoreItem::Event(e) => {
                self.days.insert(day_of_us(e.header.ts.0));
                self.push_event(sensor, e)
            }
            StoreItem::Audit(a) => {
                self.days.insert(day_of_us(a.ts.timestamp_micros()));
                a.encode(&mut self.audit);
                if let Some(id) = a.token_id {
                    let t = self.token_use.entry(id).or_insert(a.ts);
                    *t = (*t).max(a.ts);
                }
            }
        }
    }

    /// Sends every non-empty stream with `COPY` (inside the caller's transaction).
    pub fn write(&mut self, conn: &mut PgConnection) -> QueryResult<()> {
        use crate::schema::*;
        if !self.flows.is_empty() {
            use flows::*;
            let cols = (
                sensor,
                flow_id,
                ts,
                start_ts,
                end_ts,
                src_ip,
                src_port,
                dest_ip,
                dest_port,
                proto,
                app_proto,
                pkts_toserver,
                pkts_toclient,
                bytes_toserver,
                bytes_toclient,
                state,
                reason,
                tcp_flags,
                alerted,
            );
            copy_into(conn, table, cols, &mut self.flows)?;
        }
        if !self.alerts.is_empty() {
            use alerts::*;
            let cols = (
                sensor,
                flow_id,
                ts,
                src_ip,
                src_port,
                dest_ip,
                dest_port,
                proto,
                signature_id,
                signature,
                category,
                severity,
                threat_type,
                mitre,
                evidence,
            );
            copy_into(conn, table, cols, &mut self.alerts)?;
        }
        if !self.tls.is_empty() {
            use tls_sessions::*;
            let cols = (
                sensor,
                flow_id,
                ts,
                src_ip,
                src_port,
                dest_ip,
                dest_port,
                transport,
                sni,
                version,
                ja3,
                ja3_string,
                ja3s,
                ja3s_string,
                ja4,
                alpn,
                cipher_selected,
                cert_fingerprint,
            );
            copy_into(conn, table, cols, &mut self.tls)?;
        }
        if !self.certs.is_empty() {
            use certificates_stage::*;
            let cols = (
                fingerprint,
                subject,
                issuer,
                serial,
                not_before,
                not_after,
                sans,
                self_signed,
                is_ca,
                key_type,
                key_bits,
                first_seen,
                last_seen,
            );
            copy_into(conn, table, cols, &mut self.certs)?;
            diesel::sql_query(CERT_UPSERT).execute(conn)?;
        }
        if !self.krb.is_empty() {
            use kerberos_events::*;
            let cols = (
                sensor,
                flow_id,
                ts,
                src_ip,
                src_port,
                dest_ip,
                dest_port,
                proto,
                msg_type,
                cname,
                realm,
                sname,
                encryption,
                ticket_encryption,
                requested_etypes,
                padata_types,
                error_code,
                failed_request,
                weak_encryption,
            );
            copy_into(conn, table, cols, &mut self.krb)?;
        }
        if !self.app.is_empty() {
            use app_events::*;
            let cols = (sensor, flow_id, ts, event_type, src_ip, dest_ip, eve);
            copy_into(conn, table, cols, &mut self.app)?;
        }
        if !self.audit.is_empty() {
            use api_token_usage::*;
            let cols = (
                ts,
                token_id,
                token_name,
                method,
                tool,
                status,
                http_status,
                duration_us,
                client_addr,
                user_agent,
                session_id,
                error,
                arguments,
            );
            copy_into(conn, table, cols, &mut self.audit)?;
            self.touch_tokens(conn)?;
        }
        Ok(())
    }

    fn push_event(&mut self, sensor: &str, event: &Event) {
        let h = &event.header;
        match &event.kind {
            EventKind::Flow(f) => {
                let b = &mut self.flows;
                b.row(19);
                b.text(sensor);
                b.int8(h.flow_id as i64);
                b.timestamptz_us(h.ts.0);
                b.timestamptz_us(f.start.0);
                b.timestamptz_us(f.end.0);
                endpoints(b, h);
                b.int2(i16::from(h.key.proto));
                b.opt_text(f.app_proto.as_deref());
                b.int8(clamp_u64(f.pkts_toserver));
                b.int8(clamp_u64(f.pkts_toclient));
                b.int8(clamp_u64(f.bytes_toserver));
                b.int8(clamp_u64(f.bytes_toclient));
                b.text(label_or_unknown(&f.state, &FLOW_STATES));
                b.text(label_or_unknown(&f.reason, &FLOW_END_REASONS));
                b.int2(i16::from(f.tcp_flags));
                b.bool(f.alerted);
            }
            EventKind::Alert(a) => {
                let b = &mut self.alerts;
                b.row(15);
                b.text(sensor);
                b.int8(h.flow_id as i64);
                b.timestamptz_us(h.ts.0);
                endpoints(b, h);
                b.int2(i16::from(h.key.proto));
                b.int8(i64::from(a.signature_id));
                b.text(&a.signature);
                b.text(&a.category);
                b.int2(i16::from(a.severity));
                b.text(&a.threat_type);
                b.text_array(&a.mitre);
                b.jsonb(&a.evidence);
            }
            EventKind::Tls(t) => {
                for c in &t.certificates {
                    let b = &mut self.certs;
                    b.row(13);
                    b.text(&c.fingerprint);
                    b.text(&c.subject);
                    b.text(&c.issuer);
                    b.text(&c.serial);
                    b.timestamptz_us(c.not_before.saturating_mul(1_000_000));
                    b.timestamptz_us(c.not_after.saturating_mul(1_000_000));
                    b.text_array(&c.sans);
                    b.bool(c.self_signed);
                    b.bool(c.is_ca);
                    b.opt_text(c.key_type.as_deref());
                    b.opt_int4(c.key_bits.and_then(|v| i32::try_from(v).ok()));
                    b.timestamptz_us(h.ts.0);
                    b.timestamptz_us(h.ts.0);
                }
                let b = &mut self.tls;
                b.row(18);
                b.text(sensor);
                b.int8(h.flow_id as i64);
                b.timestamptz_us(h.ts.0);
                endpoints(b, h);
                b.text(transport(t));
                b.opt_text(t.sni.as_deref());
                b.opt_text(t.version.as_deref());
                b.opt_text(t.ja3.as_ref().map(|f| f.hash.as_str()));
                b.opt_text(t.ja3.as_ref().map(|f| f.string.as_str()));
                b.opt_text(t.ja3s.as_ref().map(|f| f.hash.as_str()));
                b.opt_text(t.ja3s.as_ref().map(|f| f.string.as_str()));
                b.opt_text(t.ja4.as_deref());
                b.text_array(&t.alpn_offered);
                b.opt_int4(t.cipher_selected.map(i32::from));
                b.opt_text(t.certificates.first().map(|c| c.fingerprint.as_str()));
            }
            EventKind::Krb5(k) => {
                let b = &mut self.krb;
                b.row(19);
                b.text(sensor);
                b.int8(h.flow_id as i64);
                b.timestamptz_us(h.ts.0);
                endpoints(b, h);
                b.int2(i16::from(h.key.proto));
                b.text(k.msg_type.name());
                b.opt_text(k.cname.as_deref());
                b.opt_text(k.realm.as_deref());
                b.opt_text(k.sname.as_deref());
                b.opt_int4(k.encryption);
                b.opt_int4(k.ticket_encryption);
                b.int4_array(&k.requested_etypes);
                b.int4_array(&k.padata_types);
                b.opt_int4(k.error_code);
                b.opt_text(k.failed_request.map(|r| r.name()));
                b.bool(k.encryption.is_some_and(is_weak_etype));
            }
            EventKind::FlowStart(_)
            | EventKind::Arp(_)
            | EventKind::HostName(_)
            | EventKind::Neighbor(_) => {}
            EventKind::Dns(_) | EventKind::Dhcp(_) | EventKind::Http(_) => {
                let b = &mut self.app;
                b.row(7);
                b.text(sensor);
                b.int8(h.flow_id as i64);
                b.timestamptz_us(h.ts.0);
                b.text(event.kind.event_type());
                b.inet(h.key.src_ip);
                b.inet(h.key.dst_ip);
                b.jsonb(&to_eve(event));
            }
        }
    }
}

/// The labels of the `flow_state` enum besides `unknown`. A flow record carries its state and
/// end reason as text (it may come from a spool or another sensor), and a label the enum does
/// not have would make PostgreSQL refuse the row.
pub const FLOW_STATES: [&str; 4] = ["new", "established", "closed", "bypassed"];
/// The labels of the `flow_end_reason` enum besides `unknown`.
pub const FLOW_END_REASONS: [&str; 4] = ["timeout", "forced", "shutdown", "tcp_reuse"];

/// `value` when it is one of `labels`, `unknown` otherwise.
fn label_or_unknown<'a>(value: &'a str, labels: &[&str]) -> &'a str {
    if labels.contains(&value) {
        value
    } else {
        "unknown"
    }
}

/// `src_ip, src_port, dest_ip, dest_port` as every event table has them.
fn endpoints(b: &mut CopyBuf, h: &EventHeader) {
    b.inet(h.key.src_ip);
    b.int4(i32::from(h.key.src_port));
    b.inet(h.key.dst_ip);
    b.int4(i32::from(h.key.dst_port));
}

pub(crate) fn clamp_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// One binary `COPY` of `buf` into `columns` of `table` (the buffer can take more rows after).
pub(crate) fn copy_into<T, C>(
    conn: &mut PgConnection,
    table: T,
    columns: C,
    buf: &mut CopyBuf,
) -> QueryResult<()>
where
    T: diesel::Table,
    C: diesel::pg::CopyTarget<Table = T>,
{
    let data = buf.finish();
    let result = diesel::copy_from(table)
        .from_raw_data(columns, |w| {
            for chunk in data.chunks(COPY_CHUNK) {
                w.write_all(chunk)
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .with_format(CopyFormat::Binary)
        .execute(conn)
        .map(|_| ());
    buf.unfinish();
    result
}

impl AuditRecord {
    /// Appends this row to the audit stream.
    pub(crate) fn encode(&self, b: &mut CopyBuf) {
        b.row(13);
        b.timestamptz_us(self.ts.timestamp_micros());
        b.opt_int8(self.token_id);
        b.opt_text(self.token_name.as_deref());
        b.text(&self.method);
        b.opt_text(self.tool.as_deref());
        b.text(&self.status);
        b.int4(self.http_status);
        b.int8(self.duration_us);
        b.opt_text(self.client_addr.as_deref());
        b.opt_text(self.user_agent.as_deref());
        b.opt_text(self.session_id.as_deref());
        b.opt_text(self.error.as_deref());
        b.opt_text(self.arguments.as_deref());
    }
}
