//! Kerberos attack detections over decoded messages, and the running statistics behind the
//! `get_kerberos_stats` tool.
//!
//! Everything is in memory, keyed by client address, account or flow, in sliding windows of
//! [`KrbDetectConfig::window_secs`] (capture time, so a replay behaves like live traffic). Every
//! table is bounded by [`KrbDetectConfig::max_tracked`] keys, evicting the least recently seen;
//! per-key lists are bounded by named constants. An alert for one detection and one key is
//! raised at most once per window.

use netmonitor_common::krb::{error_code_name, etype_name, is_weak_etype, KrbMessage, KrbMsgType};
use netmonitor_common::window::{Bounded, Distinct, Times};
use netmonitor_common::{Alert, EventHeader};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// KRB-ERROR code: the client principal does not exist.
const ERR_C_PRINCIPAL_UNKNOWN: i32 = 6;
/// KRB-ERROR code: pre-authentication failed (wrong password).
const ERR_PREAUTH_FAILED: i32 = 24;
/// KRB-ERROR code: integrity check failed; MIT KDCs answer a wrong-password AS-REQ with it.
const ERR_BAD_INTEGRITY: i32 = 31;
/// PA-DATA types by which a client pre-authenticates: ENC-TIMESTAMP (RFC 4120), PK-AS-REQ old
/// and new (RFC 4556), FX-FAST and ENCRYPTED-CHALLENGE (RFC 6113), SPAKE
/// (draft-ietf-kitten-krb-spake-preauth).
const PREAUTH_PADATA: [i32; 6] = [2, 14, 16, 136, 138, 151];
/// KDC option `renew` (bit 30 of KDCOptions).
const KDC_OPT_RENEW: u32 = 0x8000_0000 >> 30;
/// Microseconds per second.
const MICROS: i64 = 1_000_000;
pub use netmonitor_common::window::{MAX_DISTINCT_PER_KEY, MAX_EVENTS_PER_KEY};
/// Most names listed in an alert's evidence.
pub const MAX_EVIDENCE_NAMES: usize = 20;
/// Most keys counted for the statistics' top lists.
pub const MAX_TOP_TRACKED: usize = 4096;
/// Entries in each top list of [`KrbStats`].
pub const TOP_N: usize = 10;
/// Most distinct error codes / etypes counted separately in [`KrbStats`] (the rest are summed).
pub const MAX_STAT_CODES: usize = 256;

/// One detection's fixed description: what the alert says and how ATT&CK names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DetectionRule {
    /// Stable signature id (the 2 100 000 block is Kerberos).
    pub signature_id: u32,
    /// Human-readable name.
    pub signature: &'static str,
    /// Suricata classification text.
    pub category: &'static str,
    /// Default severity, 1 (high) to 4.
    pub severity: u8,
    /// Machine-readable threat type.
    pub threat_type: &'static str,
    /// MITRE ATT&CK technique ids.
    pub mitre: &'static [&'static str],
}

/// A TGS-REP carrying an RC4/DES service ticket for a service other than krbtgt.
pub const RULE_KERBEROAST_WEAK_TICKET: DetectionRule = DetectionRule {
    signature_id: 2_100_001,
    signature:
        "NetMonitor KERBEROS Kerberoasting: service ticket issued with weak encryption (RC4/DES)",
    category: "Attempted User Privilege Gain",
    severity: 2,
    threat_type: "kerberoasting",
    mitre: &["T1558.003"],
};
/// One client requesting tickets for many distinct services.
pub const RULE_KERBEROAST_MANY_SPNS: DetectionRule = DetectionRule {
    signature_id: 2_100_002,
    signature: "NetMonitor KERBEROS Kerberoasting: service tickets requested for many SPNs",
    category: "Attempted User Privilege Gain",
    severity: 1,
    threat_type: "kerberoasting",
    mitre: &["T1558.003"],
};
/// An AS-REP answering an AS-REQ that carried no pre-authentication.
pub const RULE_ASREP_ROAST: DetectionRule = DetectionRule {
    signature_id: 2_100_003,
    signature: "NetMonitor KERBEROS AS-REP roasting: TGT issued without pre-authentication",
    category: "Attempted User Privilege Gain",
    severity: 2,
    threat_type: "asrep_roasting",
    mitre: &["T1558.004"],
};
/// Repeated pre-authentication failures for one account from one client.
pub const RULE_BRUTE_FORCE: DetectionRule = DetectionRule {
    signature_id: 2_100_004,
    signature:
        "NetMonitor KERBEROS brute force: repeated pre-authentication failures for one account",
    category: "Unsuccessful User Privilege Gain",
    severity: 2,
    threat_type: "kerberos_bruteforce",
    mitre: &["T1110.001"],
};
/// Pre-authentication failures for many accounts from one client.
pub const RULE_PASSWORD_SPRAY: DetectionRule = DetectionRule {
    signature_id: 2_100_005,
    signature:
        "NetMonitor KERBEROS password spraying: pre-authentication failures across many accounts",
    category: "Unsuccessful User Privilege Gain",
    severity: 1,
    threat_type: "password_spraying",
    mitre: &["T1110.003"],
};
/// Many unknown client principals asked for by one client.
pub const RULE_USER_ENUMERATION: DetectionRule = DetectionRule {
    signature_id: 2_100_006,
    signature: "NetMonitor KERBEROS user enumeration: many unknown principals requested",
    category: "Attempted Information Leak",
    severity: 2,
    threat_type: "kerberos_user_enumeration",
    mitre: &["T1087.002"],
};
/// A request offering only RC4/DES encryption types.
pub const RULE_WEAK_ETYPES_REQUESTED: DetectionRule = DetectionRule {
    signature_id: 2_100_007,
    signature: "NetMonitor KERBEROS weak encryption: request offers only RC4/DES encryption types",
    category: "Potentially Bad Traffic",
    severity: 3,
    threat_type: "kerberos_weak_encryption",
    mitre: &["T1562.010", "T1558"],
};
/// A reply encrypted with RC4/DES although the client offered AES.
pub const RULE_ENCRYPTION_DOWNGRADE: DetectionRule = DetectionRule {
    signature_id: 2_100_008,
    signature: "NetMonitor KERBEROS encryption downgrade: weak reply encryption although the client offered AES",
    category: "Potentially Bad Traffic",
    severity: 2,
    threat_type: "kerberos_downgrade",
    mitre: &["T1562.010", "T1558"],
};
/// Many ticket renewals from one client.
pub const RULE_TICKET_RENEWALS: DetectionRule = DetectionRule {
    signature_id: 2_100_009,
    signature: "NetMonitor KERBEROS unusual ticket requests: many ticket renewals from one client",
    category: "Potentially Bad Traffic",
    severity: 3,
    threat_type: "kerberos_ticket_abuse",
    mitre: &["T1558", "T1550.003"],
};

/// Every Kerberos detection, for MITRE mapping tools and documentation.
pub const RULES: [DetectionRule; 9] = [
    RULE_KERBEROAST_WEAK_TICKET,
    RULE_KERBEROAST_MANY_SPNS,
    RULE_ASREP_ROAST,
    RULE_BRUTE_FORCE,
    RULE_PASSWORD_SPRAY,
    RULE_USER_ENUMERATION,
    RULE_WEAK_ETYPES_REQUESTED,
    RULE_ENCRYPTION_DOWNGRADE,
    RULE_TICKET_RENEWALS,
];

/// Thresholds of the Kerberos detections; the `[kerberos]` table of the application config.
/// A count threshold of 0 turns that detection off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KrbDetectConfig {
    /// Turns every Kerberos detection on or off (statistics are always kept).
    pub enabled: bool,
    /// Sliding window length, and the least time between two alerts of one detection for one key.
    pub window_secs: u64,
    /// Alert on a TGS-REP whose service ticket is RC4/DES for a service other than krbtgt.
    pub kerberoast_weak_ticket: bool,
    /// Distinct service principals one client may request within a window before it is
    /// reported as Kerberoasting.
    pub kerberoast_distinct_spns: usize,
    /// Alert on an AS-REP answering a request without pre-authentication.
    pub asrep_roasting: bool,
    /// Pre-authentication failures for one account from one client within a window.
    pub bruteforce_failures: usize,
    /// Distinct accounts failing pre-authentication from one client within a window.
    pub spray_distinct_users: usize,
    /// Distinct unknown principals (KDC_ERR_C_PRINCIPAL_UNKNOWN) one client may ask for
    /// within a window.
    pub enum_distinct_users: usize,
    /// Alert on requests offering only RC4/DES, and on weak reply encryption when AES was offered.
    pub weak_encryption: bool,
    /// Ticket renewal requests (KDC option `renew`) from one client within a window.
    pub renewal_requests: usize,
    /// Most keys each tracking table holds; the least recently seen are evicted first.
    pub max_tracked: usize,
}

impl Default for KrbDetectConfig {
    fn default() -> Self {
        KrbDetectConfig {
            enabled: true,
            window_secs: 300,
            kerberoast_weak_ticket: true,
            kerberoast_distinct_spns: 15,
            asrep_roasting: true,
            bruteforce_failures: 5,
            spray_distinct_users: 10,
            enum_distinct_users: 10,
            weak_encryption: true,
            renewal_requests: 20,
            max_tracked: 10_000,
        }
    }
}

/// A configuration value out of range, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("kerberos.{field}: {reason}")]
pub struct KrbConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl KrbDetectConfig {
    /// Checks the ranges serde cannot express.
    pub fn validate(&self) -> Result<(), KrbConfigError> {
        if self.window_secs == 0 || self.window_secs > 7 * 86_400 {
            return Err(KrbConfigError {
                field: "window_secs",
                reason: "must be between 1 and 604800 seconds",
            });
        }
        if self.max_tracked < 16 {
            return Err(KrbConfigError {
                field: "max_tracked",
                reason: "must be at least 16",
            });
        }
        for (field, v) in [
            ("kerberoast_distinct_spns", self.kerberoast_distinct_spns),
            ("spray_distinct_users", self.spray_distinct_users),
            ("enum_distinct_users", self.enum_distinct_users),
        ] {
            if v > MAX_DISTINCT_PER_KEY {
                return Err(KrbConfigError {
                    field,
                    reason: "must not exceed MAX_DISTINCT_PER_KEY (1024)",
                });
            }
        }
        for (field, v) in [
            ("bruteforce_failures", self.bruteforce_failures),
            ("renewal_requests", self.renewal_requests),
        ] {
            if v > MAX_EVENTS_PER_KEY {
                return Err(KrbConfigError {
                    field,
                    reason: "must not exceed MAX_EVENTS_PER_KEY (1024)",
                });
            }
        }
        Ok(())
    }
}

/// What the detector remembers about the last request on a flow until it is answered.
#[derive(Debug, Default, Clone)]
struct Pending {
    msg_type: Option<KrbMsgType>,
    cname: Option<String>,
    realm: Option<String>,
    preauth: bool,
    padata: Vec<i32>,
    etypes: Vec<i32>,
}

impl Pending {
    fn offered_strong(&self) -> bool {
        self.etypes.iter().any(|e| !is_weak_etype(*e))
    }
}

/// Counts per key kept for the top lists; when full the lower half is dropped.
#[derive(Debug, Default)]
struct TopCounter(HashMap<String, u64>);

impl TopCounter {
    fn add(&mut self, key: &str) {
        if let Some(n) = self.0.get_mut(key) {
            *n += 1;
            return;
        }
        if self.0.len() >= MAX_TOP_TRACKED {
            let mut counts: Vec<u64> = self.0.values().copied().collect();
            let mid = counts.len() / 2;
            let (_, median, _) = counts.select_nth_unstable(mid);
            let median = *median;
            self.0.retain(|_, n| *n > median);
        }
        self.0.insert(key.to_owned(), 1);
    }

    fn top(&self) -> Vec<TopCount> {
        let mut v: Vec<TopCount> = self
            .0
            .iter()
            .map(|(k, n)| TopCount {
                name: k.clone(),
                count: *n,
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        v.truncate(TOP_N);
        v
    }
}

/// One entry of a top list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopCount {
    /// Client address, account (`name@REALM`) or service principal.
    pub name: String,
    /// Messages counted for it.
    pub count: u64,
}

/// Running Kerberos statistics (the `get_kerberos_stats` tool).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KrbStats {
    /// Messages inspected.
    pub messages: u64,
    /// Messages per type (`KRB_AS_REQ`, …).
    pub by_msg_type: BTreeMap<String, u64>,
    /// KRB-ERRORs per code name (`KDC_ERR_PREAUTH_FAILED`, …).
    pub errors_by_code: BTreeMap<String, u64>,
    /// Replies whose reply or ticket encryption is weak.
    pub weak_encryption_messages: u64,
    /// Weak etypes seen in replies and tickets, by name (`rc4-hmac`, …).
    pub weak_etypes: BTreeMap<String, u64>,
    /// Requests that offered only weak etypes.
    pub weak_only_requests: u64,
    /// Alerts raised per threat type.
    pub alerts_by_threat: BTreeMap<String, u64>,
    /// Clients by messages.
    pub top_clients: Vec<TopCount>,
    /// Accounts (`name@REALM`) by AS-REQs and TGS-REPs naming them.
    pub top_accounts: Vec<TopCount>,
    /// Services by requests naming them.
    pub top_services: Vec<TopCount>,
    /// Clients by replies with weak encryption.
    pub top_weak_clients: Vec<TopCount>,
    /// Keys evicted from the detection tables because they were full.
    pub evicted_keys: u64,
}

/// Accumulates [`KrbStats`] with bounded memory.
#[derive(Debug, Default)]
struct StatsState {
    messages: u64,
    by_type: BTreeMap<&'static str, u64>,
    errors: BTreeMap<i32, u64>,
    weak_messages: u64,
    weak_etypes: BTreeMap<i32, u64>,
    weak_only_requests: u64,
    alerts: BTreeMap<&'static str, u64>,
    clients: TopCounter,
    accounts: TopCounter,
    services: TopCounter,
    weak_clients: TopCounter,
}

/// Counts `code` in a bounded per-code map; codes beyond the cap are folded into `i32::MIN`.
fn count_code(map: &mut BTreeMap<i32, u64>, code: i32) {
    let key = if map.contains_key(&code) || map.len() < MAX_STAT_CODES {
        code
    } else {
        i32::MIN
    };
    *map.entry(key).or_default() += 1;
}

impl StatsState {
    fn record(&mut self, client: IpAddr, msg: &KrbMessage) {
        self.messages += 1;
        *self.by_type.entry(msg.msg_type.name()).or_default() += 1;
        self.clients.add(&client.to_string());
        if let Some(code) = msg.error_code.filter(|_| msg.msg_type == KrbMsgType::Error) {
            count_code(&mut self.errors, code);
        }
        if matches!(msg.msg_type, KrbMsgType::AsReq | KrbMsgType::TgsRep) {
            if let Some(name) = &msg.cname {
                self.accounts
                    .add(&account_display(name, msg.realm.as_deref()));
            }
        }
        if matches!(msg.msg_type, KrbMsgType::AsReq | KrbMsgType::TgsReq) {
            if let Some(s) = &msg.sname {
                self.services.add(s);
            }
            if weak_only(msg) {
                self.weak_only_requests += 1;
            }
        }
        let weak: Vec<i32> = [msg.encryption, msg.ticket_encryption]
            .into_iter()
            .flatten()
            .filter(|e| is_weak_etype(*e))
            .collect();
        if !weak.is_empty() {
            self.weak_messages += 1;
            self.weak_clients.add(&client.to_string());
            for e in weak {
                count_code(&mut self.weak_etypes, e);
            }
        }
    }
}

/// `name@REALM`, or the name alone when the realm is unknown.
fn account_display(name: &str, realm: Option<&str>) -> String {
    match realm {
        Some(r) if !name.contains('@') => format!("{name}@{r}"),
        _ => name.to_owned(),
    }
}

/// True when a request lists etypes and all of them are weak.
fn weak_only(msg: &KrbMessage) -> bool {
    !msg.requested_etypes.is_empty() && msg.requested_etypes.iter().all(|e| is_weak_etype(*e))
}

/// Whether a service principal is the ticket-granting service (its tickets are not roastable).
fn is_krbtgt(sname: &str) -> bool {
    sname
        .split('/')
        .next()
        .is_some_and(|first| first.eq_ignore_ascii_case("krbtgt"))
}

fn etype_names(etypes: &[i32]) -> Vec<String> {
    etypes.iter().map(|e| etype_name(*e)).collect()
}

/// The Kerberos detectors: fed every decoded message, returns the alerts it raises.
#[derive(Debug)]
pub struct KerberosDetector {
    cfg: KrbDetectConfig,
    window: i64,
    pending: Bounded<u64, Pending>,
    spns: Bounded<IpAddr, Distinct<String>>,
    preauth_failures: Bounded<(IpAddr, String), Times>,
    sprayed: Bounded<IpAddr, Distinct<String>>,
    unknown_users: Bounded<IpAddr, Distinct<String>>,
    renewals: Bounded<IpAddr, Times>,
    last_alert: Bounded<(u32, String), ()>,
    stats: StatsState,
}

impl KerberosDetector {
    /// A detector with the given thresholds (validate them first with
    /// [`KrbDetectConfig::validate`]; out-of-range values are clamped here).
    pub fn new(cfg: KrbDetectConfig) -> Self {
        let cap = cfg.max_tracked.max(16);
        let window = i64::try_from(cfg.window_secs.max(1))
            .unwrap_or(i64::MAX)
            .saturating_mul(MICROS);
        KerberosDetector {
            window,
            pending: Bounded::new(cap),
            spns: Bounded::new(cap),
            preauth_failures: Bounded::new(cap),
            sprayed: Bounded::new(cap),
            unknown_users: Bounded::new(cap),
            renewals: Bounded::new(cap),
            last_alert: Bounded::new(cap),
            stats: StatsState::default(),
            cfg,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &KrbDetectConfig {
        &self.cfg
    }

    /// Changes the thresholds while running (windows and counts keep what they hold). The size
    /// of the tracking tables (`max_tracked`) is fixed at construction.
    pub fn set_config(&mut self, cfg: KrbDetectConfig) -> Result<(), KrbConfigError> {
        cfg.validate()?;
        if cfg.max_tracked != self.cfg.max_tracked {
            return Err(KrbConfigError {
                field: "max_tracked",
                reason: "takes effect only at a restart",
            });
        }
        self.window = i64::try_from(cfg.window_secs.max(1))
            .unwrap_or(i64::MAX)
            .saturating_mul(MICROS);
        self.cfg = cfg;
        Ok(())
    }

    /// Inspects one decoded message (`header.ts` = capture time, `header.key.src_ip` = the
    /// client) and returns the alerts it completes.
    pub fn inspect(&mut self, header: &EventHeader, msg: &KrbMessage) -> Vec<Alert> {
        let client = header.key.src_ip;
        self.stats.record(client, msg);
        let mut alerts = Vec::new();
        if !self.cfg.enabled {
            return alerts;
        }
        let now = header.ts.0;
        match msg.msg_type {
            KrbMsgType::AsReq | KrbMsgType::TgsReq => {
                self.on_request(header.flow_id, client, now, msg, &mut alerts)
            }
            KrbMsgType::AsRep | KrbMsgType::TgsRep => {
                self.on_reply(header.flow_id, client, now, msg, &mut alerts)
            }
            KrbMsgType::Error => self.on_error(header.flow_id, client, now, msg, &mut alerts),
            KrbMsgType::ApReq | KrbMsgType::ApRep => {}
        }
        for a in &alerts {
            let threat = RULES
                .iter()
                .find(|r| r.signature_id == a.signature_id)
                .map_or("kerberos", |r| r.threat_type);
            *self.stats.alerts.entry(threat).or_default() += 1;
        }
        alerts
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> KrbStats {
        let s = &self.stats;
        let code_name = |c: i32| {
            if c == i32::MIN {
                "other".to_owned()
            } else {
                error_code_name(c)
            }
        };
        let etype = |c: i32| {
            if c == i32::MIN {
                "other".to_owned()
            } else {
                etype_name(c)
            }
        };
        KrbStats {
            messages: s.messages,
            by_msg_type: s
                .by_type
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            errors_by_code: s.errors.iter().map(|(k, v)| (code_name(*k), *v)).collect(),
            weak_encryption_messages: s.weak_messages,
            weak_etypes: s.weak_etypes.iter().map(|(k, v)| (etype(*k), *v)).collect(),
            weak_only_requests: s.weak_only_requests,
            alerts_by_threat: s
                .alerts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            top_clients: s.clients.top(),
            top_accounts: s.accounts.top(),
            top_services: s.services.top(),
            top_weak_clients: s.weak_clients.top(),
            evicted_keys: self.pending.evicted
                + self.spns.evicted
                + self.preauth_failures.evicted
                + self.sprayed.evicted
                + self.unknown_users.evicted
                + self.renewals.evicted
                + self.last_alert.evicted,
        }
    }

    /// True (and remembered) when `rule` has not alerted for `key` within the window.
    fn first_in_window(&mut self, rule: &DetectionRule, key: String, now: i64) -> bool {
        let window = self.window;
        let fresh = match self
            .last_alert
            .last_touched(&(rule.signature_id, key.clone()))
        {
            // Far in the past counts as fresh too: a replay of an older capture.
            Some(last) => now.saturating_sub(last) >= window || last.saturating_sub(now) >= window,
            None => true,
        };
        if fresh {
            self.last_alert.remove(&(rule.signature_id, key.clone()));
            self.last_alert.touch((rule.signature_id, key), now, window);
        }
        fresh
    }

    fn raise(
        &mut self,
        rule: &DetectionRule,
        key: String,
        now: i64,
        severity: u8,
        evidence: Value,
        alerts: &mut Vec<Alert>,
    ) {
        if self.first_in_window(rule, key, now) {
            alerts.push(Alert {
                signature_id: rule.signature_id,
                signature: rule.signature.to_owned(),
                category: rule.category.to_owned(),
                severity,
                threat_type: rule.threat_type.to_owned(),
                mitre: rule.mitre.iter().map(|m| (*m).to_owned()).collect(),
                evidence,
            });
        }
    }

    fn on_request(
        &mut self,
        flow: u64,
        client: IpAddr,
        now: i64,
        msg: &KrbMessage,
        alerts: &mut Vec<Alert>,
    ) {
        let window = self.window;
        let secs = self.cfg.window_secs;
        *self.pending.touch(flow, now, window) = Pending {
            msg_type: Some(msg.msg_type),
            cname: msg.cname.clone(),
            realm: msg.realm.clone(),
            preauth: msg.padata_types.iter().any(|p| PREAUTH_PADATA.contains(p)),
            padata: msg.padata_types.clone(),
            etypes: msg.requested_etypes.clone(),
        };
        if self.cfg.weak_encryption && weak_only(msg) {
            let evidence = json!({
                "client": client.to_string(),
                "request": msg.msg_type.name(),
                "cname": msg.cname,
                "realm": msg.realm,
                "sname": msg.sname,
                "requested_etypes": etype_names(&msg.requested_etypes),
            });
            let sev = RULE_WEAK_ETYPES_REQUESTED.severity;
            self.raise(
                &RULE_WEAK_ETYPES_REQUESTED,
                client.to_string(),
                now,
                sev,
                evidence,
                alerts,
            );
        }
        if msg.msg_type != KrbMsgType::TgsReq {
            return;
        }
        let threshold = self.cfg.kerberoast_distinct_spns;
        if let Some(sname) = msg.sname.as_deref().filter(|s| !is_krbtgt(s)) {
            if threshold > 0 {
                let set = self.spns.touch(client, now, window);
                let n = set.insert(sname.to_ascii_lowercase(), now, window);
                if n >= threshold {
                    let evidence = json!({
                        "client": client.to_string(),
                        "distinct_spns": n,
                        "threshold": threshold,
                        "window_secs": secs,
                        "spns": set.sample(MAX_EVIDENCE_NAMES),
                    });
                    let sev = RULE_KERBEROAST_MANY_SPNS.severity;
                    self.raise(
                        &RULE_KERBEROAST_MANY_SPNS,
                        client.to_string(),
                        now,
                        sev,
                        evidence,
                        alerts,
                    );
                }
            }
        }
        let threshold = self.cfg.renewal_requests;
        if threshold > 0 && msg.kdc_options.is_some_and(|o| o & KDC_OPT_RENEW != 0) {
            let n = self.renewals.touch(client, now, window).push(now, window);
            if n >= threshold {
                let evidence = json!({
                    "client": client.to_string(),
                    "renewals": n,
                    "threshold": threshold,
                    "window_secs": secs,
                    "last_sname": msg.sname,
                    "kdc_options": msg.kdc_options.map(|o| format!("{o:#010x}")),
                });
                let sev = RULE_TICKET_RENEWALS.severity;
                self.raise(
                    &RULE_TICKET_RENEWALS,
                    client.to_string(),
                    now,
                    sev,
                    evidence,
                    alerts,
                );
            }
        }
    }

    fn on_reply(
        &mut self,
        flow: u64,
        client: IpAddr,
        now: i64,
        msg: &KrbMessage,
        alerts: &mut Vec<Alert>,
    ) {
        let pending = self.pending.remove(&flow);
        let account = msg
            .cname
            .as_deref()
            .map(|c| account_display(c, msg.realm.as_deref()));
        if msg.msg_type == KrbMsgType::AsRep && self.cfg.asrep_roasting {
            if let Some(p) = pending
                .as_ref()
                .filter(|p| p.msg_type == Some(KrbMsgType::AsReq) && !p.preauth)
            {
                let weak = msg.encryption.is_some_and(is_weak_etype);
                let evidence = json!({
                    "client": client.to_string(),
                    "account": account,
                    "sname": msg.sname,
                    "reply_encryption": msg.encryption.map(etype_name),
                    "request_padata_types": p.padata,
                    "requested_etypes": etype_names(&p.etypes),
                });
                let key = format!(
                    "{client}|{}",
                    account.as_deref().unwrap_or("").to_lowercase()
                );
                let sev = if weak { 1 } else { RULE_ASREP_ROAST.severity };
                self.raise(&RULE_ASREP_ROAST, key, now, sev, evidence, alerts);
            }
        }
        if msg.msg_type == KrbMsgType::TgsRep && self.cfg.kerberoast_weak_ticket {
            if let (Some(etype), Some(sname)) = (msg.ticket_encryption, msg.sname.as_deref()) {
                if is_weak_etype(etype) && !is_krbtgt(sname) {
                    let forced = pending
                        .as_ref()
                        .is_some_and(|p| !p.etypes.is_empty() && !p.offered_strong());
                    let evidence = json!({
                        "client": client.to_string(),
                        "account": account,
                        "sname": sname,
                        "ticket_encryption": etype_name(etype),
                        "requested_etypes": pending.as_ref().map(|p| etype_names(&p.etypes)),
                        "client_offered_only_weak": forced,
                    });
                    let sev = if forced {
                        1
                    } else {
                        RULE_KERBEROAST_WEAK_TICKET.severity
                    };
                    self.raise(
                        &RULE_KERBEROAST_WEAK_TICKET,
                        client.to_string(),
                        now,
                        sev,
                        evidence,
                        alerts,
                    );
                }
            }
        }
        if self.cfg.weak_encryption {
            if let (Some(etype), Some(p)) = (msg.encryption, pending.as_ref()) {
                if is_weak_etype(etype) && p.offered_strong() {
                    let evidence = json!({
                        "client": client.to_string(),
                        "reply": msg.msg_type.name(),
                        "account": account,
                        "sname": msg.sname,
                        "reply_encryption": etype_name(etype),
                        "requested_etypes": etype_names(&p.etypes),
                    });
                    let sev = RULE_ENCRYPTION_DOWNGRADE.severity;
                    self.raise(
                        &RULE_ENCRYPTION_DOWNGRADE,
                        client.to_string(),
                        now,
                        sev,
                        evidence,
                        alerts,
                    );
                }
            }
        }
    }

    fn on_error(
        &mut self,
        flow: u64,
        client: IpAddr,
        now: i64,
        msg: &KrbMessage,
        alerts: &mut Vec<Alert>,
    ) {
        let pending = self.pending.remove(&flow).unwrap_or_default();
        let Some(code) = msg.error_code else {
            return;
        };
        let answered_as_req = msg.failed_request == Some(KrbMsgType::AsReq)
            || pending.msg_type == Some(KrbMsgType::AsReq);
        let wrong_password =
            code == ERR_PREAUTH_FAILED || (code == ERR_BAD_INTEGRITY && answered_as_req);
        if !wrong_password && code != ERR_C_PRINCIPAL_UNKNOWN {
            return;
        }
        let window = self.window;
        let secs = self.cfg.window_secs;
        // The KDC may leave the client name out of the error; the request had it.
        let name = msg.cname.clone().or(pending.cname);
        let realm = msg.realm.clone().or(pending.realm);
        let account = name
            .as_deref()
            .map(|n| account_display(n, realm.as_deref()))
            .unwrap_or_else(|| "<unknown>".to_owned());
        let account_key = account.to_lowercase();
        if code == ERR_C_PRINCIPAL_UNKNOWN {
            let threshold = self.cfg.enum_distinct_users;
            if threshold == 0 {
                return;
            }
            let set = self.unknown_users.touch(client, now, window);
            let n = set.insert(account_key, now, window);
            if n >= threshold {
                let evidence = json!({
                    "client": client.to_string(),
                    "error_code": error_code_name(code),
                    "distinct_unknown_principals": n,
                    "threshold": threshold,
                    "window_secs": secs,
                    "principals": set.sample(MAX_EVIDENCE_NAMES),
                });
                let sev = RULE_USER_ENUMERATION.severity;
                self.raise(
                    &RULE_USER_ENUMERATION,
                    client.to_string(),
                    now,
                    sev,
                    evidence,
                    alerts,
                );
            }
            return;
        }
        let threshold = self.cfg.bruteforce_failures;
        if threshold > 0 {
            let n = self
                .preauth_failures
                .touch((client, account_key.clone()), now, window)
                .push(now, window);
            if n >= threshold {
                let evidence = json!({
                    "client": client.to_string(),
                    "account": account,
                    "error_code": error_code_name(code),
                    "failures": n,
                    "threshold": threshold,
                    "window_secs": secs,
                });
                let sev = RULE_BRUTE_FORCE.severity;
                self.raise(
                    &RULE_BRUTE_FORCE,
                    format!("{client}|{account_key}"),
                    now,
                    sev,
                    evidence,
                    alerts,
                );
            }
        }
        let threshold = self.cfg.spray_distinct_users;
        if threshold > 0 {
            let set = self.sprayed.touch(client, now, window);
            let n = set.insert(account_key, now, window);
            if n >= threshold {
                let evidence = json!({
                    "client": client.to_string(),
                    "error_code": error_code_name(code),
                    "distinct_accounts": n,
                    "threshold": threshold,
                    "window_secs": secs,
                    "accounts": set.sample(MAX_EVIDENCE_NAMES),
                });
                let sev = RULE_PASSWORD_SPRAY.severity;
                self.raise(
                    &RULE_PASSWORD_SPRAY,
                    client.to_string(),
                    now,
                    sev,
                    evidence,
                    alerts,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
