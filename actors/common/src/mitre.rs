//! MITRE ATT&CK: one table mapping every alert kind (`threat_type`) the project raises to its
//! techniques, and every technique to its name and tactics. The alert stage attaches these to
//! alerts, EVE writes them as `alert.metadata`, risk scoring and attack chains read the tactics.
//! A test checks that every kind has an entry; a kind with no honest technique (a risk level
//! crossed) has an empty list rather than a guess.

/// An ATT&CK tactic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tactic {
    /// `TA0006`
    pub id: &'static str,
    /// `Credential Access`
    pub name: &'static str,
}

/// An ATT&CK technique or sub-technique.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Technique {
    /// `T1558.003`
    pub id: &'static str,
    /// `Steal or Forge Kerberos Tickets: Kerberoasting`
    pub name: &'static str,
    /// The tactics it serves.
    pub tactics: &'static [Tactic],
}

/// Tactics, by their ATT&CK ids.
pub mod tactics {
    use super::Tactic;
    /// TA0043
    pub const RECONNAISSANCE: Tactic = Tactic {
        id: "TA0043",
        name: "Reconnaissance",
    };
    /// TA0042
    pub const RESOURCE_DEVELOPMENT: Tactic = Tactic {
        id: "TA0042",
        name: "Resource Development",
    };
    /// TA0001
    pub const INITIAL_ACCESS: Tactic = Tactic {
        id: "TA0001",
        name: "Initial Access",
    };
    /// TA0005
    pub const DEFENSE_EVASION: Tactic = Tactic {
        id: "TA0005",
        name: "Defense Evasion",
    };
    /// TA0006
    pub const CREDENTIAL_ACCESS: Tactic = Tactic {
        id: "TA0006",
        name: "Credential Access",
    };
    /// TA0007
    pub const DISCOVERY: Tactic = Tactic {
        id: "TA0007",
        name: "Discovery",
    };
    /// TA0008
    pub const LATERAL_MOVEMENT: Tactic = Tactic {
        id: "TA0008",
        name: "Lateral Movement",
    };
    /// TA0009
    pub const COLLECTION: Tactic = Tactic {
        id: "TA0009",
        name: "Collection",
    };
    /// TA0011
    pub const COMMAND_AND_CONTROL: Tactic = Tactic {
        id: "TA0011",
        name: "Command and Control",
    };
    /// TA0010
    pub const EXFILTRATION: Tactic = Tactic {
        id: "TA0010",
        name: "Exfiltration",
    };
    /// TA0040
    pub const IMPACT: Tactic = Tactic {
        id: "TA0040",
        name: "Impact",
    };
}

use tactics::*;

macro_rules! techniques {
    ($($id:literal => $name:literal, [$($t:ident),*];)*) => {
        /// Every technique the project refers to.
        pub const TECHNIQUES: &[Technique] = &[
            $(Technique { id: $id, name: $name, tactics: &[$($t),*] },)*
        ];
    };
}

techniques! {
    "T1040" => "Network Sniffing", [CREDENTIAL_ACCESS, DISCOVERY];
    "T1041" => "Exfiltration Over C2 Channel", [EXFILTRATION];
    "T1046" => "Network Service Discovery", [DISCOVERY];
    "T1048" => "Exfiltration Over Alternative Protocol", [EXFILTRATION];
    "T1071" => "Application Layer Protocol", [COMMAND_AND_CONTROL];
    "T1071.001" => "Application Layer Protocol: Web Protocols", [COMMAND_AND_CONTROL];
    "T1071.004" => "Application Layer Protocol: DNS", [COMMAND_AND_CONTROL];
    "T1087.002" => "Account Discovery: Domain Account", [DISCOVERY];
    "T1105" => "Ingress Tool Transfer", [COMMAND_AND_CONTROL];
    "T1110" => "Brute Force", [CREDENTIAL_ACCESS];
    "T1110.001" => "Brute Force: Password Guessing", [CREDENTIAL_ACCESS];
    "T1110.003" => "Brute Force: Password Spraying", [CREDENTIAL_ACCESS];
    "T1200" => "Hardware Additions", [INITIAL_ACCESS];
    "T1498" => "Network Denial of Service", [IMPACT];
    "T1499" => "Endpoint Denial of Service", [IMPACT];
    "T1550.003" => "Use Alternate Authentication Material: Pass the Ticket", [DEFENSE_EVASION, LATERAL_MOVEMENT];
    "T1557" => "Adversary-in-the-Middle", [CREDENTIAL_ACCESS, COLLECTION];
    "T1558" => "Steal or Forge Kerberos Tickets", [CREDENTIAL_ACCESS];
    "T1558.003" => "Steal or Forge Kerberos Tickets: Kerberoasting", [CREDENTIAL_ACCESS];
    "T1558.004" => "Steal or Forge Kerberos Tickets: AS-REP Roasting", [CREDENTIAL_ACCESS];
    "T1562.010" => "Impair Defenses: Downgrade Attack", [DEFENSE_EVASION];
    "T1568.002" => "Dynamic Resolution: Domain Generation Algorithms", [COMMAND_AND_CONTROL];
    "T1571" => "Non-Standard Port", [COMMAND_AND_CONTROL];
    "T1573" => "Encrypted Channel", [COMMAND_AND_CONTROL];
    "T1573.002" => "Encrypted Channel: Asymmetric Cryptography", [COMMAND_AND_CONTROL];
    "T1587.003" => "Develop Capabilities: Digital Certificates", [RESOURCE_DEVELOPMENT];
    "T1588.004" => "Obtain Capabilities: Digital Certificates", [RESOURCE_DEVELOPMENT];
    "T1595" => "Active Scanning", [RECONNAISSANCE];
}

/// Every alert kind the project raises, with its techniques.
pub const ALERT_KINDS: &[(&str, &[&str])] = &[
    // TLS (actors/tls)
    ("malicious_ja3", &["T1071.001", "T1573.002"]),
    ("malicious_ja3s", &["T1071.001", "T1573.002"]),
    ("weak_tls_version", &["T1557", "T1040"]),
    ("weak_tls_cipher", &["T1557", "T1040"]),
    ("expired_certificate", &["T1588.004"]),
    ("certificate_not_yet_valid", &["T1588.004"]),
    ("self_signed_certificate", &["T1587.003", "T1588.004"]),
    ("sni_certificate_mismatch", &["T1557"]),
    ("tls_missing_sni", &["T1573", "T1071.001"]),
    // Kerberos (actors/kerberos)
    ("kerberoasting", &["T1558.003"]),
    ("asrep_roasting", &["T1558.004"]),
    ("kerberos_bruteforce", &["T1110.001"]),
    ("password_spraying", &["T1110.003"]),
    ("kerberos_user_enumeration", &["T1087.002"]),
    ("kerberos_weak_encryption", &["T1562.010", "T1558"]),
    ("kerberos_downgrade", &["T1562.010", "T1558"]),
    ("kerberos_ticket_abuse", &["T1558", "T1550.003"]),
    // Threat intelligence
    ("threat_feed_match", &["T1071"]),
    ("blacklisted_ip", &["T1071"]),
    ("malicious_domain", &["T1071.004"]),
    ("malicious_url", &["T1071.001", "T1105"]),
    ("malicious_cert", &["T1573", "T1588.004"]),
    // Behaviour
    ("port_scan", &["T1046"]),
    ("horizontal_scan", &["T1046", "T1595"]),
    ("syn_flood", &["T1498"]),
    ("connection_flood", &["T1499"]),
    ("brute_force", &["T1110"]),
    ("dns_tunnel", &["T1071.004"]),
    ("dga", &["T1568.002"]),
    ("beaconing", &["T1071"]),
    ("long_connection", &["T1071"]),
    ("high_outbound_volume", &["T1041", "T1048"]),
    // Devices
    ("new_device", &["T1200"]),
    ("new_service", &["T1571"]),
    ("device_behavior_deviation", &[]),
    // Risk and correlation (derived from other alerts; their tactics are those of the chain)
    ("risk_threshold", &[]),
    ("attack_chain", &[]),
];

/// The technique with this id.
pub fn technique(id: &str) -> Option<&'static Technique> {
    TECHNIQUES.iter().find(|t| t.id == id)
}

/// The technique ids of an alert kind (`None` for a kind missing from the table).
pub fn techniques_for(threat_type: &str) -> Option<&'static [&'static str]> {
    ALERT_KINDS
        .iter()
        .find(|(k, _)| *k == threat_type)
        .map(|(_, t)| *t)
}

/// The tactics of a set of technique ids, deduplicated, in ATT&CK order.
pub fn tactics_of<'a>(technique_ids: impl IntoIterator<Item = &'a str>) -> Vec<Tactic> {
    let mut out: Vec<Tactic> = technique_ids
        .into_iter()
        .filter_map(technique)
        .flat_map(|t| t.tactics.iter().copied())
        .collect();
    out.sort_by_key(|t| kill_chain_rank(t.id));
    out.dedup();
    out
}

/// Position of a tactic along the attack lifecycle, for ordering (unknown ids last).
pub fn kill_chain_rank(tactic_id: &str) -> u8 {
    match tactic_id {
        "TA0043" => 0,
        "TA0042" => 1,
        "TA0001" => 2,
        "TA0002" => 3,
        "TA0003" => 4,
        "TA0004" => 5,
        "TA0005" => 6,
        "TA0006" => 7,
        "TA0007" => 8,
        "TA0008" => 9,
        "TA0009" => 10,
        "TA0011" => 11,
        "TA0010" => 12,
        "TA0040" => 13,
        _ => 255,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_technique_of_every_kind_is_known_and_named() {
        for (kind, techs) in ALERT_KINDS {
            for t in *techs {
                let known = technique(t).unwrap_or_else(|| panic!("{kind}: {t} not in TECHNIQUES"));
                assert!(!known.name.is_empty() && !known.tactics.is_empty());
            }
        }
        let mut kinds: Vec<&str> = ALERT_KINDS.iter().map(|(k, _)| *k).collect();
        kinds.sort_unstable();
        let n = kinds.len();
        kinds.dedup();
        assert_eq!(kinds.len(), n, "each kind once");
    }

    #[test]
    fn tactics_follow_the_attack_lifecycle() {
        let t = tactics_of(["T1071", "T1046", "T1558.003"]);
        let ids: Vec<&str> = t.iter().map(|t| t.id).collect();
        assert_eq!(ids, ["TA0006", "TA0007", "TA0011"]);
    }
}
