//! `[soar]`: where playbooks live, how long approvals wait, and how block actions reach
//! nftables.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[soar]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoarConfig {
    /// Whether the SOAR actor runs.
    pub enabled: bool,
    /// Directory of `*.toml` playbooks (none: no playbooks).
    pub playbooks_dir: Option<PathBuf>,
    /// Seconds a pending action waits for a decision before it expires.
    pub approval_expiry_secs: u64,
    /// Seconds between checks of the playbook directory for changes.
    pub reload_check_secs: u64,
    /// nftables.
    pub nft: NftConfig,
    /// Commands actions may run, by name: an argument vector (no shell) where `{target}` is
    /// replaced by the action's target (`block_domain` uses the one named `block_domain`).
    pub commands: BTreeMap<String, Vec<String>>,
    /// Seconds a command or webhook may take.
    pub action_timeout_secs: u64,
    /// Mail relay for `notify` actions with `to` (none: mail is refused at load).
    pub smtp: Option<SmtpConfig>,
}

/// `[soar.smtp]`: a relay that accepts mail without authentication (a local MTA).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `host:port`.
    pub server: String,
    /// Envelope and header sender.
    pub from: String,
    /// Name given in EHLO.
    #[serde(default = "default_helo")]
    pub helo: String,
}

fn default_helo() -> String {
    "netmonitor".into()
}

/// Whether `a` is a plain mail address (no spaces, controls or angle brackets that could
/// smuggle SMTP commands or headers).
pub fn plain_address(a: &str) -> bool {
    a.contains('@')
        && a.len() <= 254
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
}

/// `[soar.nft]`: the sets block actions add to.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NftConfig {
    /// Record the exact command and run nothing (the default).
    pub dry_run: bool,
    /// The `nft` binary.
    pub binary: PathBuf,
    /// Address family of the table (`inet`).
    pub family: String,
    /// Table name.
    pub table: String,
    /// Set of blocked IPv4 addresses.
    pub block_set_v4: String,
    /// Set of blocked IPv6 addresses.
    pub block_set_v6: String,
    /// Set of rate-limited IPv4 addresses.
    pub rate_limit_set_v4: String,
    /// Set of rate-limited IPv6 addresses.
    pub rate_limit_set_v6: String,
}

impl Default for NftConfig {
    fn default() -> Self {
        NftConfig {
            dry_run: true,
            binary: "nft".into(),
            family: "inet".into(),
            table: "netmonitor".into(),
            block_set_v4: "blocklist_v4".into(),
            block_set_v6: "blocklist_v6".into(),
            rate_limit_set_v4: "ratelimit_v4".into(),
            rate_limit_set_v6: "ratelimit_v6".into(),
        }
    }
}

impl Default for SoarConfig {
    fn default() -> Self {
        SoarConfig {
            enabled: true,
            playbooks_dir: None,
            approval_expiry_secs: 3600,
            reload_check_secs: 5,
            nft: NftConfig::default(),
            commands: BTreeMap::new(),
            action_timeout_secs: 30,
            smtp: None,
        }
    }
}

impl SoarConfig {
    /// Checks the settings, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.approval_expiry_secs == 0 {
            return Err("approval_expiry_secs: must be positive".into());
        }
        if self.action_timeout_secs == 0 || self.action_timeout_secs > 600 {
            return Err("action_timeout_secs: must be 1..600".into());
        }
        for (name, argv) in &self.commands {
            if argv.is_empty() || argv[0].is_empty() {
                return Err(format!("commands.{name}: needs a program"));
            }
        }
        if let Some(m) = &self.smtp {
            if !plain_address(&m.from) {
                return Err("smtp.from: a plain mail address".into());
            }
            if !m.server.contains(':') {
                return Err("smtp.server: host:port".into());
            }
        }
        let n = &self.nft;
        for (field, v) in [
            ("family", &n.family),
            ("table", &n.table),
            ("block_set_v4", &n.block_set_v4),
            ("block_set_v6", &n.block_set_v6),
            ("rate_limit_set_v4", &n.rate_limit_set_v4),
            ("rate_limit_set_v6", &n.rate_limit_set_v6),
        ] {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("nft.{field}: letters, digits and _ only"));
            }
        }
        Ok(())
    }
}
