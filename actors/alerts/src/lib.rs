//! The shared alert stage. Every detector hands its alerts here; the stage drops those a
//! whitelist entry covers, that repeat an identical alert within the dedup window, or whose
//! kind is switched off, attaches the MITRE ATT&CK techniques of the kind, counts them, marks
//! their flows alerted, and puts the rest on the bus (topic `Alerts`) for the sinks, risk
//! scoring and SOAR. Detectors get whitelisting, suppression and MITRE ids for free.
#![deny(missing_docs)]

pub mod actor;
pub mod policy;

pub use actor::{AlertStage, AlertStageStats, GetAlertStats, SetWhitelist};
pub use policy::{AlertPolicy, Verdict, WhitelistEntry};
