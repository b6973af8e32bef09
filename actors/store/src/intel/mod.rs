//! The threat-intelligence tables: `threat_feeds` (settings and the state of their last
//! refresh), `indicators` (what each feed lists, so that a restart needs no download) and
//! `asn_ranges` (the IP-to-ASN table `lookup_ip_owner` answers from).
//!
//! Writes come from the feed actor on a worker thread and use the blocking connection: a
//! feed's indicators go in by binary `COPY` into a per-transaction staging table and one
//! upsert, so a million indicators cost one statement, and first-seen times survive refreshes.
//! Reads for the tools use the async connection.

mod read;
mod write;

pub use read::*;
pub use write::*;
