//! One device as the inventory knows it, and how facts from events fold into it.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Names, fingerprints and services kept per device at most (a device that changes name on
/// every lease must not grow without bound).
pub const MAX_FACTS: usize = 32;

/// A device: keyed by MAC where one was seen (DHCP), else by IP.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Device {
    /// `mac:aa:bb:cc:dd:ee:ff` or `ip:10.0.0.5`.
    pub id: String,
    /// Hardware address, lowercase with colons.
    pub mac: Option<String>,
    /// Organization the MAC's prefix is assigned to (IEEE registries).
    pub vendor: Option<String>,
    /// Addresses it used.
    pub ips: BTreeSet<String>,
    /// Host names, each with where it was learnt (`dhcp`, `dns`, `mdns`, `ptr`).
    pub hostnames: BTreeMap<String, String>,
    /// DHCP parameter request list (option 55), as `1,3,6,15,...`.
    pub dhcp_fingerprint: Option<String>,
    /// DHCP vendor class (option 60).
    pub dhcp_vendor_class: Option<String>,
    /// Capabilities it announced over LLDP or CDP (`router`, `bridge`, `telephone`, ...).
    pub capabilities: BTreeSet<String>,
    /// Platform or system description it announced.
    pub platform: Option<String>,
    /// TLS client fingerprints (JA4, else JA3 hash) it sent.
    pub tls_fingerprints: BTreeSet<String>,
    /// Services it answered on: `tcp/22`, `udp/53`.
    pub services: BTreeSet<String>,
    /// Application protocols of its flows, by count.
    pub protocols: BTreeMap<String, u64>,
    /// First and last time seen, microseconds since the epoch (capture time).
    pub first_seen_us: i64,
    /// Last time seen.
    pub last_seen_us: i64,
    /// Bytes it sent and received.
    pub bytes_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Flows it took part in.
    pub flows: u64,
    /// Template assigned (see [`crate::templates`]).
    pub template: Option<String>,
    /// Confidence of the assignment, 0–1 (1 when made by hand).
    pub template_confidence: f64,
    /// What led to it.
    pub template_hints: Vec<String>,
    /// Assigned by hand: the classifier leaves it alone.
    pub template_manual: bool,
    /// Criticality set by hand (else the template's).
    pub criticality: Option<String>,
    /// When someone last confirmed it (`touch_device`), microseconds.
    pub touched_us: Option<i64>,
    /// Labels set by analysts or SOAR playbooks (`tag_device` actions).
    pub tags: std::collections::BTreeSet<String>,
    /// What it normally does (see [`crate::learn`]).
    pub baseline: crate::learn::Baseline,
    /// Id, MAC, vendor, addresses and names in one lowercase text (one allocation to search,
    /// not one per field); rebuilt when the device is saved or read back.
    #[serde(skip)]
    search_text: String,
}

impl Device {
    /// A new device first seen at `ts`.
    pub fn new(id: String, ts: i64) -> Self {
        Device {
            id,
            first_seen_us: ts,
            last_seen_us: ts,
            ..Device::default()
        }
    }

    /// Marks it seen at `ts` (capture time may step back between shards).
    pub fn seen(&mut self, ts: i64) {
        self.first_seen_us = self.first_seen_us.min(ts);
        self.last_seen_us = self.last_seen_us.max(ts);
    }

    /// Adds a host name learnt from `source` (the first source of a name stays).
    pub fn add_name(&mut self, name: &str, source: &str) {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || name.len() > 253 || self.hostnames.len() >= MAX_FACTS {
            return;
        }
        self.hostnames
            .entry(name)
            .or_insert_with(|| source.to_owned());
    }

    /// Adds an address.
    pub fn add_ip(&mut self, ip: &str) {
        if self.ips.len() < MAX_FACTS {
            self.ips.insert(ip.to_owned());
        }
    }

    /// Adds a bounded set member.
    pub(crate) fn add_to(set: &mut BTreeSet<String>, v: String) {
        if set.len() < MAX_FACTS {
            set.insert(v);
        }
    }

    /// Folds `other` (the same device known by another key) into this one.
    pub fn absorb(&mut self, other: Device) {
        self.seen(other.first_seen_us);
        self.seen(other.last_seen_us);
        for ip in other.ips {
            self.add_ip(&ip);
        }
        for (n, s) in other.hostnames {
            self.add_name(&n, &s);
        }
        for f in other.tls_fingerprints {
            Self::add_to(&mut self.tls_fingerprints, f);
        }
        for s in other.services {
            Self::add_to(&mut self.services, s);
        }
        for (p, n) in other.protocols {
            *self.protocols.entry(p).or_default() += n;
        }
        self.bytes_out += other.bytes_out;
        self.bytes_in += other.bytes_in;
        self.flows += other.flows;
        self.dhcp_fingerprint = self.dhcp_fingerprint.take().or(other.dhcp_fingerprint);
        self.dhcp_vendor_class = self.dhcp_vendor_class.take().or(other.dhcp_vendor_class);
    }

    /// Rebuilds the text searches read.
    pub fn refresh_search_text(&mut self) {
        let mut t = String::with_capacity(self.search_text.len().max(64));
        for part in [
            Some(self.id.as_str()),
            self.mac.as_deref(),
            self.vendor.as_deref(),
        ]
        .into_iter()
        .flatten()
        .chain(self.ips.iter().map(String::as_str))
        .chain(self.hostnames.keys().map(String::as_str))
        {
            t.push_str(part);
            t.push('\n');
        }
        t.make_ascii_lowercase();
        self.search_text = t;
    }

    /// As [`Device::matches`], from the text kept by [`Device::refresh_search_text`] (the
    /// caller knows it is current).
    pub fn matches_text(&self, q: &Search) -> bool {
        q.finder.find(self.search_text.as_bytes()).is_some()
    }

    /// Whether the search `q` (made once per query) is in its id, MAC, vendor, an address
    /// or a name.
    pub fn matches(&self, q: &Search) -> bool {
        // Ids, MACs, addresses and names are kept lowercase: a plain search does for them.
        let has = |s: &str| q.finder.find(s.as_bytes()).is_some();
        has(&self.id)
            || self.mac.as_deref().is_some_and(has)
            || self
                .vendor
                .as_deref()
                .is_some_and(|v| contains_ignore_case(v, &q.lower))
            || self.ips.iter().any(|s| has(s))
            || self.hostnames.keys().any(|s| has(s))
    }
}

/// A case-insensitive text search over devices, prepared once.
pub struct Search {
    lower: String,
    finder: memchr::memmem::Finder<'static>,
}

impl Search {
    /// A search for `text`.
    pub fn new(text: &str) -> Self {
        let lower = text.to_ascii_lowercase();
        let finder = memchr::memmem::Finder::new(lower.as_bytes()).into_owned();
        Search { lower, finder }
    }
}

/// Whether `needle` (lowercase ASCII) occurs in `hay`, ignoring ASCII case, without allocating
/// (a search runs over every device).
pub fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some((&first, rest)) = n.split_first() else {
        return true;
    };
    if h.len() < n.len() {
        return false;
    }
    let upper = first.to_ascii_uppercase();
    (0..=h.len() - n.len()).any(|i| {
        (h[i] == first || h[i] == upper) && h[i + 1..i + n.len()].eq_ignore_ascii_case(rest)
    })
}
