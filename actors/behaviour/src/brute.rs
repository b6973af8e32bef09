//! Brute force and password spraying against login services, from flow records: a login
//! attempt is a short session a login service answered (handshake completed, data sent),
//! counted per source and service; HTTP authentication failures (401, 407) count the same way.
//! Many attempts on one service are brute force; attempts spread over many hosts of one
//! service are spraying.

use crate::config::BehaviourConfig;
use crate::rules::*;
use crate::scan::secs;
use crate::Raised;
use netmonitor_common::event::ipproto;
use netmonitor_common::window::{Bounded, Distinct, Times};
use netmonitor_common::{EventHeader, FlowRecord, HttpRecord};
use serde_json::json;
use std::net::IpAddr;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn service_name(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 | 587 => "smtp",
        110 | 995 => "pop3",
        143 | 993 => "imap",
        139 | 445 => "smb",
        389 | 636 => "ldap",
        1433 => "mssql",
        1521 => "oracle",
        3306 => "mysql",
        3389 => "rdp",
        5432 => "postgresql",
        5900 => "vnc",
        6379 => "redis",
        27017 => "mongodb",
        80 | 8080 | 8000 | 443 | 8443 => "http",
        _ => "other",
    }
}

pub(crate) struct Brute {
    sessions: Bounded<(IpAddr, IpAddr, u16), Times>,
    targets: Bounded<(IpAddr, u16), Distinct<IpAddr>>,
    attempts: Bounded<(IpAddr, u16), Times>,
}

impl Brute {
    pub(crate) fn new(cap: usize) -> Self {
        Brute {
            sessions: Bounded::new(cap),
            targets: Bounded::new(cap),
            attempts: Bounded::new(cap),
        }
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.sessions.evicted + self.targets.evicted + self.attempts.evicted
    }

    pub(crate) fn tracked(&self) -> usize {
        self.sessions.len() + self.targets.len() + self.attempts.len()
    }

    pub(crate) fn on_flow(
        &mut self,
        cfg: &BehaviourConfig,
        h: &EventHeader,
        f: &FlowRecord,
        out: &mut Raised,
    ) {
        let c = &cfg.brute_force;
        let k = &h.key;
        if !c.enabled || k.proto != ipproto::TCP {
            return;
        }
        let answered = f.tcp_flags_toclient & (SYN | ACK) == (SYN | ACK);
        let short = f.end.0.saturating_sub(f.start.0) <= secs(c.short_session_secs);
        if !(answered && short && f.payload_toserver > 0 && c.ports.contains(&k.dst_port)) {
            return;
        }
        self.attempt(cfg, k.src_ip, k.dst_ip, k.dst_port, f.end.0, out);
    }

    pub(crate) fn on_http(
        &mut self,
        cfg: &BehaviourConfig,
        h: &EventHeader,
        r: &HttpRecord,
        out: &mut Raised,
    ) {
        if cfg.brute_force.enabled && matches!(r.status, Some(401 | 407)) {
            self.attempt(cfg, h.key.src_ip, h.key.dst_ip, h.key.dst_port, h.ts.0, out);
        }
    }

    fn attempt(
        &mut self,
        cfg: &BehaviourConfig,
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        now: i64,
        out: &mut Raised,
    ) {
        let c = &cfg.brute_force;
        let window = secs(c.window_secs);
        let service = service_name(port);
        let n = self
            .sessions
            .touch((src, dst, port), now, window)
            .push(now, window);
        if c.sessions > 0 && n >= c.sessions {
            out.raise(&BRUTE_FORCE, (src, dst, port), window, || {
                json!({"source": src.to_string(), "target": dst.to_string(), "port": port,
                       "service": service, "attempts": n, "threshold": c.sessions,
                       "window_secs": c.window_secs})
            });
        }
        let all = self
            .attempts
            .touch((src, port), now, window)
            .push(now, window);
        let set = self.targets.touch((src, port), now, window);
        let hosts = set.insert(dst, now, window);
        if c.spray_targets > 0 && hosts >= c.spray_targets && all >= 2 * c.spray_targets {
            out.raise(&SPRAYING, (src, port), window, || {
                json!({"source": src.to_string(), "port": port, "service": service,
                       "targets": hosts, "attempts": all, "threshold": c.spray_targets,
                       "window_secs": c.window_secs,
                       "sample_targets": set.sample(20).iter().map(ToString::to_string)
                           .collect::<Vec<_>>()})
            });
        }
    }
}
