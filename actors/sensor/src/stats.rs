//! Counters of what the application layer saw, for status tools and metrics.

use serde::Serialize;
use std::collections::BTreeMap;

/// What the dissectors produced so far (alerts are counted by the alert stage).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SensorStats {
    /// Events by EVE type.
    pub events: BTreeMap<&'static str, u64>,
    /// Events for the actors only (flow starts), not in `events`.
    pub internal_events: u64,
    /// Flows by recognised application protocol.
    pub app_protocols: BTreeMap<&'static str, u64>,
    /// TLS handshakes by version name.
    pub tls_versions: BTreeMap<String, u64>,
    /// Kerberos messages by type.
    pub krb_messages: BTreeMap<&'static str, u64>,
    /// Application payloads that failed to parse (per dissector).
    pub malformed: BTreeMap<&'static str, u64>,
}
