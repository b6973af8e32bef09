//! What can cover an alert: whitelist entries (address/network, domain, port, direction,
//! sensor) and service providers (named ranges and domains whose traffic is scored lower and,
//! for the kinds they list, suppressed). Pure matching; the policy decides and counts.

use ipnet::IpNet;
use netmonitor_common::{Alert, EventHeader};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::IpAddr;

/// Which end of an alert an address entry looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Either end.
    #[default]
    Any,
    /// The alert's source.
    Source,
    /// The alert's destination.
    Destination,
}

impl Direction {
    /// Parses `any`, `source` or `destination`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "any" => Some(Direction::Any),
            "source" => Some(Direction::Source),
            "destination" => Some(Direction::Destination),
            _ => None,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Any => "any",
            Direction::Source => "source",
            Direction::Destination => "destination",
        }
    }
}

/// The parts of an alert that entries match on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertSubject {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub port: u16,
    /// The domain the alert is about (SNI, DNS name, HTTP host), when it has one.
    pub domain: Option<String>,
    /// The alert's kind.
    pub kind: String,
}

/// Evidence fields naming the domain an alert is about, most specific first.
const DOMAIN_FIELDS: [&str; 5] = ["domain", "sni", "host", "hostname", "rrname"];

impl AlertSubject {
    /// The subject of one alert event.
    pub fn of(h: &EventHeader, a: &Alert) -> Self {
        let ev = &a.evidence;
        let named = DOMAIN_FIELDS
            .iter()
            .find_map(|f| ev.get(*f).and_then(|v| v.as_str()))
            .or_else(|| {
                (ev.get("indicator_type").and_then(|v| v.as_str()) == Some("domain"))
                    .then(|| ev.get("matched_value").and_then(|v| v.as_str()))
                    .flatten()
            });
        AlertSubject {
            src: h.key.src_ip,
            dst: h.key.dst_ip,
            port: h.key.dst_port,
            domain: named.map(normalize_domain),
            kind: a.threat_type.clone(),
        }
    }
}

/// Lower case, no trailing dot.
pub fn normalize_domain(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` is `domain` or below it (`a.b.example.com` is under `example.com`).
fn under(name: &str, domain: &str) -> bool {
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

/// One whitelist entry (the `whitelist` table): it covers an alert when every field it sets
/// matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WhitelistEntry {
    /// Its id in the table.
    pub id: i64,
    /// The network (a single address is a /32 or /128).
    pub net: Option<IpNet>,
    /// A domain: the alert's domain is it or below it.
    pub domain: Option<String>,
    /// The alert's destination port.
    pub port: Option<u16>,
    /// Which end `net` applies to.
    pub direction: Direction,
    /// Only alerts of this sensor.
    pub sensor: Option<String>,
}

impl WhitelistEntry {
    /// An entry matching only an address or network given as text (`10.0.0.0/8`, `192.0.2.1`).
    pub fn parse(id: i64, ip_cidr: &str) -> Option<Self> {
        Some(WhitelistEntry {
            id,
            net: Some(parse_net(ip_cidr)?),
            domain: None,
            port: None,
            direction: Direction::Any,
            sensor: None,
        })
    }

    /// Whether the entry covers this alert on `sensor`.
    pub fn covers(&self, s: &AlertSubject, sensor: &str) -> bool {
        if self.sensor.as_deref().is_some_and(|x| x != sensor) {
            return false;
        }
        if self.port.is_some_and(|p| p != s.port) {
            return false;
        }
        if let Some(d) = &self.domain {
            if !s.domain.as_deref().is_some_and(|n| under(n, d)) {
                return false;
            }
        }
        match (self.net, self.direction) {
            (None, _) => true,
            (Some(n), Direction::Any) => n.contains(&s.src) || n.contains(&s.dst),
            (Some(n), Direction::Source) => n.contains(&s.src),
            (Some(n), Direction::Destination) => n.contains(&s.dst),
        }
    }
}

/// An address or a network.
pub fn parse_net(s: &str) -> Option<IpNet> {
    let t = s.trim();
    t.parse::<IpAddr>()
        .map(IpNet::from)
        .ok()
        .or_else(|| t.parse().ok())
}

/// A service provider (the `service_providers` table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceProvider {
    /// Its id in the table.
    pub id: i64,
    /// Its name (`offsite-backup`, `cdn-example`).
    pub name: String,
    /// cdn, cloud, backup, streaming, saas, other.
    pub category: String,
    /// Its address ranges.
    pub ranges: Vec<IpNet>,
    /// Its domains (names below them count).
    pub domains: Vec<String>,
    /// Alert kinds suppressed when it is the other end.
    pub suppress: HashSet<String>,
}

impl ServiceProvider {
    /// Whether `ip` is in one of its ranges.
    pub fn owns(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|n| n.contains(&ip))
    }

    /// Whether the alert's other end (destination address or domain) is this provider's.
    pub fn serves(&self, s: &AlertSubject) -> bool {
        self.owns(s.dst)
            || s.domain
                .as_deref()
                .is_some_and(|n| self.domains.iter().any(|d| under(n, d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(src: &str, dst: &str, port: u16, domain: Option<&str>) -> AlertSubject {
        AlertSubject {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            port,
            domain: domain.map(str::to_string),
            kind: "beaconing".into(),
        }
    }

    #[test]
    fn entries_match_on_every_field_they_set() {
        let mut e = WhitelistEntry::parse(1, "10.0.0.0/8").unwrap();
        let s = subject("10.1.1.1", "192.0.2.1", 443, Some("cdn.example.com"));
        assert!(e.covers(&s, "s1"));
        e.direction = Direction::Destination;
        assert!(
            !e.covers(&s, "s1"),
            "the source is in the network, not the destination"
        );
        e.direction = Direction::Source;
        assert!(e.covers(&s, "s1"));
        e.port = Some(80);
        assert!(!e.covers(&s, "s1"));
        e.port = Some(443);
        e.sensor = Some("s2".into());
        assert!(!e.covers(&s, "s1"));
        e.sensor = Some("s1".into());
        e.domain = Some("example.com".into());
        assert!(e.covers(&s, "s1"), "cdn.example.com is below example.com");
        e.domain = Some("ample.com".into());
        assert!(!e.covers(&s, "s1"), "a suffix that is not a label boundary");
        let only_domain = WhitelistEntry {
            id: 2,
            net: None,
            domain: Some("example.com".into()),
            port: None,
            direction: Direction::Any,
            sensor: None,
        };
        assert!(only_domain.covers(&s, "any"));
        assert!(!only_domain.covers(&subject("10.1.1.1", "192.0.2.1", 443, None), "any"));
    }

    #[test]
    fn providers_serve_by_range_or_domain() {
        let p = ServiceProvider {
            id: 1,
            name: "backup".into(),
            category: "backup".into(),
            ranges: vec!["198.51.100.0/24".parse().unwrap()],
            domains: vec!["backup.example".into()],
            suppress: HashSet::new(),
        };
        assert!(p.serves(&subject("10.0.0.1", "198.51.100.9", 443, None)));
        assert!(p.serves(&subject(
            "10.0.0.1",
            "192.0.2.1",
            443,
            Some("eu.backup.example")
        )));
        assert!(
            !p.serves(&subject("198.51.100.9", "10.0.0.1", 443, None)),
            "only the far end"
        );
    }
}
