//! The command line: `run`, `replay`, `tokens`, `migrate` (the contract other tools rely on).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// NetMonitor: network security sensor and SOC engine with an MCP server.
#[derive(Parser, Debug)]
#[command(name = "netmonitor", version, about, long_about = None)]
pub struct Cli {
    /// TOML configuration file (environment variables override it).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: private PostgreSQL cluster, spool, captures.
    #[arg(long, global = true, env = "NETMONITOR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the service: capture, actors, store and the MCP/health/metrics HTTP server.
    Run(RunArgs),
    /// Process pcap/pcapng files as fast as possible and print a summary.
    Replay(ReplayArgs),
    /// Manage MCP API tokens (secrets are shown once and stored only hashed).
    Tokens {
        /// Token operation.
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Apply database migrations and exit.
    Migrate,
}

/// `run` options.
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// Capture live on this interface (repeatable).
    #[arg(long = "interface", short = 'i', value_name = "IF")]
    pub interfaces: Vec<String>,
    /// Read this pcap/pcapng file once at start (repeatable).
    #[arg(long = "pcap", value_name = "FILE")]
    pub pcaps: Vec<PathBuf>,
    /// Also serve MCP on stdin/stdout (for clients that launch the binary); the service stops
    /// when stdin closes. Acts as the token in NETMONITOR_TOKEN, else read_only.
    #[arg(long)]
    pub stdio: bool,
    /// Write Suricata-compatible EVE JSON lines here (as `[output.eve] path`; SIGHUP reopens).
    #[arg(long, value_name = "FILE")]
    pub eve: Option<PathBuf>,
}

/// `replay` options.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Write Suricata-compatible EVE JSON lines here.
    #[arg(long, value_name = "OUT.json")]
    pub eve: Option<PathBuf>,
    /// Do not write to the database (everything else runs as in `run`).
    #[arg(long)]
    pub no_db: bool,
    /// Print nothing but the summary (no progress).
    #[arg(long, short)]
    pub quiet: bool,
    /// Capture files to read, in order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `tokens` operations.
#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Create a token and print its secret once.
    Create(TokenCreateArgs),
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// Id shown by `tokens list`.
        #[arg(long)]
        token_id: i64,
    },
}

/// `tokens create` options (as the seed documents them).
#[derive(Args, Debug)]
pub struct TokenCreateArgs {
    /// A name saying who or what uses the token.
    #[arg(long)]
    pub name: String,
    /// read_only, read_write or admin.
    #[arg(long, default_value = "read_only", value_parser = ["read_only", "read_write", "admin"])]
    pub scope: String,
    /// Requests per minute (default 60); `--rate-limit-minute` is the seed's spelling.
    #[arg(long, alias = "rate-limit-minute", default_value_t = 60)]
    pub rate_limit: u32,
    /// Requests per hour (default 1000).
    #[arg(long, default_value_t = 1000)]
    pub rate_limit_hour: u32,
    /// Requests per day (default 10000).
    #[arg(long, default_value_t = 10000)]
    pub rate_limit_day: u32,
    /// Days until the token expires (default: never).
    #[arg(long)]
    pub expires_days: Option<u32>,
}
