//! Live configuration routed to the actor that owns each key: the alert stage (`detection.alerts.*`,
//! `detection.<kind>.enabled`), the Kerberos detector (`detection.kerberos.*`), the feed
//! matcher (`intel.*`) and the EVE sink (`output.eve.*`). Keys of the composition root (log level, MCP limits) are handled there.

use crate::Engine;
use actix::prelude::*;
use netmonitor_alerts::AlertStage;
use netmonitor_behaviour::actor::BehaviourActor;
use netmonitor_eve::EveSink;
use netmonitor_intel::actor::IntelActor;
use netmonitor_kerberos::actor::KerberosActor;
use netmonitor_runtime::{LiveKey, ParamChange, SetParam};

/// Where each live key goes.
#[derive(Clone)]
pub struct LiveRouter {
    stage: Recipient<SetParam>,
    kerberos: Recipient<SetParam>,
    behaviour: Recipient<SetParam>,
    eve: Option<Recipient<SetParam>>,
    intel: Option<Recipient<SetParam>>,
}

impl LiveRouter {
    pub(crate) fn new(e: &Engine) -> Self {
        LiveRouter {
            stage: e.alert_stage.clone().recipient(),
            kerberos: e.kerberos.clone().recipient(),
            behaviour: e.behaviour.clone().recipient(),
            eve: e.eve.clone().map(Addr::recipient),
            intel: e.intel.clone().map(Addr::recipient),
        }
    }

    /// Every key the engine's actors change at run time.
    pub fn keys(&self) -> Vec<LiveKey> {
        let mut keys = KerberosActor::live_keys();
        keys.extend(BehaviourActor::live_keys());
        keys.extend(AlertStage::live_keys());
        if self.eve.is_some() {
            keys.extend(EveSink::live_keys());
        }
        if self.intel.is_some() {
            keys.extend(IntelActor::live_keys());
        }
        keys
    }

    /// Whether the engine owns `key`.
    pub fn owns(&self, key: &str) -> bool {
        self.keys().iter().any(|k| k.key == key)
    }

    /// Applies a change through the owning actor; answers the old and new value.
    pub async fn set(&self, key: &str, value: serde_json::Value) -> Result<ParamChange, String> {
        let to = if key.starts_with("detection.kerberos.") {
            &self.kerberos
        } else if key.starts_with(netmonitor_behaviour::actor::PREFIX) {
            &self.behaviour
        } else if key.starts_with("output.eve.") {
            self.eve
                .as_ref()
                .ok_or_else(|| format!("{key}: no EVE output is configured"))?
        } else if key.starts_with("intel.") {
            self.intel
                .as_ref()
                .ok_or_else(|| format!("{key}: threat-feed matching is off"))?
        } else if self.owns(key) {
            &self.stage
        } else {
            return Err(format!("{key}: not a live key"));
        };
        to.send(SetParam {
            key: key.to_string(),
            value,
        })
        .await
        .map_err(|e| format!("{key}: the owning actor did not answer ({e})"))?
    }
}
