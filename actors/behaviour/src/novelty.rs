//! New devices and new services: during the learning period (packet time from the first event)
//! every local host and every service a local host answers on is learned; afterwards a host
//! or a service never seen before raises an alert once.

use crate::config::BehaviourConfig;
use crate::names::is_local_chatter_addr;
use crate::rules::*;
use crate::scan::secs;
use crate::Raised;
use netmonitor_common::event::ipproto;
use netmonitor_common::window::Bounded;
use netmonitor_common::{EventHeader, FlowRecord};
use serde_json::json;
use std::net::IpAddr;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
/// Known devices and services are kept this long without being seen (a year).
const REMEMBER_US: i64 = 366 * 86_400 * 1_000_000;

/// Longest gap in packet time that counts as observed time.
const MAX_GAP_US: i64 = 300 * 1_000_000;

pub(crate) struct Novelty {
    /// Latest packet time seen, and the observed time accumulated up to it.
    last: Option<i64>,
    observed: i64,
    devices: Bounded<IpAddr, ()>,
    services: Bounded<(IpAddr, u16, u8), ()>,
}

impl Novelty {
    pub(crate) fn new(cap: usize) -> Self {
        Novelty {
            last: None,
            observed: 0,
            devices: Bounded::new(cap),
            services: Bounded::new(cap),
        }
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.devices.evicted + self.services.evicted
    }

    pub(crate) fn tracked(&self) -> usize {
        self.devices.len() + self.services.len()
    }

    pub(crate) fn on_flow(
        &mut self,
        cfg: &BehaviourConfig,
        h: &EventHeader,
        f: &FlowRecord,
        out: &mut Raised,
    ) {
        let c = &cfg.novelty;
        if !c.enabled {
            return;
        }
        let now = f.start.0;
        if let Some(last) = self.last {
            self.observed += now.saturating_sub(last).clamp(0, MAX_GAP_US);
        }
        self.last = Some(self.last.map_or(now, |l| l.max(now)));
        let learning = self.observed < secs(c.learning_secs);
        let k = &h.key;
        // A device is a local host that sends traffic.
        if cfg.is_local(k.src_ip) && !is_local_chatter_addr(k.src_ip) {
            let known = self.devices.last_touched(&k.src_ip).is_some();
            self.devices.touch(k.src_ip, now, REMEMBER_US);
            if !known && !learning {
                out.raise(&NEW_DEVICE, k.src_ip, REMEMBER_US, || {
                    json!({"device": k.src_ip.to_string(), "first_peer": k.dst_ip.to_string(),
                           "first_port": k.dst_port, "learning_secs": c.learning_secs})
                });
            }
        }
        // A service is a local host answering on a port.
        let answered = match k.proto {
            ipproto::TCP => {
                f.tcp_flags_toclient & (SYN | ACK) == (SYN | ACK) && f.payload_toclient > 0
            }
            ipproto::UDP => f.pkts_toclient > 0,
            _ => false,
        };
        if answered && cfg.is_local(k.dst_ip) && !is_local_chatter_addr(k.dst_ip) {
            let key = (k.dst_ip, k.dst_port, k.proto);
            let known = self.services.last_touched(&key).is_some();
            self.services.touch(key, now, REMEMBER_US);
            if !known && !learning {
                out.raise(&NEW_SERVICE, key, REMEMBER_US, || {
                    json!({"host": k.dst_ip.to_string(), "port": k.dst_port,
                           "proto": netmonitor_common::proto_name(k.proto),
                           "first_client": k.src_ip.to_string(),
                           "learning_secs": c.learning_secs})
                });
            }
        }
    }
}
