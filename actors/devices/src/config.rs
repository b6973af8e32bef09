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
}

impl Default for DevicesConfig {
    fn default() -> Self {
        let nets = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "fc00::/7",
            "fe80::/10",
        ];
        DevicesConfig {
            enabled: true,
            local_networks: nets.iter().filter_map(|n| n.parse().ok()).collect(),
            save_interval_secs: 10,
            oui_file: None,
        }
    }
}

impl DevicesConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.save_interval_secs == 0 || self.save_interval_secs > 3600 {
            return Err("devices.save_interval_secs: must be 1 to 3600".into());
        }
        Ok(())
    }
}
