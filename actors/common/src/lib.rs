//! The vocabulary the NetMonitor actors share: flow keys, timestamps, typed events
//! (flows, TLS handshakes, Kerberos messages, DNS, alerts) and their Suricata-EVE form.
//!
//! It holds no actix, diesel or HTTP code, so every parser and actor can depend on it.
#![deny(missing_docs)]

pub mod der;
pub mod eve;
pub mod event;
pub mod krb;
pub mod mitre;
pub mod time;
pub mod window;

pub use event::*;
pub use time::Timestamp;
