//! `[devices]`: where devices come from and how often they are saved.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The device inventory's settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DevicesConfig {
    /// Keep the inventory at all.
    pub enabled: bool,
    /// Addresses that become devices (the far ends of their traffic do not).
    pub local_networks: Vec<IpNet>,
    /// Seconds between saves of what changed.
    pub save_interval_secs: u64,
    /// A newer MAC vendor table (`PREFIX<TAB>Organization` lines, plain or gzip; see
    /// `data/refresh-oui.py`) instead of the one built in.
    pub oui_file: Option<std::path::PathBuf>,
    /// Capture time (seconds) a device is watched before its baseline counts.
    pub learning_secs: u64,
    /// Report learnt devices that step outside their baseline (alert
    /// `device_behavior_deviation`).
    pub deviation_alerts: bool,
    /// A learnt device sending more than this many times its mean hourly volume deviates...
    pub volume_factor: f64,
    /// ... when it also sent at least this many bytes in the hour.
    pub volume_min_bytes: u64,
}

/// The networks a site's own hosts live in by default: RFC 1918, shared address space,
/// link-local and unique-local (the device inventory and risk scoring both start from these).
pub fn default_local_networks() -> Vec<IpNet> {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    ]
    .iter()
    .filter_map(|n| n.parse().ok())
    .collect()
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            enabled: true,
            local_networks: default_local_networks(),
            save_interval_secs: 10,
            oui_file: None,
            learning_secs: 86_400,
            deviation_alerts: true,
            volume_factor: 10.0,
            volume_min_bytes: 100_000_000,
        }
    }
}

impl DevicesConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.save_interval_secs == 0 || self.save_interval_secs > 3600 {
            return Err("devices.save_interval_secs: must be 1 to 3600".into());
        }
        if self.learning_secs == 0 {
            return Err("devices.learning_secs: must be at least 1".into());
        }
        if self.volume_factor < 1.0 {
            return Err("devices.volume_factor: must be at least 1".into());
        }
        Ok(())
    }

    /// The learning settings.
    pub fn learning(&self) -> crate::learn::LearnSettings {
        crate::learn::LearnSettings {
            learning_us: i64::try_from(self.learning_secs.saturating_mul(1_000_000))
                .unwrap_or(i64::MAX),
            volume_factor: self.volume_factor,
            volume_min_bytes: self.volume_min_bytes,
        }
    }
}
