//! `netmonitor replay`: reads capture files through the same pipeline as `run`.

use crate::cli::ReplayArgs;
use crate::config::Config;

/// Replays the files and prints a summary.
pub fn replay(_cfg: &Config, _args: &ReplayArgs) -> anyhow::Result<()> {
    anyhow::bail!("replay is being wired to the sensor pipeline")
}
