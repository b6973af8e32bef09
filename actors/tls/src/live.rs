//! Live TLS statistics since the sensor started, kept by the TLS actor from the handshakes it
//! sees (the database answers for past windows; this answers "right now" without a query).
//! Bounded: each top list tracks at most [`MAX_KEYS`] values.

use netmonitor_common::TlsHandshake;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Distinct values tracked per top list.
pub const MAX_KEYS: usize = 10_000;

/// A value and how often it was seen.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct NameCount {
    /// The value.
    pub name: String,
    /// Occurrences.
    pub count: u64,
}

#[derive(Debug, Default)]
struct Top {
    counts: HashMap<String, u64>,
    /// Occurrences of values not tracked because the table was full.
    untracked: u64,
}

impl Top {
    fn add(&mut self, v: &str) {
        if let Some(n) = self.counts.get_mut(v) {
            *n += 1;
        } else if self.counts.len() < MAX_KEYS {
            self.counts.insert(v.to_owned(), 1);
        } else {
            self.untracked += 1;
        }
    }

    fn top(&self, n: usize) -> Vec<NameCount> {
        let mut v: Vec<NameCount> = self
            .counts
            .iter()
            .map(|(k, c)| NameCount {
                name: k.clone(),
                count: *c,
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        v.truncate(n);
        v
    }
}

/// Running counters.
#[derive(Debug, Default)]
pub struct TlsLive {
    handshakes: u64,
    quic: u64,
    without_sni: u64,
    with_certificate: u64,
    self_signed: u64,
    versions: BTreeMap<String, u64>,
    ja3: Top,
    ja4: Top,
    sni: Top,
    alerts: BTreeMap<String, u64>,
}

/// What `get_tls_stats` shows of the live state.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TlsLiveStats {
    /// Handshakes seen since start (TLS and QUIC).
    pub handshakes: u64,
    /// Of which QUIC.
    pub quic: u64,
    /// Without SNI.
    pub without_sni: u64,
    /// With a server certificate in clear.
    pub with_certificate: u64,
    /// Whose leaf certificate is self-signed.
    pub self_signed_certificates: u64,
    /// By version name.
    pub versions: BTreeMap<String, u64>,
    /// Most frequent JA3 hashes.
    pub top_ja3: Vec<NameCount>,
    /// Most frequent JA4.
    pub top_ja4: Vec<NameCount>,
    /// Most frequent server names.
    pub top_sni: Vec<NameCount>,
    /// Alerts raised by the TLS detections, by kind (before whitelisting).
    pub alerts_by_kind: BTreeMap<String, u64>,
    /// Distinct JA3 hashes tracked.
    pub distinct_ja3: usize,
    /// Distinct JA4 tracked.
    pub distinct_ja4: usize,
}

impl TlsLive {
    /// Counts one handshake.
    pub fn record(&mut self, hs: &TlsHandshake) {
        self.handshakes += 1;
        if hs.quic_version.is_some() {
            self.quic += 1;
        }
        match &hs.sni {
            Some(s) => self.sni.add(s),
            None => self.without_sni += 1,
        }
        if let Some(c) = hs.certificates.first() {
            self.with_certificate += 1;
            if c.self_signed {
                self.self_signed += 1;
            }
        }
        *self
            .versions
            .entry(hs.version.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
        if let Some(j) = &hs.ja3 {
            self.ja3.add(&j.hash);
        }
        if let Some(j) = &hs.ja4 {
            self.ja4.add(j);
        }
    }

    /// Counts an alert kind.
    pub fn alert(&mut self, kind: &str) {
        *self.alerts.entry(kind.to_owned()).or_default() += 1;
    }

    /// A snapshot with the `n` most frequent values per list.
    pub fn snapshot(&self, n: usize) -> TlsLiveStats {
        TlsLiveStats {
            handshakes: self.handshakes,
            quic: self.quic,
            without_sni: self.without_sni,
            with_certificate: self.with_certificate,
            self_signed_certificates: self.self_signed,
            versions: self.versions.clone(),
            top_ja3: self.ja3.top(n),
            top_ja4: self.ja4.top(n),
            top_sni: self.sni.top(n),
            alerts_by_kind: self.alerts.clone(),
            distinct_ja3: self.ja3.counts.len(),
            distinct_ja4: self.ja4.counts.len(),
        }
    }

    /// Forgets the counters (flush_memory).
    pub fn clear(&mut self) -> usize {
        let freed = self.ja3.counts.len() + self.ja4.counts.len() + self.sni.counts.len();
        *self = TlsLive::default();
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmonitor_common::Fingerprint;

    #[test]
    fn counts_and_ranks() {
        let mut l = TlsLive::default();
        for (sni, ja3) in [("a", "x"), ("a", "y"), ("b", "x")] {
            l.record(&TlsHandshake {
                sni: Some(sni.into()),
                ja3: Some(Fingerprint {
                    hash: ja3.into(),
                    string: String::new(),
                }),
                version: Some("TLS 1.3".into()),
                ..TlsHandshake::default()
            });
        }
        l.record(&TlsHandshake::default());
        let s = l.snapshot(1);
        assert_eq!((s.handshakes, s.without_sni), (4, 1));
        assert_eq!(
            s.top_sni,
            [NameCount {
                name: "a".into(),
                count: 2
            }]
        );
        assert_eq!(s.top_ja3[0].name, "x");
        assert_eq!(s.versions.get("TLS 1.3"), Some(&3));
    }
}
