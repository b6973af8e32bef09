//! SOAR on the actor plane: playbooks (TOML files) triggered by alerts, risk levels crossed,
//! chain stages reached and threat-feed matches; actions proposed once per idempotency key,
//! held for a person's approval over MCP unless the playbook says otherwise, run for real
//! (signed webhooks, nftables elements, commands without a shell, acknowledgements,
//! enrichment) and recorded with their outcome in PostgreSQL.
#![deny(missing_docs)]

pub mod act;
pub mod actor;
pub mod config;
pub mod core;
pub mod plan;
pub mod playbook;
pub mod smtp;

pub use actor::{ReloadPlaybooks, SoarActor};
pub use config::SoarConfig;
pub use core::{DecideError, SoarCore, PENDING_URI};
