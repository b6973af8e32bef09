//! The device book: every device, found by id or address, fed with events. Identity follows
//! the seed system's lessons: a device is keyed by its MAC once DHCP names one, and a device
//! first known by address alone is folded into the MAC-keyed record when a lease ties the two
//! (no duplicates). Only local addresses (`local_networks`) become devices; far ends are not.

use crate::device::Device;
use crate::learn::{Deviation, LearnSettings, Observed};
use crate::oui::OuiTable;
use crate::short::{proto_label, Short};
use crate::templates::{self, Template};
use ipnet::IpNet;
use netmonitor_common::{Event, EventKind};
use std::fmt::Write;
use std::net::IpAddr;

mod classify;

/// Maps keyed by addresses off the wire and by device ids: a seeded fast hash (every flow end
/// looks up both of its addresses).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Devices kept at most; past it the least recently seen go first.
pub const MAX_DEVICES: usize = 200_000;

/// What changed since the last save: devices to write, ids to delete (folded into another).
#[derive(Debug, Default)]
pub struct Changes {
    /// Devices new or changed.
    pub upserts: Vec<Device>,
    /// Ids that no longer exist.
    pub deletes: Vec<String>,
    /// Every custom template, when one changed.
    pub templates: Vec<Template>,
}

impl Changes {
    /// Nothing to save.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty() && self.templates.is_empty()
    }
}

/// The book.
pub struct DeviceBook {
    devices: HashMap<String, Device>,
    by_ip: HashMap<IpAddr, String>,
    dirty: HashSet<String>,
    deleted: HashSet<String>,
    local: Vec<IpNet>,
    /// The IPv4 ones of `local` as (network, mask), checked without ipnet's arithmetic.
    local_v4: Vec<(u32, u32)>,
    oui: OuiTable,
    templates: Vec<Template>,
    templates_changed: bool,
    learning: Option<LearnSettings>,
    deviation_alerts: bool,
    /// Newest capture time seen.
    now_us: i64,
    /// Deviation alerts not yet handed on.
    alerts: Vec<Event>,
}

/// Signature id of the deviation alert.
pub const DEVIATION_SID: u32 = 9_600_001;

/// A search over the book.
#[derive(Debug, Default, Clone)]
pub struct DeviceQuery {
    /// Case-insensitive substring of id, MAC, vendor, address or name.
    pub q: Option<String>,
    /// Case-insensitive substring of the vendor.
    pub vendor: Option<String>,
    /// Seen at or after (microseconds).
    pub since_us: Option<i64>,
    /// Assigned this template.
    pub template: Option<String>,
    /// Assigned a template of this category (`unclassified`: none).
    pub category: Option<String>,
    /// Most devices returned.
    pub limit: usize,
}

impl DeviceBook {
    /// An empty book that treats `local` as ours.
    pub fn new(local: Vec<IpNet>, oui: OuiTable) -> Self {
        let local_v4 = local
            .iter()
            .filter_map(|n| match n {
                IpNet::V4(n) => Some((u32::from(n.network()), u32::from(n.netmask()))),
                IpNet::V6(_) => None,
            })
            .collect();
        DeviceBook {
            devices: HashMap::default(),
            by_ip: HashMap::default(),
            dirty: HashSet::default(),
            deleted: HashSet::default(),
            local,
            local_v4,
            oui,
            templates: templates::built_ins(),
            templates_changed: false,
            learning: None,
            deviation_alerts: false,
            now_us: 0,
            alerts: Vec::new(),
        }
    }

    /// Learns each device's baseline with these settings, and (with `alerts`) reports what
    /// steps outside it.
    pub fn with_learning(mut self, s: LearnSettings, alerts: bool) -> Self {
        self.learning = Some(s);
        self.deviation_alerts = alerts;
        self
    }

    /// The learning settings in force.
    pub fn learning(&self) -> Option<LearnSettings> {
        self.learning
    }

    /// Newest capture time seen (microseconds).
    pub fn now_us(&self) -> i64 {
        self.now_us
    }

    /// Deviation alerts raised since the last call.
    pub fn take_alerts(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.alerts)
    }

    /// Turns what a device did outside its baseline into alerts. New services are kept in
    /// the device's deviations but not alerted here: the behaviour actor's `new_service`
    /// already raises them.
    fn deviated(&mut self, id: &str, e: &Event, found: Vec<Deviation>) {
        if !self.deviation_alerts {
            return;
        }
        let Some(d) = self.devices.get(id) else {
            return;
        };
        for dev in found.into_iter().filter(|x| x.kind != "new_service") {
            let mut evidence = dev.evidence;
            if let Some(m) = evidence.as_object_mut() {
                m.insert("device".into(), serde_json::json!(d.id));
                m.insert("ips".into(), serde_json::json!(d.ips));
                m.insert("template".into(), serde_json::json!(d.template));
                m.insert(
                    "learned_at".into(),
                    serde_json::json!(d
                        .baseline
                        .learned_us
                        .map(|t| netmonitor_common::Timestamp(t).to_eve())),
                );
            }
            self.alerts.push(Event {
                header: e.header.clone(),
                kind: EventKind::Alert(netmonitor_common::Alert {
                    signature_id: DEVIATION_SID,
                    signature: format!(
                        "NetMonitor device behaviour deviation: {} {}",
                        dev.kind.replace('_', " "),
                        dev.value
                    ),
                    category: "Potentially Bad Traffic".into(),
                    severity: 2,
                    threat_type: "device_behavior_deviation".into(),
                    mitre: Vec::new(),
                    evidence,
                }),
            });
        }
    }

    /// Puts back custom templates read from the store.
    pub fn restore_templates(&mut self, custom: Vec<Template>) {
        for t in custom {
            if t.validate().is_ok() && !t.built_in && self.template(&t.id).is_none() {
                self.templates.push(t);
            }
        }
    }

    /// Finds a device by id (`mac:…`, `ip:…`), bare MAC or address.
    pub fn resolve(&self, key: &str) -> Option<&str> {
        let key = key.trim();
        if let Some(d) = self.devices.get(key) {
            return Some(&d.id);
        }
        if let Ok(ip) = key.parse::<IpAddr>() {
            return self.by_ip.get(&ip).map(String::as_str);
        }
        let mac = format!("mac:{}", key.to_ascii_lowercase().replace('-', ":"));
        self.devices.get(&mac).map(|d| d.id.as_str())
    }

    /// Marks a device confirmed by someone at `now` (microseconds).
    pub fn touch(&mut self, id: &str, now: i64) -> Option<&Device> {
        let d = self.devices.get_mut(id)?;
        d.touched_us = Some(now);
        self.dirty.insert(id.to_owned());
        Some(d)
    }

    /// Every device, in no order (for counting; [`DeviceBook::search`] sorts).
    pub fn iter(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// Devices held.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Holds none.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// The MAC vendor table in use.
    pub fn oui(&self) -> &OuiTable {
        &self.oui
    }

    /// Puts back devices read from the store (not marked changed).
    pub fn restore(&mut self, devices: Vec<Device>) {
        for mut d in devices {
            d.refresh_search_text();
            self.now_us = self.now_us.max(d.last_seen_us);
            for ip in &d.ips {
                if let Ok(a) = ip.parse() {
                    self.by_ip.insert(a, d.id.clone());
                }
            }
            self.devices.insert(d.id.clone(), d);
        }
    }

    fn is_local(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(v4) => {
                let x = u32::from(v4);
                !v4.is_unspecified()
                    && !v4.is_multicast()
                    && !v4.is_broadcast()
                    && self.local_v4.iter().any(|(net, mask)| x & mask == *net)
            }
            IpAddr::V6(v6) => {
                !v6.is_unspecified()
                    && !v6.is_multicast()
                    && self.local.iter().any(|n| n.contains(&a))
            }
        }
    }

    /// The device using `ip`, created (keyed by address) if it is local and unknown.
    fn at(&mut self, ip: IpAddr, ts: i64) -> Option<&mut Device> {
        self.device_at(ip, ts, true)
    }

    /// The device using `ip`, if it is known.
    fn known_at(&mut self, ip: IpAddr, ts: i64) -> Option<&mut Device> {
        self.device_at(ip, ts, false)
    }

    /// The device using `ip`; with `create`, made (keyed by address) if local and unknown.
    /// Called for every flow end: no allocation when the device is known and already changed.
    fn device_at(&mut self, ip: IpAddr, ts: i64, create: bool) -> Option<&mut Device> {
        let known = self
            .by_ip
            .get(&ip)
            .is_some_and(|id| self.devices.contains_key(id));
        if !known {
            if !(create && self.is_local(ip)) {
                return None;
            }
            let id = format!("ip:{ip}");
            self.by_ip.insert(ip, id.clone());
            let mut d = Device::new(id.clone(), ts);
            d.add_ip(&ip.to_string());
            self.devices.insert(id, d);
        }
        let id = self.by_ip.get(&ip)?;
        if !self.dirty.contains(id) {
            self.dirty.insert(id.clone());
        }
        let d = self.devices.get_mut(id)?;
        d.seen(ts);
        Some(d)
    }

    /// The device with `mac`, using `ip` when given: a device known only by that address is
    /// folded into it.
    fn with_mac(&mut self, mac: &str, ip: Option<IpAddr>, ts: i64) -> &mut Device {
        let mac = mac.to_ascii_lowercase();
        let id = format!("mac:{mac}");
        if !self.devices.contains_key(&id) {
            let mut d = Device::new(id.clone(), ts);
            d.vendor = self.oui.vendor(&mac).map(str::to_owned);
            d.mac = Some(mac);
            self.devices.insert(id.clone(), d);
        }
        if let Some(ip) = ip.filter(|a| self.is_local(*a)) {
            let previous = self.by_ip.insert(ip, id.clone());
            if let Some(old) = previous.filter(|o| *o != id && o.starts_with("ip:")) {
                if let Some(other) = self.devices.remove(&old) {
                    self.dirty.remove(&old);
                    self.deleted.insert(old);
                    if let Some(d) = self.devices.get_mut(&id) {
                        d.absorb(other);
                    }
                }
            }
            if let Some(d) = self.devices.get_mut(&id) {
                d.add_ip(&ip.to_string());
            }
        }
        self.dirty.insert(id.clone());
        let d = self.devices.get_mut(&id).expect("inserted above");
        d.seen(ts);
        d
    }

    /// Folds a batch of events in.
    pub fn ingest(&mut self, events: &[Event]) {
        for e in events {
            self.observe(e);
        }
        if self.devices.len() > MAX_DEVICES {
            self.evict();
        }
    }

    fn observe(&mut self, e: &Event) {
        let h = &e.header;
        let ts = h.ts.0;
        self.now_us = self.now_us.max(ts);
        let (src, dst) = (h.key.src_ip, h.key.dst_ip);
        match &e.kind {
            EventKind::Flow(f) => {
                let proto = f.app_proto.clone();
                let answered = f.pkts_toclient > 0 && f.payload_toclient > 0;
                // An unanswered flow (a probe, a spoofed SYN) is no evidence a device exists:
                // it only adds to devices already known.
                let heard = f.pkts_toclient > 0;
                let port = || {
                    let mut s = Short::default();
                    let _ = s.write_str(&proto_label(h.key.proto));
                    s.push_byte(b'/');
                    s.push_u32(u32::from(h.key.dst_port));
                    s
                };
                let learning = self.learning;
                let mut found = Vec::new();
                let client = if heard {
                    self.at(src, ts)
                } else {
                    self.known_at(src, ts)
                };
                if let Some(d) = client {
                    d.bytes_out += f.bytes_toserver;
                    d.bytes_in += f.bytes_toclient;
                    d.flows += 1;
                    if let Some(p) = &proto {
                        *d.protocols.entry(p.clone()).or_default() += 1;
                    }
                    if let Some(s) = &learning {
                        let (port, peer) = (port(), Short::addr(dst));
                        let o = Observed {
                            ts,
                            service: None,
                            client_port: Some(port.as_str()),
                            protocol: proto.as_deref(),
                            peer: Some(peer.as_str()),
                            bytes_out: f.bytes_toserver,
                        };
                        found.push((d.id.clone(), d.baseline.observe(&o, s)));
                    }
                }
                let server = if heard {
                    self.at(dst, ts)
                } else {
                    self.known_at(dst, ts)
                };
                if let Some(d) = server {
                    d.bytes_in += f.bytes_toserver;
                    d.bytes_out += f.bytes_toclient;
                    d.flows += 1;
                    if answered {
                        let port = port();
                        if !d.services.contains(port.as_str()) {
                            Device::add_to(&mut d.services, port.as_str().to_owned());
                        }
                        if let Some(s) = &learning {
                            let peer = Short::addr(src);
                            let o = Observed {
                                ts,
                                service: Some(port.as_str()),
                                client_port: None,
                                protocol: proto.as_deref(),
                                peer: Some(peer.as_str()),
                                bytes_out: f.bytes_toclient,
                            };
                            found.push((d.id.clone(), d.baseline.observe(&o, s)));
                        }
                    }
                }
                for (id, devs) in found {
                    if !devs.is_empty() {
                        self.deviated(&id, e, devs);
                    }
                }
            }
            EventKind::Dhcp(r) => {
                let ip = r
                    .assigned_ip
                    .as_deref()
                    .or(r.requested_ip.as_deref())
                    .and_then(|s| s.parse().ok())
                    .or_else(|| self.is_local(src).then_some(src));
                if r.client_mac.len() != 17 {
                    return;
                }
                let d = self.with_mac(&r.client_mac, ip, ts);
                for n in r.hostname.iter().chain(r.fqdn.iter()) {
                    d.add_name(n, "dhcp");
                }
                if r.kind == "request" {
                    if let Some(fp) = r.fingerprint() {
                        d.dhcp_fingerprint = Some(fp);
                    }
                    if let Some(v) = &r.vendor_class {
                        d.dhcp_vendor_class = Some(v.clone());
                    }
                }
            }
            EventKind::Dns(r) if r.kind == "answer" => {
                let on = |p: u16| h.key.src_port == p || h.key.dst_port == p;
                let source = if on(5353) {
                    "mdns"
                } else if on(5355) {
                    "llmnr"
                } else {
                    "dns"
                };
                match r.rrtype.as_str() {
                    "A" | "AAAA" => {
                        for a in &r.answers {
                            if let Ok(ip) = a.parse::<IpAddr>() {
                                if let Some(d) = self.at(ip, ts) {
                                    d.add_name(&r.rrname, source);
                                }
                            }
                        }
                    }
                    "PTR" => {
                        if let (Some(ip), Some(name)) = (ptr_address(&r.rrname), r.answers.first())
                        {
                            if let Some(d) = self.at(ip, ts) {
                                d.add_name(name, "ptr");
                            }
                        }
                    }
                    _ => {}
                }
            }
            EventKind::Neighbor(n) => {
                let ip = n.management_ip.filter(|a| self.is_local(*a));
                if n.mac.len() != 17 {
                    return;
                }
                let d = self.with_mac(&n.mac, ip, ts);
                if let Some(name) = &n.name {
                    d.add_name(name, &n.protocol);
                }
                for c in &n.capabilities {
                    Device::add_to(&mut d.capabilities, c.clone());
                }
                if let Some(p) = n.platform.as_ref().or(n.description.as_ref()) {
                    d.platform = Some(p.clone());
                }
            }
            EventKind::HostName(r) => {
                if let Some(d) = self.at(r.ip, ts) {
                    d.add_name(&r.name, &r.source);
                }
            }
            EventKind::Arp(r) => {
                // The sender says which MAC holds its address; a reply also names the asker.
                let mut pairs = vec![(r.sender_mac.as_str(), src)];
                if r.op == 2 {
                    pairs.push((r.target_mac.as_str(), dst));
                }
                for (mac, ip) in pairs {
                    let unusable = mac.len() != 17
                        || mac == "00:00:00:00:00:00"
                        || mac == "ff:ff:ff:ff:ff:ff"
                        || ip.is_unspecified();
                    if !unusable && self.is_local(ip) {
                        self.with_mac(mac, Some(ip), ts);
                    }
                }
            }
            EventKind::Tls(t) => {
                let fp = t
                    .ja4
                    .clone()
                    .or_else(|| t.ja3.as_ref().map(|j| j.hash.clone()));
                if let (Some(fp), Some(d)) = (fp, self.at(src, ts)) {
                    Device::add_to(&mut d.tls_fingerprints, fp);
                }
            }
            _ => {}
        }
    }

    /// Drops the least recently seen tenth.
    fn evict(&mut self) {
        let mut seen: Vec<i64> = self.devices.values().map(|d| d.last_seen_us).collect();
        let k = seen.len() / 10;
        let (_, cut, _) = seen.select_nth_unstable(k);
        let cut = *cut;
        let gone: Vec<String> = self
            .devices
            .iter()
            .filter(|(_, d)| d.last_seen_us <= cut)
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.devices.remove(&id);
            self.dirty.remove(&id);
        }
        let devices = &self.devices;
        self.by_ip.retain(|_, id| devices.contains_key(id));
    }

    /// What changed since the last call (classified first, so a device is judged once per
    /// save however many events it had).
    pub fn take_changes(&mut self) -> Changes {
        let ids: Vec<String> = self.dirty.drain().collect();
        for id in &ids {
            self.classify(id);
            if let Some(d) = self.devices.get_mut(id) {
                d.refresh_search_text();
            }
        }
        let upserts = ids
            .iter()
            .filter_map(|id| self.devices.get(id).cloned())
            .collect();
        let templates = if std::mem::take(&mut self.templates_changed) {
            self.templates
                .iter()
                .filter(|t| !t.built_in)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Changes {
            upserts,
            deletes: self.deleted.drain().collect(),
            templates,
        }
    }

    /// Puts changes that could not be saved back, to be saved next time.
    pub fn unsaved(&mut self, c: Changes) {
        self.dirty.extend(c.upserts.into_iter().map(|d| d.id));
        self.deleted.extend(c.deletes);
        self.templates_changed |= !c.templates.is_empty();
    }

    /// The device using `ip`.
    pub fn by_ip(&self, ip: IpAddr) -> Option<&Device> {
        self.by_ip.get(&ip).and_then(|id| self.devices.get(id))
    }

    /// A device by id.
    pub fn get(&self, id: &str) -> Option<&Device> {
        self.devices.get(id)
    }

    /// Devices matching `q`, most recently seen first.
    pub fn search(&self, q: &DeviceQuery) -> Vec<&Device> {
        let text = q.q.as_deref().map(crate::device::Search::new);
        let vendor = q.vendor.as_deref().map(str::to_ascii_lowercase);
        let mut v: Vec<&Device> = self
            .devices
            .values()
            .filter(|d| {
                // Changed since the last save: its kept text may be behind.
                text.as_ref().is_none_or(|t| {
                    if self.dirty.contains(&d.id) {
                        d.matches(t)
                    } else {
                        d.matches_text(t)
                    }
                })
            })
            .filter(|d| {
                vendor.as_deref().is_none_or(|t| {
                    d.vendor
                        .as_deref()
                        .is_some_and(|v| crate::device::contains_ignore_case(v, t))
                })
            })
            .filter(|d| q.since_us.is_none_or(|s| d.last_seen_us >= s))
            .filter(|d| {
                q.template
                    .as_deref()
                    .is_none_or(|t| d.template.as_deref() == Some(t))
            })
            .filter(|d| {
                q.category.as_deref().is_none_or(|c| {
                    match d.template.as_deref().and_then(|t| self.template(t)) {
                        Some(t) => t.category == c,
                        None => c == "unclassified",
                    }
                })
            })
            .collect();
        let newest_first = |a: &&Device, b: &&Device| {
            b.last_seen_us
                .cmp(&a.last_seen_us)
                .then_with(|| a.id.cmp(&b.id))
        };
        if q.limit < v.len() {
            v.select_nth_unstable_by(q.limit, newest_first);
            v.truncate(q.limit);
        }
        v.sort_by(newest_first);
        v
    }
}

/// The address a reverse name stands for (`5.0.0.10.in-addr.arpa` → 10.0.0.5).
fn ptr_address(name: &str) -> Option<IpAddr> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    if let Some(v4) = n.strip_suffix(".in-addr.arpa") {
        let mut parts: Vec<&str> = v4.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        parts.reverse();
        return parts.join(".").parse().ok();
    }
    let v6 = n.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = v6.split('.').collect();
    if nibbles.len() != 32 || nibbles.iter().any(|x| x.len() != 1) {
        return None;
    }
    let hex: String = nibbles.iter().rev().copied().collect();
    let groups: Vec<&str> = (0..8).map(|i| &hex[i * 4..i * 4 + 4]).collect();
    groups.join(":").parse().ok()
}
