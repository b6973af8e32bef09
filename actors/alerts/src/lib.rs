//! The shared alert stage. Every detector hands its alerts here; the stage drops those a
//! whitelist entry or service provider suppresses (or keeps them as stored evidence), that repeat an identical alert within the dedup window, or whose
//! kind is switched off, attaches the MITRE ATT&CK techniques of the kind, counts them, marks
//! their flows alerted, and puts the rest on the bus (topic `Alerts`) for the sinks, risk
//! scoring and SOAR. Detectors get whitelisting, suppression and MITRE ids for free.
#![deny(missing_docs)]

pub mod actor;
pub mod policy;
pub mod suppress;

pub use actor::{
    AlertStage, AlertStageStats, GetAlertStats, SetProviders, SetWhitelist, SuppressionAnswer,
    TestSuppression,
};
pub use policy::{AlertPolicy, SuppressedAlerts, Verdict};
pub use suppress::{AlertSubject, Direction, ServiceProvider, WhitelistEntry};
