//! The behaviour detections: signature id, name, kind (`threat_type`, mapped to ATT&CK in
//! `netmonitor_common::mitre`), category and default severity.

use netmonitor_common::Alert;
use serde_json::Value;

/// One detection.
#[derive(Debug)]
pub struct Rule {
    /// Signature id (9,500,000 range).
    pub sid: u32,
    /// Alert name.
    pub signature: &'static str,
    /// Kind.
    pub threat_type: &'static str,
    /// Suricata-style category.
    pub category: &'static str,
    /// 1 (high) to 3 (low).
    pub severity: u8,
}

impl Rule {
    /// An alert of this rule with `evidence`.
    pub fn alert(&'static self, evidence: Value) -> Alert {
        Alert {
            signature_id: self.sid,
            signature: self.signature.to_owned(),
            category: self.category.to_owned(),
            severity: self.severity,
            threat_type: self.threat_type.to_owned(),
            mitre: Vec::new(),
            evidence,
        }
    }
}

const RECON: &str = "Attempted Information Leak";
const DOS: &str = "Attempted Denial of Service";
const LOGIN: &str = "Attempted User Privilege Gain";
const BAD: &str = "Potentially Bad Traffic";
const MISC: &str = "Misc activity";

macro_rules! rules {
    ($($name:ident = $sid:expr, $kind:expr, $sev:expr, $cat:expr, $sig:expr;)*) => {
        $(
            #[doc = $sig]
            pub static $name: Rule = Rule {
                sid: $sid,
                signature: $sig,
                threat_type: $kind,
                category: $cat,
                severity: $sev,
            };
        )*
        /// Every behaviour rule.
        pub static ALL: &[&Rule] = &[$(&$name),*];
    };
}

rules! {
    VERTICAL_SCAN = 9_500_001, "port_scan", 2, RECON,
        "NetMonitor SCAN vertical port scan: one host probed on many ports";
    HORIZONTAL_SCAN = 9_500_002, "horizontal_scan", 2, RECON,
        "NetMonitor SCAN horizontal scan: one port probed on many hosts";
    TRW_SCAN = 9_500_003, "horizontal_scan", 2, RECON,
        "NetMonitor SCAN scanner found by sequential hypothesis testing of its first contacts";
    SYN_FLOOD = 9_500_004, "syn_flood", 1, DOS,
        "NetMonitor DOS SYN flood: half-open connections pile up on one service";
    CONNECTION_FLOOD = 9_500_005, "connection_flood", 2, DOS,
        "NetMonitor DOS connection flood from one source to one service";
    BRUTE_FORCE = 9_500_006, "brute_force", 1, LOGIN,
        "NetMonitor LOGIN brute force: many short sessions from one source to a login service";
    SPRAYING = 9_500_007, "password_spraying", 1, LOGIN,
        "NetMonitor LOGIN password spraying: one source tries a login service on many hosts";
    DNS_TUNNEL = 9_500_008, "dns_tunnel", 1, BAD,
        "NetMonitor DNS tunnelling: many encoded-looking names under one domain";
    DNS_TXT_VOLUME = 9_500_009, "dns_tunnel", 2, BAD,
        "NetMonitor DNS tunnelling: TXT/NULL query volume from one source";
    DGA = 9_500_010, "dga", 1, BAD,
        "NetMonitor DNS generated domain names: many random-looking names that do not exist";
    BEACONING = 9_500_011, "beaconing", 1, BAD,
        "NetMonitor C2 beaconing: regular connections of regular size to one destination";
    LONG_CONNECTION = 9_500_012, "long_connection", 3, MISC,
        "NetMonitor long-lived connection";
    OUTBOUND_VOLUME = 9_500_013, "high_outbound_volume", 2, BAD,
        "NetMonitor EXFIL high outbound volume from a local host";
    NEW_DEVICE = 9_500_014, "new_device", 3, MISC,
        "NetMonitor new device on the network";
    NEW_SERVICE = 9_500_015, "new_service", 3, MISC,
        "NetMonitor new listening service on a host";
}
