//! The device book: every device, found by id or address, fed with events. Identity follows
//! the seed system's lessons: a device is keyed by its MAC once DHCP names one, and a device
//! first known by address alone is folded into the MAC-keyed record when a lease ties the two
//! (no duplicates). Only local addresses (`local_networks`) become devices; far ends are not.

use crate::device::Device;
use crate::learn::{Deviation, LearnSettings, Observed};
use crate::oui::OuiTable;
use crate::templates::{self, Fit, Template};
use ipnet::IpNet;
use netmonitor_common::{Event, EventKind};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

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
        DeviceBook {
            devices: HashMap::new(),
            by_ip: HashMap::new(),
            dirty: HashSet::new(),
            deleted: HashSet::new(),
            local,
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

    /// Every template: the built-in ones, then custom ones by id.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// A template by id.
    pub fn template(&self, id: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.id == id)
    }

    /// Adds or replaces a custom template (built-in ones cannot be replaced) and classifies
    /// every device again at the next save.
    pub fn put_template(&mut self, t: Template) -> Result<(), String> {
        t.validate()?;
        match self.templates.iter_mut().find(|x| x.id == t.id) {
            Some(x) if x.built_in => return Err(format!("{} is built in: clone it", t.id)),
            Some(x) => *x = t,
            None => self.templates.push(t),
        }
        self.templates_changed = true;
        self.dirty.extend(self.devices.keys().cloned());
        Ok(())
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

    /// Every template's fit for a device, best first.
    pub fn fits(&self, id: &str) -> Option<Vec<Fit>> {
        self.devices
            .get(id)
            .map(|d| templates::rank(&self.templates, d))
    }

    /// Assigns a template by hand (`None`: back to automatic classification).
    pub fn assign(&mut self, id: &str, template: Option<&str>) -> Result<&Device, String> {
        if let Some(t) = template {
            if self.template(t).is_none() {
                return Err(format!(
                    "no template {t:?} (get_device_templates lists them)"
                ));
            }
        }
        let d = self
            .devices
            .get_mut(id)
            .ok_or_else(|| format!("no device {id:?}"))?;
        match template {
            Some(t) => {
                d.template = Some(t.to_owned());
                d.template_confidence = 1.0;
                d.template_hints = vec!["assigned by hand".into()];
                d.template_manual = true;
            }
            None => {
                d.template_manual = false;
                d.template = None;
            }
        }
        self.dirty.insert(id.to_owned());
        self.classify(id);
        Ok(&self.devices[id])
    }

    /// Sets or clears a hand-set criticality.
    pub fn set_criticality(&mut self, id: &str, level: Option<&str>) -> Result<(), String> {
        if let Some(l) = level {
            if !templates::CRITICALITIES.contains(&l) {
                return Err(format!(
                    "criticality: one of {}",
                    templates::CRITICALITIES.join(", ")
                ));
            }
        }
        let d = self
            .devices
            .get_mut(id)
            .ok_or_else(|| format!("no device {id:?}"))?;
        d.criticality = level.map(str::to_owned);
        self.dirty.insert(id.to_owned());
        Ok(())
    }

    /// Marks a device confirmed by someone at `now` (microseconds).
    pub fn touch(&mut self, id: &str, now: i64) -> Option<&Device> {
        let d = self.devices.get_mut(id)?;
        d.touched_us = Some(now);
        self.dirty.insert(id.to_owned());
        Some(d)
    }

    /// The criticality in force for a device: by hand, else its template's, else medium.
    pub fn criticality(&self, d: &Device) -> String {
        d.criticality
            .clone()
            .or_else(|| {
                d.template
                    .as_deref()
                    .and_then(|t| self.template(t))
                    .map(|t| t.criticality.clone())
            })
            .unwrap_or_else(|| "medium".into())
    }

    /// Assigns the best-fitting template unless one was assigned by hand.
    fn classify(&mut self, id: &str) {
        let Some(d) = self.devices.get(id) else {
            return;
        };
        if d.template_manual {
            return;
        }
        let best = templates::rank(&self.templates, d)
            .into_iter()
            .next()
            .filter(|f| f.confidence >= templates::MIN_CONFIDENCE);
        if let Some(d) = self.devices.get_mut(id) {
            match best {
                Some(f) => {
                    d.template = Some(f.template);
                    d.template_confidence = f.confidence;
                    d.template_hints = f.hints;
                }
                None => {
                    d.template = None;
                    d.template_confidence = 0.0;
                    d.template_hints = Vec::new();
                }
            }
        }
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
        for d in devices {
            for ip in &d.ips {
                if let Ok(a) = ip.parse() {
                    self.by_ip.insert(a, d.id.clone());
                }
            }
            self.devices.insert(d.id.clone(), d);
        }
    }

    fn is_local(&self, a: IpAddr) -> bool {
        !a.is_unspecified()
            && !a.is_multicast()
            && a != IpAddr::V4(std::net::Ipv4Addr::BROADCAST)
            && self.local.iter().any(|n| n.contains(&a))
    }

    /// The device using `ip`, created (keyed by address) if it is local and unknown.
    fn at(&mut self, ip: IpAddr, ts: i64) -> Option<&mut Device> {
        if !self.is_local(ip) {
            return None;
        }
        let id = match self.by_ip.get(&ip) {
            Some(id) if self.devices.contains_key(id) => id.clone(),
            _ => {
                let id = format!("ip:{ip}");
                self.by_ip.insert(ip, id.clone());
                id
            }
        };
        self.dirty.insert(id.clone());
        let d = self.devices.entry(id.clone()).or_insert_with(|| {
            let mut d = Device::new(id, ts);
            d.add_ip(&ip.to_string());
            d
        });
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
                let port = format!(
                    "{}/{}",
                    netmonitor_common::proto_name(h.key.proto).to_ascii_lowercase(),
                    h.key.dst_port
                );
                let (src_s, dst_s) = (src.to_string(), dst.to_string());
                let learning = self.learning;
                let mut found = Vec::new();
                if let Some(d) = self.at(src, ts) {
                    d.bytes_out += f.bytes_toserver;
                    d.bytes_in += f.bytes_toclient;
                    d.flows += 1;
                    if let Some(p) = &proto {
                        *d.protocols.entry(p.clone()).or_default() += 1;
                    }
                    if let Some(s) = &learning {
                        let o = Observed {
                            ts,
                            service: None,
                            client_port: Some(&port),
                            protocol: proto.as_deref(),
                            peer: Some(&dst_s),
                            bytes_out: f.bytes_toserver,
                        };
                        found.push((d.id.clone(), d.baseline.observe(&o, s)));
                    }
                }
                if let Some(d) = self.at(dst, ts) {
                    d.bytes_in += f.bytes_toserver;
                    d.bytes_out += f.bytes_toclient;
                    d.flows += 1;
                    if answered {
                        Device::add_to(&mut d.services, port.clone());
                        if let Some(s) = &learning {
                            let o = Observed {
                                ts,
                                service: Some(&port),
                                client_port: None,
                                protocol: proto.as_deref(),
                                peer: Some(&src_s),
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
                if let Some(n) = &r.hostname {
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
                let source = if h.key.src_port == 5353 || h.key.dst_port == 5353 {
                    "mdns"
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
        let text = q.q.as_deref().map(str::to_ascii_lowercase);
        let vendor = q.vendor.as_deref().map(str::to_ascii_lowercase);
        let mut v: Vec<&Device> = self
            .devices
            .values()
            .filter(|d| text.as_deref().is_none_or(|t| d.matches(t)))
            .filter(|d| {
                vendor.as_deref().is_none_or(|t| {
                    d.vendor
                        .as_deref()
                        .is_some_and(|v| v.to_ascii_lowercase().contains(t))
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
        v.sort_by(|a, b| {
            b.last_seen_us
                .cmp(&a.last_seen_us)
                .then_with(|| a.id.cmp(&b.id))
        });
        v.truncate(q.limit);
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
