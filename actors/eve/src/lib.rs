//! The EVE sink: writes every event and alert from the bus as Suricata-compatible EVE JSON lines
//! to a file. One writer serves `run` and `replay`. SIGHUP makes it reopen the file (logrotate's
//! `copytruncate`-free rotation, as Suricata does); `rotate_bytes` rotates it itself by size.
#![deny(missing_docs)]

pub mod file;
pub mod sink;

pub use sink::{EveSink, EveStats, GetEveStats, Reopen};

use serde::Deserialize;
use std::path::PathBuf;

/// `[output.eve]`: where and how EVE is written.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EveConfig {
    /// The file (`--eve FILE` sets it); no file, no EVE.
    pub path: Option<PathBuf>,
    /// Writing on or off (changeable live: `output.eve.enabled`).
    pub enabled: bool,
    /// Rotate when the file reaches this size: `eve.json` becomes `eve.json.1` (older ones
    /// shift up). 0 = never (leave rotation to logrotate and SIGHUP).
    pub rotate_bytes: u64,
    /// Rotated files kept.
    pub keep: usize,
    /// Longest time a written line waits in the buffer before it reaches the file.
    pub flush_interval_ms: u64,
    /// Start the file empty instead of appending (`replay --eve`: the file is that replay's
    /// output; `run` appends, as Suricata does).
    #[serde(skip)]
    pub truncate: bool,
}

impl Default for EveConfig {
    fn default() -> Self {
        EveConfig {
            path: None,
            enabled: true,
            rotate_bytes: 0,
            keep: 5,
            flush_interval_ms: 200,
            truncate: false,
        }
    }
}

impl EveConfig {
    /// Checks the values, naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.rotate_bytes != 0 && self.rotate_bytes < 4096 {
            return Err("output.eve.rotate_bytes must be 0 or at least 4096".into());
        }
        if self.keep == 0 || self.keep > 1000 {
            return Err("output.eve.keep must be between 1 and 1000".into());
        }
        if self.flush_interval_ms == 0 {
            return Err("output.eve.flush_interval_ms must be at least 1".into());
        }
        Ok(())
    }
}
