//! NetMonitor's composition root: reads the command line and configuration, starts the
//! supervised actors, the store, capture and the HTTP server, and wires them together. It holds
//! no protocol or storage logic of its own; that lives in the crates under `actors/`.

pub mod cli;
pub mod config;
pub mod http;
pub mod replay;
pub mod service;
pub mod telemetry;
pub mod tokens;

use clap::Parser;
use std::ffi::OsString;
use std::process::ExitCode;

/// Parses `args`, runs the subcommand and turns the outcome into an exit code
/// (0 ok, 1 failure, 2 bad configuration or usage).
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let cfg = match config::Config::load(cli.config.as_deref(), cli.data_dir.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("netmonitor: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&cfg.log_level);
    let outcome = match cli.command {
        cli::Command::Run(args) => service::run(cfg, args),
        cli::Command::Replay(args) => replay::replay(&cfg, &args),
        cli::Command::Tokens { command } => tokens::run(&cfg, command),
        cli::Command::Migrate => migrate(&cfg),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netmonitor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(cfg: &config::Config) -> anyhow::Result<()> {
    let db = netmonitor_store::Database::open(&cfg.db_target())?;
    let pending = db.migrate()?;
    println!("database schema is up to date ({pending} migrations applied now)");
    Ok(())
}
