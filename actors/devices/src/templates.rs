//! Device templates and classification. A template says what a kind of device looks like —
//! the MAC vendors that make it, host-name patterns, DHCP vendor classes and fingerprints —
//! and what it is expected to do: the services it answers, its protocols, its peers. The
//! classifier scores every template against what a device showed and assigns the best with a
//! confidence and the hints that led to it; an assignment made by hand always wins.

use crate::device::Device;
use serde::{Deserialize, Serialize};

/// Template categories.
pub const CATEGORIES: [&str; 5] = ["iot", "server", "endpoint", "network", "other"];
/// Criticality levels (risk scoring reads them).
pub const CRITICALITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// Least confidence for an automatic assignment.
pub const MIN_CONFIDENCE: f64 = 0.4;

/// A kind of device.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Template {
    /// Stable id (`printer`, or a slug of a custom template's name).
    pub id: String,
    /// Display name.
    pub name: String,
    /// One of [`CATEGORIES`].
    pub category: String,
    /// What it is.
    pub description: String,
    /// Shipped with NetMonitor (cannot be changed; clone it instead).
    pub built_in: bool,
    /// Criticality of devices of this kind (one of [`CRITICALITIES`]).
    pub criticality: String,
    /// Services it answers (`tcp/631`).
    pub services: Vec<String>,
    /// Application protocols it speaks.
    pub protocols: Vec<String>,
    /// Addresses or networks it talks to (empty: any).
    pub peers: Vec<String>,
    /// Substrings of the MAC vendor (case-insensitive).
    pub vendors: Vec<String>,
    /// Substrings of a host name (case-insensitive).
    pub hostname_patterns: Vec<String>,
    /// Substrings of the DHCP vendor class.
    pub dhcp_vendor_classes: Vec<String>,
    /// DHCP fingerprints (option 55 lists) seen on this kind.
    pub dhcp_fingerprints: Vec<String>,
    /// LLDP/CDP capabilities that mark this kind (`router`, `telephone`, ...).
    pub capabilities: Vec<String>,
    /// The device it was made from, if any.
    pub created_from: Option<String>,
}

/// How well one template fits a device.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Fit {
    /// Template id.
    pub template: String,
    /// 0–1.
    pub confidence: f64,
    /// What matched.
    pub hints: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
fn t(
    id: &str,
    name: &str,
    category: &str,
    criticality: &str,
    description: &str,
    services: &[&str],
    protocols: &[&str],
    vendors: &[&str],
    hostname_patterns: &[&str],
    dhcp_vendor_classes: &[&str],
) -> Template {
    let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
    Template {
        id: id.into(),
        name: name.into(),
        category: category.into(),
        description: description.into(),
        built_in: true,
        criticality: criticality.into(),
        services: v(services),
        protocols: v(protocols),
        peers: Vec::new(),
        vendors: v(vendors),
        hostname_patterns: v(hostname_patterns),
        dhcp_vendor_classes: v(dhcp_vendor_classes),
        dhcp_fingerprints: Vec::new(),
        capabilities: Vec::new(),
        created_from: None,
    }
}

/// The templates shipped with NetMonitor.
pub fn built_ins() -> Vec<Template> {
    let caps = |mut t: Template, c: &[&str]| {
        t.capabilities = c.iter().map(|x| (*x).to_owned()).collect();
        t
    };
    let mut all = vec![
        t(
            "printer",
            "Printer",
            "iot",
            "medium",
            "Network printer or multifunction device (IPP, JetDirect, LPD)",
            &["tcp/631", "tcp/9100", "tcp/515"],
            &["http", "ipp"],
            &[
                "xerox",
                "hewlett",
                "hp inc",
                "brother",
                "canon",
                "epson",
                "seiko epson",
                "lexmark",
                "kyocera",
                "ricoh",
                "konica",
                "sharp",
            ],
            &[
                "printer",
                "prn",
                "mfp",
                "laserjet",
                "officejet",
                "xerox",
                "brother",
                "epson",
            ],
            &["hewlett-packard jetdirect", "xerox"],
        ),
        t(
            "ip_camera",
            "IP camera",
            "iot",
            "medium",
            "Network camera or video recorder (RTSP, ONVIF)",
            &["tcp/554", "tcp/8000", "tcp/37777"],
            &["rtsp", "http"],
            &[
                "hikvision",
                "dahua",
                "axis communications",
                "hanwha",
                "amcrest",
                "reolink",
                "vivotek",
                "uniview",
            ],
            &["cam", "ipc", "nvr", "dvr", "camera"],
            &[],
        ),
        t(
            "workstation",
            "Workstation",
            "endpoint",
            "medium",
            "Desktop or laptop: a TLS client that serves little",
            &[],
            &["tls", "dns", "http"],
            &[
                "dell",
                "lenovo",
                "intel corporate",
                "apple",
                "microsoft",
                "asustek",
                "micro-star",
                "giga-byte",
            ],
            &[
                "desktop-",
                "laptop",
                "pc-",
                "ws-",
                "macbook",
                "imac",
                "workstation",
                "nb-",
            ],
            &["msft 5.0", "msft"],
        ),
        t(
            "domain_controller",
            "Domain controller",
            "server",
            "critical",
            "Active Directory domain controller (Kerberos, LDAP, SMB, DNS)",
            &[
                "tcp/88", "udp/88", "tcp/389", "tcp/636", "tcp/445", "tcp/3268",
            ],
            &["krb5", "ldap", "smb", "dns"],
            &[],
            &["dc", "ad-", "addc", "pdc"],
            &[],
        ),
        t(
            "dns_server",
            "DNS server",
            "server",
            "high",
            "Resolver or authoritative DNS server",
            &["udp/53", "tcp/53"],
            &["dns"],
            &[],
            &["dns", "ns1", "ns2", "resolver"],
            &[],
        ),
        t(
            "nas",
            "NAS",
            "server",
            "high",
            "Network-attached storage (SMB, NFS, AFP, vendor web UI)",
            &["tcp/445", "tcp/2049", "tcp/548", "tcp/5000", "tcp/5001"],
            &["smb", "nfs"],
            &[
                "synology",
                "qnap",
                "western digital",
                "buffalo",
                "asustor",
                "drobo",
            ],
            &["nas", "diskstation", "storage", "fileserver"],
            &[],
        ),
        t(
            "router_ap",
            "Router / access point",
            "network",
            "high",
            "Router, gateway, switch or wireless access point",
            &["udp/67", "udp/53", "tcp/22", "tcp/80", "tcp/443", "udp/161"],
            &["dhcp", "dns"],
            &[
                "ubiquiti",
                "cisco",
                "juniper",
                "mikrotik",
                "routerboard",
                "tp-link",
                "netgear",
                "aruba",
                "ruckus",
                "fortinet",
                "zyxel",
                "arris",
            ],
            &[
                "router", "gateway", "gw", "ap-", "switch", "fw-", "firewall",
            ],
            &[],
        ),
        t(
            "voip_phone",
            "VoIP phone",
            "iot",
            "low",
            "Desk phone or SIP adapter",
            &["udp/5060", "tcp/5060", "tcp/5061"],
            &["sip"],
            &[
                "polycom",
                "yealink",
                "grandstream",
                "snom",
                "avaya",
                "mitel",
                "cisco spa",
            ],
            &["sip", "phone", "voip", "sep"],
            &[],
        ),
        t(
            "smart_tv",
            "Smart TV / streamer",
            "iot",
            "low",
            "Television or media streamer (Cast, AirPlay, Roku, DLNA)",
            &["tcp/8008", "tcp/8009", "tcp/7000", "tcp/8060", "tcp/9080"],
            &["http"],
            &[
                "samsung",
                "lg electronics",
                "sony",
                "roku",
                "vizio",
                "tcl",
                "hisense",
                "philips",
            ],
            &["tv", "roku", "chromecast", "bravia", "appletv", "firetv"],
            &[],
        ),
    ];
    for t in &mut all {
        *t = match t.id.as_str() {
            "router_ap" => caps(t.clone(), &["router", "bridge", "wlan-ap"]),
            "voip_phone" => caps(t.clone(), &["telephone"]),
            _ => t.clone(),
        };
    }
    all
}

impl Template {
    /// How well this template fits `d`.
    pub fn fit(&self, d: &Device) -> Fit {
        let mut score = 0.0;
        let mut hints = Vec::new();
        let lower = |s: &str| s.to_ascii_lowercase();
        if let Some(v) = &d.vendor {
            if let Some(p) = self.vendors.iter().find(|p| lower(v).contains(&lower(p))) {
                score += 0.35;
                hints.push(format!("MAC vendor {v} (matches \"{p}\")"));
            }
        }
        if let Some(vc) = &d.dhcp_vendor_class {
            if let Some(p) = self
                .dhcp_vendor_classes
                .iter()
                .find(|p| lower(vc).contains(&lower(p)))
            {
                score += 0.25;
                hints.push(format!("DHCP vendor class \"{vc}\" (matches \"{p}\")"));
            }
        }
        if let Some(c) = self
            .capabilities
            .iter()
            .find(|c| d.capabilities.contains(*c))
        {
            score += 0.4;
            hints.push(format!("announces itself as a {c} (LLDP/CDP)"));
        }
        if let Some(fp) = &d.dhcp_fingerprint {
            if self.dhcp_fingerprints.iter().any(|f| f == fp) {
                score += 0.3;
                hints.push(format!("DHCP fingerprint {fp}"));
            }
        }
        if let Some((name, p)) = d.hostnames.keys().find_map(|n| {
            self.hostname_patterns
                .iter()
                .find(|p| n.contains(&lower(p)))
                .map(|p| (n, p))
        }) {
            score += 0.25;
            hints.push(format!("host name {name} (matches \"{p}\")"));
        }
        let answered: Vec<&String> = self
            .services
            .iter()
            .filter(|s| d.services.contains(*s))
            .collect();
        if !answered.is_empty() {
            score += 0.2 * answered.len().min(2) as f64;
            let list: Vec<&str> = answered.iter().map(|s| s.as_str()).collect();
            hints.push(format!("answers {}", list.join(", ")));
        }
        if self.services.is_empty()
            && d.services.is_empty()
            && !d.tls_fingerprints.is_empty()
            && score > 0.0
        {
            score += 0.15;
            hints.push("a TLS client that answers no service".into());
        }
        Fit {
            template: self.id.clone(),
            confidence: (score.min(1.0) * 100.0).round() / 100.0,
            hints,
        }
    }

    /// A template describing what `d` does (for `create_template_from_device`).
    pub fn from_device(id: &str, name: &str, category: &str, d: &Device) -> Template {
        Template {
            id: id.into(),
            name: name.into(),
            category: category.into(),
            description: format!("Made from device {}", d.id),
            built_in: false,
            criticality: "medium".into(),
            services: d.services.iter().cloned().collect(),
            protocols: d.protocols.keys().cloned().collect(),
            peers: Vec::new(),
            vendors: d.vendor.iter().cloned().collect(),
            hostname_patterns: Vec::new(),
            dhcp_vendor_classes: d.dhcp_vendor_class.iter().cloned().collect(),
            dhcp_fingerprints: d.dhcp_fingerprint.iter().cloned().collect(),
            capabilities: d.capabilities.iter().cloned().collect(),
            created_from: Some(d.id.clone()),
        }
    }

    /// Checks a template before it is kept.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_empty()
            || self.id.len() > 64
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err("template id: 1 to 64 of a-z, 0-9, _ and -".into());
        }
        if self.name.trim().is_empty() || self.name.len() > 128 {
            return Err("template name: 1 to 128 characters".into());
        }
        if !CATEGORIES.contains(&self.category.as_str()) {
            return Err(format!("category: one of {}", CATEGORIES.join(", ")));
        }
        if !CRITICALITIES.contains(&self.criticality.as_str()) {
            return Err(format!("criticality: one of {}", CRITICALITIES.join(", ")));
        }
        Ok(())
    }
}

/// A template id from a display name (`My Printer 2` → `my-printer-2`).
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    s.trim_end_matches('-').chars().take(64).collect()
}

/// Every template's fit, best first.
pub fn rank(templates: &[Template], d: &Device) -> Vec<Fit> {
    let mut fits: Vec<Fit> = templates.iter().map(|t| t.fit(d)).collect();
    fits.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| a.template.cmp(&b.template))
    });
    fits
}
