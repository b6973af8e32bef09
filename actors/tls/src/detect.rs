//! TLS detections on a finished handshake: blocklisted JA3 (abuse.ch SSLBL format, extendable
//! at run time), weak protocol versions, weak negotiated cipher suites, expired / not yet valid
//! and self-signed server certificates, a missing SNI from a modern client, and an SNI that the
//! certificate does not cover (wildcards per RFC 6125 §6.4.3).
//!
//! Each alert carries its signature id, Suricata-style category and severity, our threat type,
//! MITRE ATT&CK technique ids and a JSON evidence object.

use crate::parser::version;
use netmonitor_common::time::format_utc;
use netmonitor_common::{Alert, Certificate, Timestamp, TlsHandshake};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Signature ids of the TLS detections (one range for the TLS actor).
pub mod sid {
    /// Client JA3 on the blocklist.
    pub const MALICIOUS_JA3: u32 = 2_210_001;
    /// Server JA3S on the blocklist.
    pub const MALICIOUS_JA3S: u32 = 2_210_002;
    /// SSLv2, SSLv3, TLS 1.0 or TLS 1.1 negotiated (or offered as the best version).
    pub const WEAK_VERSION: u32 = 2_210_010;
    /// NULL, EXPORT, RC4, DES, 3DES or anonymous cipher suite negotiated.
    pub const WEAK_CIPHER: u32 = 2_210_011;
    /// Server certificate past its notAfter.
    pub const CERT_EXPIRED: u32 = 2_210_020;
    /// Server certificate before its notBefore.
    pub const CERT_NOT_YET_VALID: u32 = 2_210_021;
    /// Self-signed server certificate.
    pub const CERT_SELF_SIGNED: u32 = 2_210_022;
    /// SNI not covered by the certificate's names.
    pub const SNI_MISMATCH: u32 = 2_210_023;
    /// A modern client without SNI.
    pub const MISSING_SNI: u32 = 2_210_030;
}

/// Why a blocklist entry or file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    /// Not 32 hex digits.
    #[error("invalid JA3 MD5 {0:?}: expected 32 hexadecimal digits")]
    InvalidJa3(String),
}

/// What a blocklist load did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Entries added or updated.
    pub added: usize,
    /// Non-comment lines that were not valid entries.
    pub skipped: usize,
}

/// A weakness of a cipher suite, by the IANA registry's name components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherWeakness {
    /// No encryption.
    Null,
    /// 40/56-bit export grade.
    Export,
    /// RC4 stream cipher.
    Rc4,
    /// Single DES.
    Des,
    /// Triple DES (Sweet32).
    TripleDes,
    /// Anonymous key exchange (no server authentication).
    Anonymous,
}

impl CipherWeakness {
    /// Short name for evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            CipherWeakness::Null => "NULL",
            CipherWeakness::Export => "EXPORT",
            CipherWeakness::Rc4 => "RC4",
            CipherWeakness::Des => "DES",
            CipherWeakness::TripleDes => "3DES",
            CipherWeakness::Anonymous => "anon",
        }
    }
}

/// Classifies a cipher suite id (IANA TLS Cipher Suites registry); `None` for suites without
/// these weaknesses. Export beats the others (an export RC4 suite is reported as EXPORT).
pub fn cipher_weakness(id: u16) -> Option<CipherWeakness> {
    use CipherWeakness::*;
    Some(match id {
        0x0003
        | 0x0006
        | 0x0008
        | 0x000b
        | 0x000e
        | 0x0011
        | 0x0014
        | 0x0017
        | 0x0019
        | 0x0026..=0x002b
        | 0x0060..=0x0065 => Export,
        0x0000..=0x0002
        | 0x002c..=0x002e
        | 0x003b
        | 0x00b0
        | 0x00b1
        | 0x00b4
        | 0x00b5
        | 0x00b8
        | 0x00b9
        | 0xc001
        | 0xc006
        | 0xc00b
        | 0xc010
        | 0xc015
        | 0xc039..=0xc03b
        | 0xc0b4
        | 0xc0b5 => Null,
        0x0004 | 0x0005 | 0x0018 | 0x0020 | 0x0024 | 0x0066 | 0x008a | 0x008e | 0x0092 | 0xc002
        | 0xc007 | 0xc00c | 0xc011 | 0xc016 | 0xc033 => Rc4,
        0x0009 | 0x000c | 0x000f | 0x0012 | 0x0015 | 0x001a | 0x001e | 0x0022 => Des,
        0x000a
        | 0x000d
        | 0x0010
        | 0x0013
        | 0x0016
        | 0x001b
        | 0x001f
        | 0x0023
        | 0x008b
        | 0x008f
        | 0x0093
        | 0xc003
        | 0xc008
        | 0xc00d
        | 0xc012
        | 0xc017
        | 0xc01a..=0xc01c
        | 0xc034 => TripleDes,
        0x0034 | 0x003a | 0x0046 | 0x006c | 0x006d | 0x0089 | 0x009b | 0x00a6 | 0x00a7 | 0x00bf
        | 0x00c5 | 0xc018 | 0xc019 | 0xc046 | 0xc047 | 0xc05a | 0xc05b | 0xc084 | 0xc085 => {
            Anonymous
        }
        _ => return None,
    })
}

/// True for the versions the detections call weak (SSLv2, SSLv3, TLS 1.0, TLS 1.1).
pub fn is_weak_version(v: u16) -> bool {
    matches!(
        v,
        version::SSL_2 | version::SSL_3 | version::TLS_1_0 | version::TLS_1_1
    )
}

/// Trims a DNS name (whitespace, trailing dots) for comparison; case is ignored by the callers.
fn trim_name(name: &str) -> &str {
    name.trim().trim_end_matches('.')
}

/// Whether certificate name `pattern` covers host `host` (RFC 6125 §6.4.3): exact match, or a
/// `*` that is the whole left-most label and stands for exactly one non-empty label. ASCII case
/// and trailing dots are ignored.
pub fn name_matches(pattern: &str, host: &str) -> bool {
    let p = trim_name(pattern);
    let h = trim_name(host);
    if p.is_empty() || h.is_empty() {
        return false;
    }
    if p.eq_ignore_ascii_case(h) {
        return true;
    }
    let Some(suffix) = p.strip_prefix("*.") else {
        return false;
    };
    // A wildcard must leave at least two labels (no "*.com").
    if !suffix.contains('.') {
        return false;
    }
    match h.split_once('.') {
        Some((label, rest)) => !label.is_empty() && rest.eq_ignore_ascii_case(suffix),
        None => false,
    }
}

/// [`certificate_names`] without copying them.
fn certificate_name_refs(cert: &Certificate) -> impl Iterator<Item = &str> {
    // The subject's CNs only count when there is no SAN (`take(0)` never walks the subject).
    let cns = if cert.sans.is_empty() { usize::MAX } else { 0 };
    cert.sans.iter().map(String::as_str).chain(
        cert.subject
            .split(", ")
            .flat_map(|rdn| rdn.split(" + "))
            .filter_map(|attr| attr.strip_prefix("CN="))
            .take(cns),
    )
}

/// The names a certificate is valid for: its DNS SANs, else the CNs of its subject.
pub fn certificate_names(cert: &Certificate) -> Vec<String> {
    certificate_name_refs(cert).map(str::to_owned).collect()
}

fn looks_like_ip(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// Matches finished handshakes against the TLS detections and a JA3 blocklist.
#[derive(Debug, Clone, Default)]
pub struct TlsDetector {
    /// JA3/JA3S MD5 (lowercase) to listing reason.
    blocklist: HashMap<String, String>,
}

impl TlsDetector {
    /// A detector with an empty blocklist.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or updates) a blocklisted JA3 or JA3S MD5 with the reason it is listed.
    pub fn add_ja3(&mut self, md5: &str, reason: &str) -> Result<(), DetectError> {
        let h = md5.trim().to_ascii_lowercase();
        if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DetectError::InvalidJa3(md5.to_owned()));
        }
        self.blocklist.insert(h, reason.trim().to_owned());
        Ok(())
    }

    /// Removes a blocklisted hash; true when it was listed.
    pub fn remove_ja3(&mut self, md5: &str) -> bool {
        self.blocklist
            .remove(&md5.trim().to_ascii_lowercase())
            .is_some()
    }

    /// The listing reason of a hash, when blocklisted.
    pub fn blocklisted(&self, md5: &str) -> Option<&str> {
        if self.blocklist.is_empty() {
            return None;
        }
        let canonical = md5.bytes().all(|b| !b.is_ascii_uppercase()) && md5.trim() == md5;
        let reason = if canonical {
            // Our own hashes are already trimmed lowercase: no copy needed.
            self.blocklist.get(md5)
        } else {
            self.blocklist.get(&md5.trim().to_ascii_lowercase())
        };
        reason.map(String::as_str)
    }

    /// Number of blocklisted hashes.
    pub fn len(&self) -> usize {
        self.blocklist.len()
    }

    /// True when the blocklist is empty.
    pub fn is_empty(&self) -> bool {
        self.blocklist.is_empty()
    }

    /// Loads abuse.ch SSLBL JA3 CSV text (`ja3_md5,first_seen,last_seen,listing_reason`, `#`
    /// comments, blank lines ignored). Invalid lines are skipped and counted.
    pub fn load_sslbl_csv(&mut self, text: &str) -> LoadReport {
        let mut report = LoadReport::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split(',');
            let md5 = fields.next().unwrap_or("").trim_matches('"');
            let reason = fields.nth(2).unwrap_or("").trim().trim_matches('"');
            match self.add_ja3(md5, reason) {
                Ok(()) => report.added += 1,
                Err(_) => report.skipped += 1,
            }
        }
        report
    }

    /// The alerts a finished handshake raises; `ts` is the event's capture time, against which
    /// certificate validity is judged.
    pub fn inspect(&self, ts: Timestamp, hs: &TlsHandshake) -> Vec<Alert> {
        let mut alerts = Vec::new();
        // The evidence is built only for an alert that fires (most handshakes raise none).
        let alert = |sid: u32,
                     sig: &str,
                     cat: &str,
                     sev: u8,
                     threat: &str,
                     mitre: &[&str],
                     extra: Value| {
            let mut ev = evidence_base(hs);
            if let Value::Object(m) = extra {
                ev.extend(m);
            }
            Alert {
                signature_id: sid,
                signature: sig.to_owned(),
                category: cat.to_owned(),
                severity: sev,
                threat_type: threat.to_owned(),
                mitre: mitre.iter().map(|m| (*m).to_owned()).collect(),
                evidence: Value::Object(ev),
            }
        };

        if let Some(ja3) = &hs.ja3 {
            if let Some(reason) = self.blocklisted(&ja3.hash) {
                alerts.push(alert(
                    sid::MALICIOUS_JA3,
                    &format!("NETMONITOR TLS malicious JA3 fingerprint ({reason})"),
                    "A Network Trojan was detected",
                    1,
                    "malicious_ja3",
                    &["T1071.001", "T1573.002"],
                    json!({"listing_reason": reason}),
                ));
            }
        }
        if let Some(ja3s) = &hs.ja3s {
            if let Some(reason) = self.blocklisted(&ja3s.hash) {
                alerts.push(alert(
                    sid::MALICIOUS_JA3S,
                    &format!("NETMONITOR TLS malicious JA3S fingerprint ({reason})"),
                    "A Network Trojan was detected",
                    1,
                    "malicious_ja3s",
                    &["T1071.001", "T1573.002"],
                    json!({"listing_reason": reason}),
                ));
            }
        }

        // The negotiated version, or the best one the client offered when no server was seen.
        let best_offered = hs
            .supported_versions
            .iter()
            .copied()
            .filter(|v| version::is_known(*v) || *v == version::SSL_2)
            .max()
            .or(hs.client_version);
        let judged = hs.server_version.or(if hs.quic_version.is_some() {
            None
        } else {
            best_offered
        });
        if let Some(v) = judged.filter(|v| is_weak_version(*v)) {
            let severity = if v <= version::SSL_3 { 2 } else { 3 };
            alerts.push(alert(
                sid::WEAK_VERSION,
                &format!("NETMONITOR TLS weak protocol version {}", version::name(v)),
                "Potentially Bad Traffic",
                severity,
                "weak_tls_version",
                &["T1557", "T1040"],
                json!({"weak_version": version::name(v), "negotiated": hs.server_version.is_some()}),
            ));
        }

        if let Some(c) = hs.cipher_selected {
            if let Some(w) = cipher_weakness(c) {
                alerts.push(alert(
                    sid::WEAK_CIPHER,
                    &format!(
                        "NETMONITOR TLS weak cipher suite negotiated ({})",
                        w.as_str()
                    ),
                    "Potentially Bad Traffic",
                    2,
                    "weak_tls_cipher",
                    &["T1557", "T1040"],
                    json!({"cipher_suite": format!("0x{c:04x}"), "weakness": w.as_str()}),
                ));
            }
        }

        if let Some(leaf) = hs.certificates.first() {
            let now = ts.secs();
            if now > leaf.not_after {
                alerts.push(alert(
                    sid::CERT_EXPIRED,
                    "NETMONITOR TLS expired server certificate",
                    "Potentially Bad Traffic",
                    2,
                    "expired_certificate",
                    &["T1588.004"],
                    json!({"expired_for_days": (now - leaf.not_after) / 86_400}),
                ));
            } else if now < leaf.not_before {
                alerts.push(alert(
                    sid::CERT_NOT_YET_VALID,
                    "NETMONITOR TLS server certificate not yet valid",
                    "Potentially Bad Traffic",
                    2,
                    "certificate_not_yet_valid",
                    &["T1588.004"],
                    json!({"valid_in_days": (leaf.not_before - now) / 86_400}),
                ));
            }
            if leaf.self_signed {
                alerts.push(alert(
                    sid::CERT_SELF_SIGNED,
                    "NETMONITOR TLS self-signed server certificate",
                    "Potentially Bad Traffic",
                    3,
                    "self_signed_certificate",
                    &["T1587.003", "T1588.004"],
                    json!({}),
                ));
            }
            if let Some(sni) = hs.sni.as_deref().filter(|s| !looks_like_ip(s)) {
                let mut names = certificate_name_refs(leaf).peekable();
                let has_names = names.peek().is_some();
                if has_names && !names.any(|n| name_matches(n, sni)) {
                    let names = certificate_names(leaf);
                    alerts.push(alert(
                        sid::SNI_MISMATCH,
                        "NETMONITOR TLS SNI does not match the server certificate",
                        "Potentially Bad Traffic",
                        3,
                        "sni_certificate_mismatch",
                        &["T1557"],
                        json!({"certificate_names": names}),
                    ));
                }
            }
        }

        // A client that offers TLS 1.3 or ALPN (browsers, modern libraries) sends SNI whenever
        // it connects to a name; without one it dialed a bare address, common for implants.
        let modern = hs.supported_versions.iter().any(|v| version::is_tls13(*v))
            || !hs.alpn_offered.is_empty();
        if hs.ja3.is_some() && hs.sni.is_none() && modern && hs.quic_version.is_none() {
            alerts.push(alert(
                sid::MISSING_SNI,
                "NETMONITOR TLS modern client without SNI",
                "Potentially Bad Traffic",
                3,
                "tls_missing_sni",
                &["T1573", "T1071.001"],
                json!({}),
            ));
        }
        alerts
    }
}

/// Evidence common to every TLS alert: the handshake's identifying facts.
fn evidence_base(hs: &TlsHandshake) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(sni) = &hs.sni {
        m.insert("sni".into(), json!(sni));
    }
    if let Some(v) = &hs.version {
        m.insert("version".into(), json!(v));
    }
    if let Some(j) = &hs.ja3 {
        m.insert("ja3".into(), json!(j.hash));
    }
    if let Some(j) = &hs.ja3s {
        m.insert("ja3s".into(), json!(j.hash));
    }
    if let Some(j) = &hs.ja4 {
        m.insert("ja4".into(), json!(j));
    }
    if let Some(c) = hs.certificates.first() {
        m.insert("subject".into(), json!(c.subject));
        m.insert("issuerdn".into(), json!(c.issuer));
        m.insert("fingerprint".into(), json!(c.fingerprint));
        m.insert("notbefore".into(), json!(format_utc(c.not_before)));
        m.insert("notafter".into(), json!(format_utc(c.not_after)));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmonitor_common::Fingerprint;

    fn handshake() -> TlsHandshake {
        TlsHandshake {
            sni: Some("www.example.com".into()),
            version: Some("TLS 1.2".into()),
            client_version: Some(0x0303),
            server_version: Some(0x0303),
            ja3: Some(Fingerprint {
                hash: "e7d705a3286e19ea42f587b344ee6865".into(),
                string: "771,4865,0,,".into(),
            }),
            cipher_selected: Some(0xc02f),
            alpn_offered: vec!["h2".into()],
            certificates: vec![Certificate {
                subject: "C=US, CN=www.example.com".into(),
                issuer: "C=US, O=CA, CN=Issuing CA".into(),
                not_before: 1_600_000_000,
                not_after: 1_700_000_000,
                sans: vec!["*.example.com".into(), "example.com".into()],
                ..Certificate::default()
            }],
            ..TlsHandshake::default()
        }
    }

    fn sids(alerts: &[Alert]) -> Vec<u32> {
        alerts.iter().map(|a| a.signature_id).collect()
    }

    const IN_VALIDITY: Timestamp = Timestamp(1_650_000_000_000_000);

    #[test]
    fn clean_handshake_raises_nothing() {
        assert!(TlsDetector::new()
            .inspect(IN_VALIDITY, &handshake())
            .is_empty());
    }

    #[test]
    fn sslbl_csv_and_runtime_additions() {
        let mut d = TlsDetector::new();
        let csv = "################################################################\n\
                   # abuse.ch SSLBL JA3 Fingerprint Blacklist (CSV)                #\n\
                   # ja3_md5,Firstseen,Lastseen,Listingreason\n\
                   E7D705A3286E19EA42F587B344EE6865,2017-07-14 18:08:15,2019-07-27 20:42:54,Tofsee\n\
                   not-a-hash,2017-07-14 18:08:15,2019-07-27 20:42:54,Bad\n\
                   \n";
        assert_eq!(
            d.load_sslbl_csv(csv),
            LoadReport {
                added: 1,
                skipped: 1
            }
        );
        assert_eq!(
            d.blocklisted("e7d705a3286e19ea42f587b344ee6865"),
            Some("Tofsee")
        );
        let alerts = d.inspect(IN_VALIDITY, &handshake());
        assert_eq!(sids(&alerts), vec![sid::MALICIOUS_JA3]);
        let a = &alerts[0];
        assert_eq!(a.severity, 1);
        assert_eq!(a.threat_type, "malicious_ja3");
        assert_eq!(a.evidence["listing_reason"], "Tofsee");
        assert_eq!(a.evidence["sni"], "www.example.com");
        assert!(a.mitre.contains(&"T1071.001".to_owned()));

        // Our own hashes are looked up as they are; other spellings are normalised.
        assert_eq!(
            d.blocklisted(" E7D705A3286E19EA42F587B344EE6865 "),
            Some("Tofsee")
        );
        assert_eq!(d.blocklisted("e7d705a3286e19ea42f587b344ee6866"), None);
        assert_eq!(
            TlsDetector::new().blocklisted("e7d705a3286e19ea42f587b344ee6865"),
            None
        );
        assert!(d.add_ja3("xyz", "bad").is_err());
        d.add_ja3("00000000000000000000000000000000", "test")
            .unwrap();
        assert_eq!(d.len(), 2);
        assert!(d.remove_ja3("00000000000000000000000000000000"));
    }

    #[test]
    fn weak_versions_and_ciphers() {
        let d = TlsDetector::new();
        let mut hs = handshake();
        hs.server_version = Some(0x0301);
        hs.cipher_selected = Some(0x0005); // TLS_RSA_WITH_RC4_128_SHA
        let alerts = d.inspect(IN_VALIDITY, &hs);
        assert_eq!(sids(&alerts), vec![sid::WEAK_VERSION, sid::WEAK_CIPHER]);
        assert_eq!(alerts[0].severity, 3);
        assert_eq!(alerts[1].evidence["weakness"], "RC4");

        hs.server_version = Some(0x0300);
        hs.cipher_selected = Some(0x000a); // TLS_RSA_WITH_3DES_EDE_CBC_SHA
        let alerts = d.inspect(IN_VALIDITY, &hs);
        assert_eq!(alerts[0].severity, 2);
        assert_eq!(alerts[1].evidence["weakness"], "3DES");

        assert_eq!(cipher_weakness(0x0003), Some(CipherWeakness::Export));
        assert_eq!(cipher_weakness(0x0001), Some(CipherWeakness::Null));
        assert_eq!(cipher_weakness(0x0034), Some(CipherWeakness::Anonymous));
        assert_eq!(cipher_weakness(0x0009), Some(CipherWeakness::Des));
        assert_eq!(cipher_weakness(0x1301), None);
        assert_eq!(cipher_weakness(0xc02f), None);

        // Only a ClientHello whose best version is TLS 1.0.
        let mut hs = handshake();
        hs.server_version = None;
        hs.client_version = Some(0x0301);
        assert_eq!(sids(&d.inspect(IN_VALIDITY, &hs)), vec![sid::WEAK_VERSION]);
    }

    #[test]
    fn certificate_validity_is_judged_at_the_event_time() {
        let d = TlsDetector::new();
        let hs = handshake();
        let late = Timestamp::from_secs_micros(1_700_000_001 + 86_400 * 10, 0);
        let alerts = d.inspect(late, &hs);
        assert_eq!(sids(&alerts), vec![sid::CERT_EXPIRED]);
        assert_eq!(alerts[0].evidence["expired_for_days"], 10);
        let early = Timestamp::from_secs_micros(1_500_000_000, 0);
        assert_eq!(sids(&d.inspect(early, &hs)), vec![sid::CERT_NOT_YET_VALID]);
    }

    #[test]
    fn self_signed_and_name_mismatch() {
        let d = TlsDetector::new();
        let mut hs = handshake();
        hs.certificates[0].self_signed = true;
        hs.sni = Some("a.b.example.com".into());
        let alerts = d.inspect(IN_VALIDITY, &hs);
        assert_eq!(
            sids(&alerts),
            vec![sid::CERT_SELF_SIGNED, sid::SNI_MISMATCH]
        );
        assert_eq!(alerts[1].evidence["certificate_names"][0], "*.example.com");

        assert_eq!(
            certificate_names(&hs.certificates[0]),
            vec!["*.example.com".to_owned(), "example.com".to_owned()]
        );
        // No SANs: the subject CN is used.
        hs.certificates[0].sans.clear();
        hs.certificates[0].self_signed = false;
        hs.sni = Some("WWW.Example.com.".into());
        assert!(d.inspect(IN_VALIDITY, &hs).is_empty());
        assert_eq!(
            certificate_names(&hs.certificates[0]),
            vec!["www.example.com".to_owned()]
        );
        hs.sni = Some("other.example.com".into());
        let alerts = d.inspect(IN_VALIDITY, &hs);
        assert_eq!(sids(&alerts), vec![sid::SNI_MISMATCH]);
        assert_eq!(
            alerts[0].evidence["certificate_names"][0],
            "www.example.com"
        );
        assert_eq!(alerts[0].evidence["sni"], "other.example.com");
        // An IP literal in SNI is not compared.
        hs.sni = Some("192.0.2.1".into());
        assert!(d.inspect(IN_VALIDITY, &hs).is_empty());
    }

    #[test]
    fn wildcards_cover_exactly_one_label() {
        assert!(name_matches("*.example.com", "www.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.com", "example.com"));
        assert!(!name_matches("w*.example.com", "www.example.com"));
        assert!(name_matches("Example.COM", "example.com."));
        assert!(!name_matches("", "example.com"));
    }

    #[test]
    fn missing_sni_only_for_modern_clients() {
        let d = TlsDetector::new();
        let mut hs = handshake();
        hs.sni = None;
        assert_eq!(sids(&d.inspect(IN_VALIDITY, &hs)), vec![sid::MISSING_SNI]);
        hs.alpn_offered.clear();
        assert!(
            d.inspect(IN_VALIDITY, &hs).is_empty(),
            "legacy clients often omit SNI"
        );
        hs.supported_versions = vec![0x0304, 0x0303];
        assert_eq!(sids(&d.inspect(IN_VALIDITY, &hs)), vec![sid::MISSING_SNI]);
    }
}
