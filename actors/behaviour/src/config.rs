//! `[detection.behaviour]`: one section per detection, every threshold changeable at run time
//! (`detection.behaviour.<section>.<field>`), defaults in the spirit of Zeek's scan policy and
//! RITA's beacon scoring.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// `[detection.behaviour]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviourConfig {
    /// Every behaviour detection on or off.
    pub enabled: bool,
    /// Most keys (sources, pairs, names) each tracking table holds; the stalest go first.
    pub max_tracked: usize,
    /// Networks whose hosts are "ours" (outbound volume, new devices and services).
    pub local_networks: Vec<IpNet>,
    /// Port scans.
    pub scan: ScanConfig,
    /// SYN and connection floods.
    pub flood: FloodConfig,
    /// Brute force and password spraying against login services.
    pub brute_force: BruteForceConfig,
    /// DNS tunnelling and DGA.
    pub dns: DnsConfig,
    /// Beaconing and long connections.
    pub beacon: BeaconConfig,
    /// Outbound volume.
    pub volume: VolumeConfig,
    /// New devices and services.
    pub novelty: NoveltyConfig,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        let nets = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
        ];
        BehaviourConfig {
            enabled: true,
            max_tracked: 20_000,
            local_networks: nets.iter().filter_map(|n| n.parse().ok()).collect(),
            scan: ScanConfig::default(),
            flood: FloodConfig::default(),
            brute_force: BruteForceConfig::default(),
            dns: DnsConfig::default(),
            beacon: BeaconConfig::default(),
            volume: VolumeConfig::default(),
            novelty: NoveltyConfig::default(),
        }
    }
}

/// `[detection.behaviour.scan]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// On or off.
    pub enabled: bool,
    /// Window, seconds.
    pub window_secs: u64,
    /// Distinct ports probed on one host (vertical scan).
    pub ports_per_host: usize,
    /// Distinct hosts probed on one port (horizontal scan).
    pub hosts_per_port: usize,
    /// Also judge each source by threshold random walk over its first contacts (slow scans).
    pub trw: bool,
    /// TRW: accepted false-positive rate.
    pub trw_false_positive: f64,
    /// TRW: wanted detection rate.
    pub trw_detection: f64,
    /// TRW: failed first contacts a source needs before the walk may call it a scanner (the
    /// walk alone decides after four, which a few dead servers can cause).
    pub trw_min_failures: u32,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            enabled: true,
            window_secs: 300,
            ports_per_host: 15,
            hosts_per_port: 25,
            trw: true,
            trw_false_positive: 0.01,
            trw_detection: 0.99,
            trw_min_failures: 10,
        }
    }
}

/// `[detection.behaviour.flood]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FloodConfig {
    /// On or off.
    pub enabled: bool,
    /// Window, seconds.
    pub window_secs: u64,
    /// Half-open attempts (a bare SYN opening a flow) to one host and port per window.
    pub syn_per_target: usize,
    /// Connections from one source to one host and port per window.
    pub connections_per_source: usize,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            enabled: true,
            window_secs: 10,
            syn_per_target: 1000,
            connections_per_source: 500,
        }
    }
}

/// `[detection.behaviour.brute_force]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BruteForceConfig {
    /// On or off.
    pub enabled: bool,
    /// Window, seconds.
    pub window_secs: u64,
    /// Short sessions (or HTTP 401 answers) from one source to one service per window.
    pub sessions: usize,
    /// Distinct hosts of one service one source tries per window (password spraying).
    pub spray_targets: usize,
    /// A session at most this long counts as a login attempt.
    pub short_session_secs: u64,
    /// The login services' ports (SSH, Telnet, FTP, RDP, SMB, LDAP, databases, mail, VNC).
    pub ports: Vec<u16>,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        BruteForceConfig {
            enabled: true,
            window_secs: 300,
            sessions: 10,
            spray_targets: 5,
            short_session_secs: 30,
            ports: vec![
                21, 22, 23, 25, 110, 139, 143, 389, 445, 587, 636, 993, 995, 1433, 1521, 3306,
                3389, 5432, 5900, 6379, 27017,
            ],
        }
    }
}

/// `[detection.behaviour.dns]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// On or off.
    pub enabled: bool,
    /// Window, seconds.
    pub window_secs: u64,
    /// Distinct names under one parent domain from one source per window ("exploded
    /// subdomains").
    pub unique_subdomains: usize,
    /// A label at least this long is "long".
    pub long_label: usize,
    /// Queries with a long label under one parent from one source per window.
    pub long_label_queries: usize,
    /// Mean Shannon entropy (bits per character) of the subdomain part above which the names
    /// look encoded.
    pub entropy: f64,
    /// TXT and NULL queries from one source per window.
    pub txt_null_queries: usize,
    /// Distinct NXDOMAIN names from one source per window (DGA).
    pub nxdomain_names: usize,
    /// Entropy of the registered label above which an NXDOMAIN name looks generated.
    pub dga_entropy: f64,
    /// Share of a source's answers in the window that are NXDOMAIN, at least (DGA): a busy
    /// client with a few stale names stays below it.
    pub nxdomain_ratio: f64,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            enabled: true,
            window_secs: 300,
            unique_subdomains: 50,
            long_label: 40,
            long_label_queries: 20,
            entropy: 3.5,
            txt_null_queries: 100,
            nxdomain_names: 20,
            dga_entropy: 3.0,
            nxdomain_ratio: 0.2,
        }
    }
}

/// `[detection.behaviour.beacon]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BeaconConfig {
    /// On or off.
    pub enabled: bool,
    /// Window of connections scored, seconds.
    pub window_secs: u64,
    /// Connections of one pair before it is scored.
    pub min_connections: usize,
    /// Score (0-1) from which a pair is a beacon.
    pub score: f64,
    /// Interval jitter (median absolute deviation, seconds) scored as zero regularity.
    pub jitter_secs: f64,
    /// Size jitter (median absolute deviation, bytes) scored as zero regularity.
    pub size_jitter_bytes: f64,
    /// Connections in the window that give the full count score.
    pub full_count: usize,
    /// A pair's connections must span at least this long (a burst is not a beacon).
    pub min_span_secs: u64,
    /// Median interval below which a pair is a burst, not a beacon, seconds.
    pub min_interval_secs: f64,
    /// A connection open at least this long is flagged as long (0 = off).
    pub long_connection_secs: u64,
    /// Also score pairs that are not from a local host to the outside (internal lateral
    /// beacons, or traffic seen from outside); off as in RITA, which keeps the state to the
    /// pairs that matter.
    pub internal_pairs: bool,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        BeaconConfig {
            enabled: true,
            window_secs: 86_400,
            min_connections: 20,
            score: 0.8,
            jitter_secs: 30.0,
            size_jitter_bytes: 32.0,
            full_count: 24,
            min_span_secs: 600,
            min_interval_secs: 5.0,
            long_connection_secs: 3600,
            internal_pairs: false,
        }
    }
}

/// `[detection.behaviour.volume]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeConfig {
    /// On or off.
    pub enabled: bool,
    /// Length of one accounting period, seconds.
    pub bucket_secs: u64,
    /// Bytes one local host may send outside per period, whatever its history.
    pub absolute_bytes: u64,
    /// Times its usual volume (mean of past periods) a host may send before an alert...
    pub baseline_factor: f64,
    /// ...provided it is at least this many bytes.
    pub min_bytes: u64,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            enabled: true,
            bucket_secs: 3600,
            absolute_bytes: 5_000_000_000,
            baseline_factor: 10.0,
            min_bytes: 500_000_000,
        }
    }
}

/// `[detection.behaviour.novelty]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NoveltyConfig {
    /// On or off.
    pub enabled: bool,
    /// Devices and services seen during the first this-long of observed traffic are learned,
    /// not alerted. Observed: gaps in packet time longer than five minutes (a sensor down, the
    /// next of several capture files) do not count.
    pub learning_secs: u64,
}

impl Default for NoveltyConfig {
    fn default() -> Self {
        NoveltyConfig {
            enabled: true,
            learning_secs: 86_400,
        }
    }
}

impl BehaviourConfig {
    /// Checks the ranges serde cannot express, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let secs = |name: &str, v: u64| {
            if v == 0 || v > 30 * 86_400 {
                Err(format!("behaviour.{name}: must be 1..2592000 seconds"))
            } else {
                Ok(())
            }
        };
        secs("scan.window_secs", self.scan.window_secs)?;
        secs("flood.window_secs", self.flood.window_secs)?;
        secs("brute_force.window_secs", self.brute_force.window_secs)?;
        secs("dns.window_secs", self.dns.window_secs)?;
        secs("beacon.window_secs", self.beacon.window_secs)?;
        secs("volume.bucket_secs", self.volume.bucket_secs)?;
        if self.max_tracked < 16 {
            return Err("behaviour.max_tracked: must be at least 16".into());
        }
        let p = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) && v > 0.0 {
                Ok(())
            } else {
                Err(format!("behaviour.{name}: must be within (0, 1]"))
            }
        };
        p("scan.trw_false_positive", self.scan.trw_false_positive)?;
        p("scan.trw_detection", self.scan.trw_detection)?;
        p("beacon.score", self.beacon.score)?;
        p("dns.nxdomain_ratio", self.dns.nxdomain_ratio)?;
        if self.beacon.min_connections < 4 {
            return Err("behaviour.beacon.min_connections: must be at least 4".into());
        }
        if self.beacon.jitter_secs <= 0.0 || self.beacon.size_jitter_bytes <= 0.0 {
            return Err("behaviour.beacon: jitter tolerances must be positive".into());
        }
        if self.volume.baseline_factor < 1.0 {
            return Err("behaviour.volume.baseline_factor: must be at least 1".into());
        }
        for (name, v) in [
            ("scan.ports_per_host", self.scan.ports_per_host),
            ("scan.hosts_per_port", self.scan.hosts_per_port),
            ("dns.unique_subdomains", self.dns.unique_subdomains),
            ("dns.nxdomain_names", self.dns.nxdomain_names),
            ("brute_force.spray_targets", self.brute_force.spray_targets),
        ] {
            if v > netmonitor_common::window::MAX_DISTINCT_PER_KEY {
                return Err(format!("behaviour.{name}: at most 1024"));
            }
        }
        Ok(())
    }

    /// Whether `a` is one of ours.
    pub fn is_local(&self, a: std::net::IpAddr) -> bool {
        match a {
            // The common case without ipnet's per-call mask arithmetic.
            std::net::IpAddr::V4(v4) => {
                let a = u32::from(v4);
                self.local_networks.iter().any(|n| match n {
                    ipnet::IpNet::V4(n) => {
                        let mask = u32::MAX
                            .checked_shl(32 - u32::from(n.prefix_len()))
                            .unwrap_or(0);
                        (a ^ u32::from(n.addr())) & mask == 0
                    }
                    ipnet::IpNet::V6(_) => false,
                })
            }
            std::net::IpAddr::V6(_) => self.local_networks.iter().any(|n| n.contains(&a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_networks_match_by_prefix() {
        let mut c = BehaviourConfig {
            local_networks: ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]
                .iter()
                .map(|n| n.parse().unwrap())
                .collect(),
            ..BehaviourConfig::default()
        };
        let local = |a: &str| c.is_local(a.parse().unwrap());
        assert!(local("10.200.3.4") && local("192.168.1.7") && local("fd12::1"));
        assert!(!local("11.0.0.1") && !local("192.168.1.8") && !local("fe80::1"));
        c.local_networks = vec!["0.0.0.0/0".parse().unwrap()];
        assert!(c.is_local("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn sections_parse_and_validate() {
        let c: BehaviourConfig = toml::from_str(
            "[scan]\nports_per_host = 20\n[beacon]\nscore = 0.7\n[brute_force]\nports = [22]\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.scan.ports_per_host, 20);
        assert_eq!(c.scan.hosts_per_port, 25);
        assert!(c.is_local("10.1.2.3".parse().unwrap()));
        assert!(!c.is_local("8.8.8.8".parse().unwrap()));
        let mut bad = c.clone();
        bad.beacon.score = 1.5;
        assert!(bad.validate().unwrap_err().contains("beacon.score"));
        assert!(toml::from_str::<BehaviourConfig>("[scan]\nnope = 1\n").is_err());
    }
}
