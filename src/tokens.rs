//! `netmonitor tokens create|list|revoke`: token secrets are generated here, printed once and
//! stored only as a SHA-256 hash.

use crate::cli::{TokenCreateArgs, TokensCommand};
use crate::config::Config;
use anyhow::Context;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use netmonitor_mcp::auth::{generate_token, hash_token};
use netmonitor_store::tokens::{self, NewToken};
use netmonitor_store::Database;

/// Runs one token operation against the configured database.
pub fn run(cfg: &Config, command: TokensCommand) -> anyhow::Result<()> {
    let db = Database::open(&cfg.db_target())?;
    let conninfo = db.conninfo().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        let mut conn = AsyncPgConnection::establish(&conninfo)
            .await
            .context("connecting to the database")?;
        match command {
            TokensCommand::Create(args) => create(&mut conn, args).await,
            TokensCommand::List => list(&mut conn).await,
            TokensCommand::Revoke { token_id } => {
                if tokens::revoke(&mut conn, token_id).await? {
                    println!("token {token_id} revoked");
                    Ok(())
                } else {
                    anyhow::bail!("no active token with id {token_id}")
                }
            }
        }
    });
    drop(db);
    result
}

async fn create(conn: &mut AsyncPgConnection, args: TokenCreateArgs) -> anyhow::Result<()> {
    let secret = generate_token();
    let to_i32 = |v: u32| i32::try_from(v).ok();
    let token = NewToken {
        name: args.name.clone(),
        token_hash: hash_token(&secret),
        scope: args.scope.clone(),
        rate_per_minute: to_i32(args.rate_limit),
        rate_per_hour: to_i32(args.rate_limit_hour),
        rate_per_day: to_i32(args.rate_limit_day),
        expires_at: args
            .expires_days
            .map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d))),
    };
    let id = tokens::create(conn, &token).await?;
    eprintln!(
        "Created token {id} '{}' with scope {} (store the secret now; it is not shown again):",
        args.name, args.scope
    );
    println!("{secret}");
    Ok(())
}

async fn list(conn: &mut AsyncPgConnection) -> anyhow::Result<()> {
    let rows = tokens::list(conn).await?;
    println!(
        "{:>4}  {:<24} {:<10} {:>8} {:>8} {:>8}  {:<20} {:<20} {:<20} STATUS",
        "ID", "NAME", "SCOPE", "PER-MIN", "PER-HOUR", "PER-DAY", "CREATED", "EXPIRES", "LAST USED"
    );
    let now = chrono::Utc::now();
    for r in rows {
        let status = if r.revoked_at.is_some() {
            "revoked"
        } else if r.expires_at.is_some_and(|e| e < now) {
            "expired"
        } else {
            "active"
        };
        let fmt = |v: Option<i32>| v.map_or("-".to_owned(), |n| n.to_string());
        println!(
            "{:>4}  {:<24} {:<10} {:>8} {:>8} {:>8}  {:<20} {:<20} {:<20} {}",
            r.id,
            r.name,
            r.scope,
            fmt(r.rate_per_minute),
            fmt(r.rate_per_hour),
            fmt(r.rate_per_day),
            r.created_at.format("%Y-%m-%d %H:%M:%S"),
            r.expires_at.map_or("never".to_owned(), |e| e
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()),
            r.last_used_at.map_or("never".to_owned(), |e| e
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()),
            status
        );
    }
    Ok(())
}
