//! Playbooks: TOML files that say which alerts trigger them, on which conditions, and which
//! actions follow, in order. Loaded and checked as a whole directory; every error names the
//! file, the line and the field.
//!
//! ```toml
//! name = "contain-scanners"
//! description = "Block internal hosts that scan and then attack"
//! approver_scope = "read_write"      # or "admin"
//!
//! [trigger]                          # every given field must match
//! kinds = ["port_scan", "brute_force"]
//! max_severity = 2                   # 1 = high
//! # risk_level = "high"              # a risk_threshold alert reaching this level
//! # chain_stages = 3                 # an attack_chain alert with this many stages
//! # indicator = true                 # a threat-feed match
//!
//! [conditions]
//! subject = "src"                    # the address conditions look at
//! criticality = ["high", "critical"] # its criticality (risk scoring)
//! templates = ["workstation"]        # its device template
//! hours_utc = "8-18"                 # the alert's hour of day
//! unless_whitelisted = true          # never act on a whitelisted address
//!
//! [[actions]]
//! type = "notify"
//! url = "https://hooks.example/soc"
//! secret_env = "SOAR_WEBHOOK_SECRET" # HMAC-SHA256 key, from the environment
//!
//! [[actions]]
//! type = "capture"                   # the scanner's packets from the ring buffer
//!
//! [[actions]]
//! type = "block_ip"
//! target = "src"
//! approval = true                    # destructive actions default to true
//! cooldown_secs = 3600
//! max_per_hour = 10
//! ```

use crate::config::SoarConfig;
use netmonitor_devices::templates::CRITICALITIES;
use netmonitor_risk::score::Level;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What an action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// POST the alert as JSON to a webhook, signed with HMAC-SHA256.
    Notify,
    /// Gather the device, risk and chain of the target into the record.
    Enrich,
    /// Add the address to the nftables block set.
    BlockIp,
    /// Run the `block_domain` command on the alert's domain.
    BlockDomain,
    /// Add the address to the nftables rate-limit set.
    RateLimit,
    /// Run a configured command on the target.
    Command,
    /// Acknowledge the alerts of the target of this kind in the last hour.
    Acknowledge,
    /// Export the target's packets from the ring buffer to a pcap (recorded in pcap_captures).
    Capture,
    /// Label the target's device in the device inventory.
    TagDevice,
}

impl ActionKind {
    /// Whether it changes something outside NetMonitor (then approval is the default).
    pub fn destructive(self) -> bool {
        matches!(
            self,
            ActionKind::BlockIp
                | ActionKind::BlockDomain
                | ActionKind::RateLimit
                | ActionKind::Command
        )
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Notify => "notify",
            ActionKind::Enrich => "enrich",
            ActionKind::BlockIp => "block_ip",
            ActionKind::BlockDomain => "block_domain",
            ActionKind::RateLimit => "rate_limit",
            ActionKind::Command => "command",
            ActionKind::Acknowledge => "acknowledge",
            ActionKind::Capture => "capture",
            ActionKind::TagDevice => "tag_device",
        }
    }
}

/// Which end of the alert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The alert's source.
    #[default]
    Src,
    /// Its destination.
    Dst,
}

/// When a playbook runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Trigger {
    /// Alert kinds (any of them).
    pub kinds: Vec<String>,
    /// At most this severity number (1 = high).
    pub max_severity: Option<u8>,
    /// A `risk_threshold` alert reaching this level or higher.
    pub risk_level: Option<String>,
    /// An `attack_chain` alert with at least this many stages.
    pub chain_stages: Option<usize>,
    /// A threat-feed match.
    pub indicator: bool,
}

/// What must hold besides the trigger.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Conditions {
    /// The address they look at.
    pub subject: End,
    /// Its criticality is one of these.
    pub criticality: Vec<String>,
    /// Its device template is one of these.
    pub templates: Vec<String>,
    /// The alert's hour (UTC), `8-18` (from 8:00 to 17:59) or `22-6`.
    pub hours_utc: Option<String>,
    /// Never act on an address a whitelist entry covers.
    pub unless_whitelisted: bool,
}

impl Default for Conditions {
    fn default() -> Self {
        Conditions {
            subject: End::Src,
            criticality: Vec::new(),
            templates: Vec::new(),
            hours_utc: None,
            unless_whitelisted: true,
        }
    }
}

/// One action.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// What it does.
    #[serde(rename = "type")]
    pub kind: ActionKind,
    /// Which address it acts on.
    #[serde(default)]
    pub target: End,
    /// Whether a person must approve it (default: yes for destructive actions).
    pub approval: Option<bool>,
    /// Seconds before the same action runs again on the same target.
    #[serde(default = "default_cooldown")]
    pub cooldown_secs: u64,
    /// At most this many per hour, all targets.
    #[serde(default = "default_per_hour")]
    pub max_per_hour: u32,
    /// `notify`: the webhook.
    pub url: Option<String>,
    /// `notify`: the environment variable holding the HMAC key.
    pub secret_env: Option<String>,
    /// `notify`: mail recipients (through `[soar.smtp]`).
    pub to: Option<Vec<String>>,
    /// `command`: the name of a command in `[soar.commands]`.
    pub command: Option<String>,
    /// `tag_device`: the label.
    pub tag: Option<String>,
    /// `capture`: at most this many packets (default 10,000).
    pub max_packets: Option<u64>,
}

fn default_cooldown() -> u64 {
    300
}
fn default_per_hour() -> u32 {
    20
}

impl Action {
    /// Whether it waits for a person.
    pub fn needs_approval(&self) -> bool {
        self.approval.unwrap_or(self.kind.destructive())
    }
}

/// A playbook as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Unique name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Off: loaded and listed, never triggered.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Scope an approver needs: `read_write` or `admin`.
    #[serde(default = "read_write")]
    pub approver_scope: String,
    /// When.
    pub trigger: Trigger,
    /// Unless.
    #[serde(default)]
    pub conditions: Conditions,
    /// What, in order.
    pub actions: Vec<toml::Spanned<Action>>,
    /// The file it came from.
    #[serde(skip)]
    pub file: PathBuf,
}

fn yes() -> bool {
    true
}
fn read_write() -> String {
    "read_write".into()
}

/// A playbook that could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoadError {
    /// The file.
    pub file: String,
    /// Line (1-based), when known.
    pub line: Option<usize>,
    /// The field, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Parses and checks one file's text.
pub fn parse(file: &Path, text: &str, cfg: &SoarConfig) -> Result<Playbook, LoadError> {
    let name = file.display().to_string();
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut pb: Playbook = toml::from_str(text).map_err(|e| LoadError {
        file: name.clone(),
        line: e.span().map(|s| line_of(s.start)),
        field: None,
        message: e.message().to_owned(),
    })?;
    pb.file = file.to_owned();
    let err = |line: Option<usize>, field: &str, message: String| LoadError {
        file: name.clone(),
        line,
        field: Some(field.to_owned()),
        message,
    };
    let line_of_key = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(key))
            .map(|n| n + 1)
    };
    if pb.name.trim().is_empty() {
        return Err(err(line_of_key("name"), "name", "must not be empty".into()));
    }
    if !["read_write", "admin"].contains(&pb.approver_scope.as_str()) {
        return Err(err(
            line_of_key("approver_scope"),
            "approver_scope",
            "read_write or admin".into(),
        ));
    }
    let t = &pb.trigger;
    if t.kinds.is_empty()
        && t.max_severity.is_none()
        && t.risk_level.is_none()
        && t.chain_stages.is_none()
        && !t.indicator
    {
        return Err(err(
            line_of_key("[trigger]"),
            "trigger",
            "give at least one of kinds, max_severity, risk_level, chain_stages, indicator".into(),
        ));
    }
    for k in &t.kinds {
        if netmonitor_common::mitre::techniques_for(k).is_none() {
            return Err(err(
                line_of_key("kinds"),
                "trigger.kinds",
                format!("{k:?} is not an alert kind"),
            ));
        }
    }
    if let Some(l) = &t.risk_level {
        if Level::parse(l).is_none_or(|l| l <= Level::Low) {
            return Err(err(
                line_of_key("risk_level"),
                "trigger.risk_level",
                "medium, high or critical".into(),
            ));
        }
    }
    if let Some(n) = t.chain_stages {
        if !(2..=6).contains(&n) {
            return Err(err(
                line_of_key("chain_stages"),
                "trigger.chain_stages",
                "2..6".into(),
            ));
        }
    }
    for c in &pb.conditions.criticality {
        if !CRITICALITIES.contains(&c.as_str()) {
            return Err(err(
                line_of_key("criticality"),
                "conditions.criticality",
                format!("{c:?}: low, medium, high or critical"),
            ));
        }
    }
    if let Some(h) = &pb.conditions.hours_utc {
        if hours(h).is_none() {
            return Err(err(
                line_of_key("hours_utc"),
                "conditions.hours_utc",
                "two hours 0..24 as \"8-18\"".into(),
            ));
        }
    }
    if pb.actions.is_empty() {
        return Err(err(None, "actions", "at least one [[actions]]".into()));
    }
    for (i, a) in pb.actions.iter().enumerate() {
        let start = line_of(a.span().start);
        // The line of `key` in this action's table (else the table's own line).
        let at = |key: &str| {
            text.lines()
                .enumerate()
                .skip(start - 1)
                .take_while(|(n, l)| *n + 1 == start || !l.trim_start().starts_with('['))
                .find(|(_, l)| l.trim_start().starts_with(key))
                .map_or(Some(start), |(n, _)| Some(n + 1))
        };
        let a = a.get_ref();
        let field = |f: &str| format!("actions[{i}].{f}");
        match a.kind {
            ActionKind::Notify => {
                if let Some(url) = a.url.as_deref() {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(err(
                            at("url"),
                            &field("url"),
                            "an http:// or https:// URL".into(),
                        ));
                    }
                }
                if let Some(to) = &a.to {
                    if cfg.smtp.is_none() {
                        return Err(err(at("to"), &field("to"), "mail needs [soar.smtp]".into()));
                    }
                    if to.is_empty() || !to.iter().all(|t| crate::config::plain_address(t)) {
                        return Err(err(at("to"), &field("to"), "plain mail addresses".into()));
                    }
                }
                if a.url.is_none() && a.to.is_none() {
                    return Err(err(
                        at("type"),
                        &field("url"),
                        "notify needs a url, or to with [soar.smtp]".into(),
                    ));
                }
            }
            ActionKind::Command => match &a.command {
                Some(c) if cfg.commands.contains_key(c) => {}
                Some(c) => {
                    return Err(err(
                        at("command"),
                        &field("command"),
                        format!("{c:?} is not in [soar.commands]"),
                    ))
                }
                None => {
                    return Err(err(
                        at("type"),
                        &field("command"),
                        "required for command".into(),
                    ))
                }
            },
            ActionKind::TagDevice if a.tag.as_deref().is_none_or(|t| t.trim().is_empty()) => {
                return Err(err(
                    at("type"),
                    &field("tag"),
                    "required for tag_device".into(),
                ));
            }
            ActionKind::BlockDomain if !cfg.commands.contains_key("block_domain") => {
                return Err(err(
                    at("type"),
                    &field("type"),
                    "block_domain needs a command named block_domain in [soar.commands]".into(),
                ));
            }
            _ => {}
        }
        if a.max_per_hour == 0 {
            return Err(err(
                at("max_per_hour"),
                &field("max_per_hour"),
                "must be positive".into(),
            ));
        }
    }
    Ok(pb)
}

/// The hours of `8-18` as (8, 18).
pub fn hours(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= 24 && b <= 24 && a != b).then_some((a, b))
}

/// Every `*.toml` in `dir`: the playbooks that load, and the errors of those that do not
/// (a duplicate name is an error of the later file).
pub fn load_dir(dir: &Path, cfg: &SoarConfig) -> (Vec<Playbook>, Vec<LoadError>) {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) => {
            return (
                Vec::new(),
                vec![LoadError {
                    file: dir.display().to_string(),
                    line: None,
                    field: None,
                    message: format!("cannot read the playbook directory: {e}"),
                }],
            )
        }
    };
    files.sort();
    let (mut ok, mut bad): (Vec<Playbook>, Vec<LoadError>) = (Vec::new(), Vec::new());
    for f in files {
        let parsed = std::fs::read_to_string(&f)
            .map_err(|e| LoadError {
                file: f.display().to_string(),
                line: None,
                field: None,
                message: e.to_string(),
            })
            .and_then(|t| parse(&f, &t, cfg));
        match parsed {
            Ok(p) if ok.iter().any(|o| o.name == p.name) => bad.push(LoadError {
                file: f.display().to_string(),
                line: None,
                field: Some("name".into()),
                message: format!("{:?} is already the name of another playbook", p.name),
            }),
            Ok(p) => ok.push(p),
            Err(e) => bad.push(e),
        }
    }
    (ok, bad)
}

/// A fingerprint of the directory (names, sizes, times) to notice changes cheaply.
pub fn dir_stamp(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .map(|e| {
            let m = e.metadata().ok();
            (
                e.path(),
                m.as_ref().map_or(0, |m| m.len()),
                m.and_then(|m| m.modified().ok()),
            )
        })
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "contain"
[trigger]
kinds = ["port_scan"]

[[actions]]
type = "notify"
url = "http://127.0.0.1:1/hook"

[[actions]]
type = "block_ip"
"#;

    #[test]
    fn a_playbook_loads_and_destructive_actions_wait_for_approval() {
        let p = parse(Path::new("a.toml"), GOOD, &SoarConfig::default()).unwrap();
        assert!(!p.actions[0].get_ref().needs_approval());
        assert!(p.actions[1].get_ref().needs_approval());
        assert!(p.conditions.unless_whitelisted);
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let cfg = SoarConfig::default();
        let mail = GOOD.replace(
            "url = \"http://127.0.0.1:1/hook\"",
            "to = [\"soc@example.test\"]",
        );
        let e = parse(Path::new("a.toml"), &mail, &cfg).unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("actions[0].to"),
            "no relay configured: {e}"
        );
        let bad_url = GOOD.replace("http://127.0.0.1:1/hook", "ftp://x");
        let e = parse(Path::new("pb/a.toml"), &bad_url, &cfg).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(8), Some("actions[0].url")),
            "{e}"
        );
        assert!(
            e.to_string().starts_with("pb/a.toml:8: actions[0].url:"),
            "{e}"
        );
        let typo = GOOD.replace("kinds = [\"port_scan\"]", "kinds = [\"port_scna\"]");
        let e = parse(Path::new("a.toml"), &typo, &cfg).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(4), Some("trigger.kinds")),
            "{e}"
        );
        let unknown = GOOD.replace("type = \"block_ip\"", "type = \"block_ip\"\nsudo = true");
        let e = parse(Path::new("a.toml"), &unknown, &cfg).unwrap_err();
        assert!(e.message.contains("sudo") && e.line.is_some(), "{e}");
        let wrong = GOOD.replace("type = \"block_ip\"", "type = \"nuke\"");
        assert!(parse(Path::new("a.toml"), &wrong, &cfg).is_err());
        let cmd = GOOD.replace(
            "type = \"block_ip\"",
            "type = \"command\"\ncommand = \"nope\"",
        );
        let e = parse(Path::new("a.toml"), &cmd, &cfg).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("actions[1].command"));
    }

    #[test]
    fn a_directory_loads_the_good_and_reports_the_bad() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.toml"), GOOD).unwrap();
        std::fs::write(d.path().join("b.toml"), GOOD).unwrap();
        std::fs::write(d.path().join("c.toml"), "name = ").unwrap();
        std::fs::write(d.path().join("notes.txt"), "ignored").unwrap();
        let (ok, bad) = load_dir(d.path(), &SoarConfig::default());
        assert_eq!(ok.len(), 1);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(hours("22-6"), Some((22, 6)));
        assert_eq!(hours("8-8"), None);
    }
}
