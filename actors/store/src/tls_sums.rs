//! The TLS rollup (sessions per hour, sensor and value of each attribute) and its sketches of
//! distinct clients and servers, counted in memory by the store writer like the talker sums
//! and added every few seconds (`netmonitor_add_tls`) in one transaction with the sensor's
//! watermark: grouping every batch's sessions in a statement trigger, and upserting the hourly
//! rollup and sketches each time, cost about a quarter of writing the sessions. Sessions above
//! the watermark (written before a crash) are counted from the rows at the writer's start
//! (`netmonitor_rollup_tls`, also for sessions inserted by other means under a sensor name no
//! running writer uses).

use crate::copy::{clean_text, CopyBuf};
use crate::rollup::{advance_watermark, hour_of, Pending};
use crate::rows::{copy_into, transport};
use crate::writer::StoreItem;
use diesel::prelude::*;
use netmonitor_common::{EventKind, TlsHandshake};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// The kinds of value counted, as `tls_rollup.kind` names them.
const KINDS: [&str; 7] = [
    "transport",
    "version",
    "ja3",
    "ja3s",
    "ja4",
    "sni",
    "certificate",
];

/// The values of one session, in the order of [`KINDS`], as its row stores them.
fn values(t: &TlsHandshake) -> [Option<&str>; 7] {
    [
        Some(transport(t)),
        t.version.as_deref(),
        t.ja3.as_ref().map(|f| f.hash.as_str()),
        t.ja3s.as_ref().map(|f| f.hash.as_str()),
        t.ja4.as_deref(),
        t.sni.as_deref(),
        t.certificates.first().map(|c| c.fingerprint.as_str()),
    ]
}

/// Counts of committed sessions not yet in `tls_rollup`, and the addresses not yet in
/// `tls_distinct`.
#[derive(Debug, Default)]
pub struct TlsSums {
    /// Sessions per (hour, index into [`KINDS`]) and value.
    counts: HashMap<(i64, usize), HashMap<String, i64>>,
    /// (hour, client rather than server, address).
    addresses: HashSet<(i64, bool, IpAddr)>,
    pending: Pending,
    count_stage: CopyBuf,
    address_stage: CopyBuf,
}

impl TlsSums {
    /// Counts the sessions of a batch that has just committed.
    pub fn add(&mut self, items: &[StoreItem]) {
        if !self.pending.counting() {
            return;
        }
        for item in items {
            let StoreItem::Event(e) = item else { continue };
            let EventKind::Tls(t) = &e.kind else {
                continue;
            };
            let bucket = hour_of(e.header.ts.0);
            for (kind, value) in values(t).into_iter().enumerate() {
                let Some(value) = value else { continue };
                // as the row stores it: two values differing only in a NUL are one
                let value = clean_text(value);
                let by_value = self.counts.entry((bucket, kind)).or_default();
                match by_value.get_mut(&*value) {
                    Some(n) => *n += 1,
                    None => {
                        by_value.insert(value.into_owned(), 1);
                    }
                }
            }
            self.addresses.insert((bucket, true, e.header.key.src_ip));
            self.addresses.insert((bucket, false, e.header.key.dst_ip));
        }
    }

    /// Values and addresses held, all hours together.
    fn held(&self) -> usize {
        self.counts.values().map(HashMap::len).sum::<usize>() + self.addresses.len()
    }

    /// True when the counts should be written now.
    pub fn due(&self) -> bool {
        self.pending.due(self.held())
    }

    /// Counts the sessions above the sensor's watermark, once after start (and after counts
    /// were dropped); until it succeeds, batches are not counted in memory.
    pub fn recover(&mut self, conn: &mut PgConnection, sensor: &str) -> QueryResult<()> {
        self.pending.recover(conn, sensor, "netmonitor_rollup_tls")
    }

    /// Writes the counts, the addresses and the watermark in one transaction; on failure they
    /// stay in memory (or, past the cap, are dropped and recounted from the rows at the next
    /// recovery).
    pub fn flush(&mut self, conn: &mut PgConnection, sensor: &str) -> QueryResult<()> {
        if self.held() == 0 {
            return Ok(());
        }
        self.count_stage.clear();
        for (&(bucket, kind), by_value) in &self.counts {
            for (value, &n) in by_value {
                let b = &mut self.count_stage;
                b.row(5);
                b.timestamptz_us(bucket);
                b.text(sensor);
                b.text(KINDS[kind]);
                b.text(value);
                b.int8(n);
            }
        }
        self.address_stage.clear();
        for &(bucket, client, ip) in &self.addresses {
            let b = &mut self.address_stage;
            b.row(4);
            b.timestamptz_us(bucket);
            b.text(sensor);
            b.bool(client);
            b.inet(ip);
        }
        let (counts, addresses) = (&mut self.count_stage, &mut self.address_stage);
        let result = conn.transaction::<_, diesel::result::Error, _>(|c| {
            {
                use crate::schema::tls_stage::dsl::*;
                copy_into(
                    c,
                    tls_stage,
                    (bucket, sensor, kind, value, sessions),
                    counts,
                )?;
            }
            {
                use crate::schema::tls_address_stage::dsl::*;
                copy_into(
                    c,
                    tls_address_stage,
                    (bucket, sensor, client, ip),
                    addresses,
                )?;
            }
            diesel::sql_query("SELECT netmonitor_add_tls('tls_stage', 'tls_address_stage')")
                .execute(c)?;
            advance_watermark(c, sensor, "tls", "tls_sessions")
        });
        if self.pending.settle(&result, self.held(), "tls") {
            self.counts.clear();
            self.addresses.clear();
        }
        result
    }
}
