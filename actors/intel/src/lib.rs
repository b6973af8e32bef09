//! Threat intelligence: the feed formats the community publishes, indicator normalisation, the
//! matcher (longest-prefix address blocks, parent-domain matching, exact URLs, fingerprints and
//! hashes), TAXII 2.1 polling, and the actors that refresh feeds and match live traffic.
//!
//! Domain logic (`indicator`, `formats`, `matcher`) is free of actix and I/O; `fetch` and
//! `taxii` do the downloads; the actors are in `actor` (matching on the bus) and `feeds`
//! (scheduling, persistence, rebuilds).

pub mod actor;
pub mod asn;
pub mod config;
pub mod detect;
pub mod feeds;
pub mod fetch;
pub mod formats;
pub mod indicator;
pub mod matcher;
pub mod taxii;

pub use formats::{parse, FeedFormat, ParseReport};
pub use indicator::{normalize, Indicator, IndicatorKind};
pub use matcher::{Matcher, MatcherBuilder};
