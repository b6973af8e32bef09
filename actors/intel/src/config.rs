//! `[intel]`: download limits, how matches become alerts, and the feeds of the configuration
//! file (feeds can also be added over MCP; those live in the database).

use crate::fetch::{Auth, Limits};
use crate::formats::FeedFormat;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[intel]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IntelConfig {
    /// Match traffic against the feeds at all.
    pub enabled: bool,
    /// Timeout of one download (or one TAXII page).
    pub download_timeout_secs: u64,
    /// Largest feed accepted.
    pub max_download_bytes: u64,
    /// One alert per indicator and client within this many seconds of packet time.
    pub alert_window_secs: u64,
    /// Matches of indicators below this confidence raise no alert (they are still counted).
    pub min_confidence: u8,
    /// Feeds (`[[intel.feeds]]`).
    pub feeds: Vec<FeedConfig>,
}

impl Default for IntelConfig {
    fn default() -> Self {
        IntelConfig {
            enabled: true,
            download_timeout_secs: 60,
            max_download_bytes: 256 << 20,
            alert_window_secs: 3600,
            min_confidence: 0,
            feeds: Vec::new(),
        }
    }
}

impl IntelConfig {
    /// Checks every field, naming the bad one.
    pub fn validate(&self) -> Result<(), String> {
        if self.download_timeout_secs == 0 {
            return Err("intel.download_timeout_secs must be at least 1".into());
        }
        if self.max_download_bytes < 1024 {
            return Err("intel.max_download_bytes must be at least 1024".into());
        }
        if self.min_confidence > 100 {
            return Err("intel.min_confidence must be 0-100".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for f in &self.feeds {
            f.validate().map_err(|e| format!("intel.feeds: {e}"))?;
            if !names.insert(f.name.as_str()) {
                return Err(format!("intel.feeds: two feeds are named {:?}", f.name));
            }
        }
        Ok(())
    }

    /// Download bounds.
    pub fn limits(&self) -> Limits {
        Limits {
            timeout: Duration::from_secs(self.download_timeout_secs.max(1)),
            max_bytes: self.max_download_bytes,
        }
    }
}

fn default_refresh() -> u64 {
    3600
}
fn default_confidence() -> u8 {
    70
}
fn yes() -> bool {
    true
}

/// One feed.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Unique name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// `https://…`, `http://…`, `file://…` or a path; for TAXII the collection URL.
    pub source: String,
    /// Layout of the content.
    pub format: FeedFormat,
    /// Seconds between refreshes.
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    /// Confidence (0–100) of entries that state none.
    #[serde(default = "default_confidence")]
    pub confidence: u8,
    /// Refreshed and matched.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// HTTP basic user.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the basic-auth password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Environment variable holding a bearer token.
    #[serde(default)]
    pub token_env: Option<String>,
}

impl FeedConfig {
    /// A feed with defaults for everything but its name, source and format.
    pub fn new(name: &str, source: &str, format: FeedFormat) -> Self {
        FeedConfig {
            name: name.to_owned(),
            source: source.to_owned(),
            format,
            refresh_secs: default_refresh(),
            confidence: default_confidence(),
            enabled: true,
            username: None,
            password_env: None,
            token_env: None,
        }
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(format!(
                "feed name {:?} must be 1-64 letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        if self.source.trim().is_empty() || self.source.len() > 2048 {
            return Err(format!(
                "feed {}: source must be 1-2048 characters",
                self.name
            ));
        }
        if self.format == FeedFormat::Taxii && crate::fetch::local_path(&self.source).is_some() {
            return Err(format!(
                "feed {}: a TAXII source is the collection's http(s) URL",
                self.name
            ));
        }
        if self.refresh_secs == 0 {
            return Err(format!(
                "feed {}: refresh_secs must be at least 1",
                self.name
            ));
        }
        if self.confidence > 100 {
            return Err(format!("feed {}: confidence must be 0-100", self.name));
        }
        Ok(())
    }

    /// Credentials, read from the environment now.
    pub fn auth(&self) -> Auth {
        let env = |name: &Option<String>| name.as_ref().and_then(|n| std::env::var(n).ok());
        Auth {
            basic: self
                .username
                .clone()
                .map(|u| (u, env(&self.password_env).unwrap_or_default())),
            token: env(&self.token_env),
        }
    }

    /// What the database keeps of the credentials: the user and the variables' names.
    pub fn auth_json(&self) -> serde_json::Value {
        serde_json::json!({
            "username": self.username,
            "password_env": self.password_env,
            "token_env": self.token_env,
        })
    }

    /// Restores the credential fields from [`FeedConfig::auth_json`].
    pub fn set_auth_json(&mut self, v: &serde_json::Value) {
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        self.username = s("username");
        self.password_env = s("password_env");
        self.token_env = s("token_env");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_parse_and_validate() {
        let c: IntelConfig = toml::from_str(
            r#"
            alert_window_secs = 600
            [[feeds]]
            name = "feodo"
            source = "https://feodotracker.abuse.ch/downloads/ipblocklist.csv"
            format = "feodo_csv"
            confidence = 90
            [[feeds]]
            name = "taxii-1"
            source = "http://127.0.0.1:5000/api1/collections/abc/"
            format = "taxii"
            username = "reader"
            password_env = "TAXII_PASSWORD"
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.feeds[0].refresh_secs, 3600);
        assert_eq!(c.feeds[1].auth_json()["password_env"], "TAXII_PASSWORD");
        let mut bad = c.clone();
        bad.feeds[1].name = "feodo".into();
        assert!(bad.validate().unwrap_err().contains("two feeds"));
        let mut bad = c.clone();
        bad.feeds[0].name = "a b".into();
        assert!(bad.validate().is_err());
        let mut bad = c;
        bad.feeds[1].source = "/tmp/x".into();
        assert!(bad.validate().unwrap_err().contains("TAXII"));
        assert!(toml::from_str::<IntelConfig>("nope = 1").is_err());
    }
}
