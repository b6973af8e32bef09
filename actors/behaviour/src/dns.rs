//! DNS tunnelling and generated domains, from DNS events. Tunnels carry data in the names they
//! ask for: many distinct names under one registered domain from one client (the "exploded
//! subdomains" signal), long labels, encoded-looking (high-entropy) labels, and TXT/NULL
//! answers to carry the way back. Malware trying generated domains gets NXDOMAIN for many
//! random-looking names. Local names, reverse zones, mDNS/LLMNR and multicast are never judged.

use crate::config::BehaviourConfig;
use crate::names::{entropy, is_chatter, is_local_name, looks_generated, split_registered};
use crate::rules::*;
use crate::scan::secs;
use crate::Raised;
use netmonitor_common::window::{Bounded, Distinct, Times};
use netmonitor_common::{DnsRecord, EventHeader};
use serde_json::json;
use std::net::IpAddr;

/// Distinct names past the threshold are judged again (sampled, entropy measured) only after
/// this many more new ones, so a busy domain that is not a tunnel costs little per query.
const REJUDGE_EVERY: u32 = 32;

/// Distinct names, and new names since they were last judged.
type Names = (Distinct<String>, u32);

pub(crate) struct Dns {
    names: Bounded<(IpAddr, String), Names>,
    long: Bounded<(IpAddr, String), Times>,
    txt: Bounded<IpAddr, Times>,
    nx: Bounded<IpAddr, Names>,
    /// Per source: when its answers came, and when its NXDOMAIN answers came.
    answers: Bounded<IpAddr, (Times, Times)>,
}

/// Inserts `name`; whether the set should be judged now (at the threshold, then after every
/// [`REJUDGE_EVERY`] new names).
fn insert_and_due(n: &mut Names, name: &str, now: i64, window: i64, threshold: usize) -> bool {
    let new = !n.0.contains(name);
    let distinct = n.0.insert(name.to_owned(), now, window);
    if !new || threshold == 0 || distinct < threshold {
        return false;
    }
    n.1 += 1;
    if distinct == threshold || n.1 >= REJUDGE_EVERY {
        n.1 = 0;
        return true;
    }
    false
}

impl Dns {
    pub(crate) fn new(cap: usize) -> Self {
        Dns {
            names: Bounded::new(cap),
            long: Bounded::new(cap),
            txt: Bounded::new(cap),
            nx: Bounded::new(cap),
            answers: Bounded::new(cap),
        }
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.names.evicted
            + self.long.evicted
            + self.txt.evicted
            + self.nx.evicted
            + self.answers.evicted
    }

    pub(crate) fn tracked(&self) -> usize {
        self.names.len() + self.long.len() + self.txt.len() + self.nx.len() + self.answers.len()
    }

    pub(crate) fn on_dns(
        &mut self,
        cfg: &BehaviourConfig,
        h: &EventHeader,
        d: &DnsRecord,
        out: &mut Raised,
    ) {
        let c = &cfg.dns;
        let k = &h.key;
        if !c.enabled || is_chatter(k.dst_ip, k.src_port, k.dst_port) || is_local_name(&d.rrname) {
            return;
        }
        let name = d.rrname.trim_end_matches('.').to_ascii_lowercase();
        let Some((registered, sub)) = split_registered(&name) else {
            return;
        };
        let now = h.ts.0;
        let window = secs(c.window_secs);
        let client = k.src_ip;
        if d.kind == "query" {
            if matches!(d.rrtype.as_str(), "TXT" | "NULL") && c.txt_null_queries > 0 {
                let n = self.txt.touch(client, now, window).push(now, window);
                if n >= c.txt_null_queries {
                    out.raise(&DNS_TXT_VOLUME, client, window, || {
                        json!({"client": client.to_string(), "txt_null_queries": n,
                               "threshold": c.txt_null_queries, "window_secs": c.window_secs,
                               "last_name": name})
                    });
                }
            }
            if sub.is_empty() {
                return;
            }
            let longest = sub.split('.').map(str::len).max().unwrap_or(0);
            let key = (client, registered.to_owned());
            let long = if longest >= c.long_label {
                self.long.touch(key.clone(), now, window).push(now, window)
            } else {
                self.long.get(&key).map_or(0, |t| t.count(now, window))
            };
            let names = self.names.touch(key, now, window);
            if !insert_and_due(names, sub, now, window, c.unique_subdomains) {
                return;
            }
            let tunnel_key = (client, registered);
            if out.is_repeat(&DNS_TUNNEL, tunnel_key, window) {
                return;
            }
            let set = &names.0;
            let distinct = set.len();
            let sample = set.sample(64);
            let mean_entropy =
                sample.iter().map(|s| entropy(s)).sum::<f64>() / sample.len().max(1) as f64;
            let mean_len =
                sample.iter().map(String::len).sum::<usize>() as f64 / sample.len().max(1) as f64;
            let encoded = mean_entropy >= c.entropy && mean_len >= 16.0;
            if long >= c.long_label_queries.max(1) || encoded {
                out.raise(&DNS_TUNNEL, tunnel_key, window, || {
                    json!({"client": client.to_string(), "domain": registered,
                           "unique_subdomains": distinct, "long_label_queries": long,
                           "mean_entropy": (mean_entropy * 100.0).round() / 100.0,
                           "mean_subdomain_length": mean_len.round(),
                           "window_secs": c.window_secs,
                           "sample": sample.iter().take(5).collect::<Vec<_>>()})
                });
            }
            return;
        }
        if c.nxdomain_names == 0 {
            return;
        }
        // Every answer counts toward the source's NXDOMAIN share; only NXDOMAINs go further.
        let (answers, nx_answers) = self.answers.touch(client, now, window);
        let answered = answers.push(now, window);
        if d.rcode.as_deref() != Some("NXDOMAIN") {
            return;
        }
        let nx_share = nx_answers.push(now, window) as f64 / answered as f64;
        let nx = self.nx.touch(client, now, window);
        if !insert_and_due(nx, registered, now, window, c.nxdomain_names)
            || nx_share < c.nxdomain_ratio
            || out.is_repeat(&DGA, client, window)
        {
            return;
        }
        let set = &nx.0;
        let n = set.len();
        let sample = set.sample(64);
        let random = sample
            .iter()
            .filter(|r| looks_generated(r.split('.').next().unwrap_or(""), c.dga_entropy))
            .count();
        if random * 2 >= sample.len() {
            out.raise(&DGA, client, window, || {
                json!({"client": client.to_string(), "nxdomain_names": n,
                       "random_looking": random, "threshold": c.nxdomain_names,
                       "nxdomain_share": (nx_share * 100.0).round() / 100.0,
                       "answers": answered, "window_secs": c.window_secs,
                       "sample": sample.iter().take(10).collect::<Vec<_>>()})
            });
        }
    }
}
