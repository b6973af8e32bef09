//! The live network inventory the MCP tools read: hosts seen (addresses, MAC and names learnt
//! from DHCP, DNS and TLS), who talks to whom, top talkers, and the most recent events. Built
//! only from events, bounded in memory (least recently seen hosts and edges are dropped first).

use netmonitor_common::eve::to_eve;
use netmonitor_common::{Event, EventKind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

/// Hosts kept at most.
pub const MAX_HOSTS: usize = 65_536;
/// Host-to-host edges kept at most.
pub const MAX_EDGES: usize = 100_000;
/// Recent events kept for `list_events` / `host_events`.
pub const MAX_RECENT_EVENTS: usize = 20_000;
/// Names remembered per host.
const MAX_NAMES: usize = 16;
/// Listening ports remembered per host.
const MAX_PORTS: usize = 64;

/// One host as the inventory knows it.
#[derive(Clone, Debug, Serialize)]
pub struct Host {
    /// IP address (the host id).
    pub ip: String,
    /// MAC address learnt from DHCP.
    pub mac: Option<String>,
    /// Names: DHCP host name, DNS names resolving to it, TLS SNI it served.
    pub hostnames: BTreeSet<String>,
    /// Where the facts came from (`flow`, `dhcp`, `dns`, `tls`, `krb5`, `alert`).
    pub sources: BTreeSet<&'static str>,
    /// First time seen (EVE timestamp).
    pub first_seen: String,
    /// Last time seen.
    pub last_seen: String,
    #[serde(skip)]
    last_seen_us: i64,
    /// Bytes it sent.
    pub bytes_sent: u64,
    /// Bytes it received.
    pub bytes_received: u64,
    /// Flows it started.
    pub flows_as_client: u64,
    /// Flows it answered.
    pub flows_as_server: u64,
    /// Server ports seen answering.
    pub open_ports: BTreeSet<u16>,
    /// Application protocols by flow count.
    pub protocols: BTreeMap<String, u64>,
    /// Alerts where it was source or destination.
    pub alerts: u64,
}

/// Traffic between two hosts (client → server).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Edge {
    /// Flows.
    pub flows: u64,
    /// Bytes both ways.
    pub bytes: u64,
    /// Server ports used.
    pub ports: BTreeSet<u16>,
    #[serde(skip)]
    last_seen_us: i64,
}

/// The inventory.
#[derive(Default)]
pub struct Inventory {
    hosts: HashMap<IpAddr, Host>,
    edges: HashMap<(IpAddr, IpAddr), Edge>,
    recent: VecDeque<Event>,
}

impl Inventory {
    fn host(
        &mut self,
        ip: IpAddr,
        ts: netmonitor_common::Timestamp,
        source: &'static str,
    ) -> &mut Host {
        let h = self.hosts.entry(ip).or_insert_with(|| Host {
            ip: ip.to_string(),
            mac: None,
            hostnames: BTreeSet::new(),
            sources: BTreeSet::new(),
            first_seen: ts.to_eve(),
            last_seen: ts.to_eve(),
            last_seen_us: ts.0,
            bytes_sent: 0,
            bytes_received: 0,
            flows_as_client: 0,
            flows_as_server: 0,
            open_ports: BTreeSet::new(),
            protocols: BTreeMap::new(),
            alerts: 0,
        });
        if ts.0 > h.last_seen_us {
            h.last_seen_us = ts.0;
            h.last_seen = ts.to_eve();
        }
        h.sources.insert(source);
        h
    }

    /// Folds a batch of events in.
    pub fn ingest(&mut self, events: &[Event]) {
        for e in events {
            let h = &e.header;
            let (src, dst) = (h.key.src_ip, h.key.dst_ip);
            match &e.kind {
                // Hosts appear with their flows' records; starts are for the detectors.
                EventKind::FlowStart(_)
                | EventKind::Arp(_)
                | EventKind::HostName(_)
                | EventKind::Neighbor(_) => continue,
                EventKind::Flow(f) => {
                    let c = self.host(src, h.ts, "flow");
                    c.bytes_sent += f.bytes_toserver;
                    c.bytes_received += f.bytes_toclient;
                    c.flows_as_client += 1;
                    let s = self.host(dst, h.ts, "flow");
                    s.bytes_sent += f.bytes_toclient;
                    s.bytes_received += f.bytes_toserver;
                    s.flows_as_server += 1;
                    if f.pkts_toclient > 0 && s.open_ports.len() < MAX_PORTS && h.key.dst_port != 0
                    {
                        s.open_ports.insert(h.key.dst_port);
                    }
                    if let Some(app) = &f.app_proto {
                        *s.protocols.entry(app.clone()).or_default() += 1;
                    }
                    let edge = self.edges.entry((src, dst)).or_default();
                    edge.flows += 1;
                    edge.bytes += f.bytes_toserver + f.bytes_toclient;
                    edge.last_seen_us = h.ts.0;
                    if edge.ports.len() < MAX_PORTS {
                        edge.ports.insert(h.key.dst_port);
                    }
                    continue;
                }
                EventKind::Dhcp(d) => {
                    if let Some(ip) = d.assigned_ip.as_deref().and_then(|s| s.parse().ok()) {
                        let host = self.host(ip, h.ts, "dhcp");
                        host.mac = Some(d.client_mac.clone());
                        if let Some(n) = &d.hostname {
                            add_name(host, n);
                        }
                    }
                }
                EventKind::Dns(d) => {
                    for a in &d.answers {
                        if let Ok(ip) = a.parse::<IpAddr>() {
                            let host = self.host(ip, h.ts, "dns");
                            add_name(host, &d.rrname);
                        }
                    }
                }
                EventKind::Tls(t) => {
                    if let Some(sni) = &t.sni {
                        add_name(self.host(dst, h.ts, "tls"), sni);
                    }
                }
                EventKind::Krb5(_) => {
                    self.host(src, h.ts, "krb5");
                }
                EventKind::Http(r) => {
                    if let Some(name) = r.hostname.as_ref().filter(|n| n.parse::<IpAddr>().is_err())
                    {
                        add_name(self.host(dst, h.ts, "http"), name);
                    }
                }
                EventKind::Alert(_) => {
                    self.host(src, h.ts, "alert").alerts += 1;
                    self.host(dst, h.ts, "alert").alerts += 1;
                }
            }
            if self.recent.len() >= MAX_RECENT_EVENTS {
                self.recent.pop_front();
            }
            self.recent.push_back(e.clone());
        }
        self.enforce_caps();
    }

    fn enforce_caps(&mut self) {
        if self.hosts.len() > MAX_HOSTS {
            let mut ages: Vec<(i64, IpAddr)> = self
                .hosts
                .iter()
                .map(|(ip, h)| (h.last_seen_us, *ip))
                .collect();
            ages.sort_unstable();
            for (_, ip) in ages.iter().take(self.hosts.len() - MAX_HOSTS * 9 / 10) {
                self.hosts.remove(ip);
            }
        }
        if self.edges.len() > MAX_EDGES {
            let mut ages: Vec<(i64, (IpAddr, IpAddr))> = self
                .edges
                .iter()
                .map(|(k, e)| (e.last_seen_us, *k))
                .collect();
            ages.sort_unstable();
            for (_, k) in ages.iter().take(self.edges.len() - MAX_EDGES * 9 / 10) {
                self.edges.remove(k);
            }
        }
    }

    /// Hosts matching `q` (case-insensitive substring of IP, MAC or any name) and `source`,
    /// most recently seen first.
    pub fn list(&self, q: Option<&str>, source: Option<&str>, limit: usize) -> Vec<Host> {
        let q = q.map(str::to_lowercase);
        let mut out: Vec<&Host> = self
            .hosts
            .values()
            .filter(|h| source.is_none_or(|s| h.sources.contains(s)))
            .filter(|h| {
                q.as_deref().is_none_or(|q| {
                    h.ip.to_lowercase().contains(q)
                        || h.mac
                            .as_deref()
                            .is_some_and(|m| m.to_lowercase().contains(q))
                        || h.hostnames.iter().any(|n| n.to_lowercase().contains(q))
                })
            })
            .collect();
        out.sort_by(|a, b| b.last_seen_us.cmp(&a.last_seen_us).then(a.ip.cmp(&b.ip)));
        out.into_iter().take(limit).cloned().collect()
    }

    /// One host by IP.
    pub fn get(&self, ip: IpAddr) -> Option<Host> {
        self.hosts.get(&ip).cloned()
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True when no host was seen.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Recent events (EVE form), newest first, optionally only those touching `ip` and of
    /// `event_type`.
    pub fn events(
        &self,
        ip: Option<IpAddr>,
        event_type: Option<&str>,
        since_us: Option<i64>,
        limit: usize,
    ) -> Vec<serde_json::Value> {
        self.recent
            .iter()
            .rev()
            .filter(|e| since_us.is_none_or(|s| e.header.ts.0 >= s))
            .filter(|e| ip.is_none_or(|ip| e.header.key.src_ip == ip || e.header.key.dst_ip == ip))
            .filter(|e| event_type.is_none_or(|t| e.kind.event_type() == t))
            .take(limit)
            .map(to_eve)
            .collect()
    }

    /// Hosts by bytes sent plus received.
    pub fn top_talkers(&self, limit: usize) -> Vec<Host> {
        let mut v: Vec<&Host> = self.hosts.values().collect();
        v.sort_by_key(|h| std::cmp::Reverse(h.bytes_sent + h.bytes_received));
        v.into_iter().take(limit).cloned().collect()
    }

    /// Nodes and the heaviest edges between them.
    pub fn map(&self, max_edges: usize) -> serde_json::Value {
        let mut edges: Vec<(&(IpAddr, IpAddr), &Edge)> = self.edges.iter().collect();
        edges.sort_by_key(|e| std::cmp::Reverse(e.1.bytes));
        edges.truncate(max_edges);
        let mut nodes: BTreeSet<IpAddr> = BTreeSet::new();
        for ((a, b), _) in &edges {
            nodes.insert(*a);
            nodes.insert(*b);
        }
        serde_json::json!({
            "nodes": nodes.iter().map(|ip| {
                let h = self.hosts.get(ip);
                serde_json::json!({
                    "id": ip.to_string(),
                    "hostnames": h.map(|h| h.hostnames.iter().cloned().collect::<Vec<_>>()).unwrap_or_default(),
                    "mac": h.and_then(|h| h.mac.clone()),
                })
            }).collect::<Vec<_>>(),
            "edges": edges.iter().map(|((a, b), e)| serde_json::json!({
                "source": a.to_string(), "target": b.to_string(),
                "flows": e.flows, "bytes": e.bytes, "ports": e.ports,
            })).collect::<Vec<_>>(),
            "hosts_total": self.hosts.len(),
            "edges_total": self.edges.len(),
        })
    }
}

fn add_name(h: &mut Host, name: &str) {
    if h.hostnames.len() < MAX_NAMES && !name.is_empty() {
        h.hostnames.insert(name.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmonitor_common::*;

    fn ev(src: &str, dst: &str, kind: EventKind) -> Event {
        Event {
            header: EventHeader {
                ts: Timestamp::from_secs_micros(1_700_000_000, 0),
                flow_id: 1,
                key: FlowKey {
                    src_ip: src.parse().unwrap(),
                    src_port: 5000,
                    dst_ip: dst.parse().unwrap(),
                    dst_port: 443,
                    proto: 6,
                },
            },
            kind,
        }
    }

    #[test]
    fn learns_names_macs_and_traffic_and_searches_case_insensitively() {
        let mut inv = Inventory::default();
        inv.ingest(&[
            ev(
                "10.0.0.5",
                "10.0.0.1",
                EventKind::Dhcp(DhcpRecord {
                    kind: "reply".into(),
                    dhcp_type: "ack".into(),
                    id: 1,
                    client_mac: "AA:bb:cc:00:00:01".into(),
                    assigned_ip: Some("10.0.0.5".into()),
                    hostname: Some("Laptop-Ann".into()),
                    ..DhcpRecord::default()
                }),
            ),
            ev(
                "10.0.0.5",
                "93.184.216.34",
                EventKind::Flow(FlowRecord {
                    pkts_toserver: 3,
                    pkts_toclient: 2,
                    bytes_toserver: 300,
                    bytes_toclient: 900,
                    app_proto: Some("tls".into()),
                    ..Default::default()
                }),
            ),
            ev(
                "10.0.0.5",
                "93.184.216.34",
                EventKind::Tls(TlsHandshake {
                    sni: Some("www.example.com".into()),
                    ..Default::default()
                }),
            ),
        ]);
        let by_name = inv.list(Some("laptop-ANN"), None, 10);
        assert_eq!(by_name.len(), 1);
        assert_eq!(by_name[0].ip, "10.0.0.5");
        assert_eq!(inv.list(Some("aa:BB"), None, 10).len(), 1);
        assert_eq!(
            inv.list(Some("EXAMPLE.com"), None, 10)[0].ip,
            "93.184.216.34"
        );
        assert_eq!(inv.list(None, Some("dhcp"), 10).len(), 1);
        let server = inv.get("93.184.216.34".parse().unwrap()).unwrap();
        assert!(server.open_ports.contains(&443));
        assert_eq!(server.bytes_sent, 900);
        assert_eq!(
            inv.top_talkers(1)[0].bytes_sent + inv.top_talkers(1)[0].bytes_received,
            1200
        );
        let events = inv.events(
            Some("93.184.216.34".parse().unwrap()),
            Some("tls"),
            None,
            10,
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["tls"]["sni"], "www.example.com");
        assert_eq!(inv.map(10)["edges"][0]["bytes"], 1200);
    }
}
