//! `dns_lookup`: forward (name → addresses) and reverse (address → name) resolution through
//! the system resolver (`/etc/hosts`, then the configured DNS servers), so it reaches outside
//! the sensor (open world).

use crate::args::invalid;
use crate::schema::*;
use crate::support::*;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;

/// Longest DNS name (RFC 1035 §2.3.4, without the final dot).
const MAX_NAME_LEN: usize = 253;
/// Longest label.
const MAX_LABEL_LEN: usize = 63;
/// Resolver time limit.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Buffer for a reverse-resolved name (glibc's NI_MAXHOST).
const HOST_BUF_LEN: usize = 1025;

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![dns_lookup(ctx), lookup_ip_owner(ctx)]
}

fn lookup_ip_owner(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "lookup_ip_owner",
            title: "Who owns an address",
            description: "The autonomous system (number, name, country) and address range holding an IP address, from the offline IP-to-ASN table loaded like a feed (format ip2asn, e.g. iptoasn.com's ip2asn-combined.tsv). Nothing leaves the sensor. Fails when no such table is configured.",
            input: input(vec![("ip", ip("IPv4 or IPv6 address"))], &["ip"]),
            output: output(vec![
                ("ip", string("The address")),
                ("found", boolean("A range holds it", None)),
                ("asn", opt_int("AS number (0: not routed)")),
                ("as_name", opt_string("AS name")),
                ("country", opt_string("Country code")),
                ("range_start", opt_string("First address of the range")),
                ("range_end", opt_string("Last address of the range")),
                ("source", opt_string("Feed the table came from")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let ip = args.req_ip("ip")?;
            let feeds = ctx.engine.feeds.as_ref().ok_or_else(|| {
                ToolError::Unavailable("threat intelligence is off (intel.enabled = false)".into())
            })?;
            let has_table = feeds
                .send(netmonitor_intel::feeds::ListFeeds)
                .await
                .map(|l| l.iter().any(|f| f.format == "ip2asn" && f.indicators > 0))
                .unwrap_or(false);
            if !has_table {
                return Err(ToolError::Unavailable(
                    "no IP-to-ASN table is loaded: add a feed with format ip2asn".into(),
                ));
            }
            let found = feeds
                .send(netmonitor_intel::feeds::LookupAsn(ip))
                .await
                .map_err(|e| ToolError::Unavailable(format!("feed actor: {e}")))?;
            Ok(match found {
                Some(o) => json!({
                    "ip": ip.to_string(), "found": true, "asn": o.asn, "as_name": o.as_name,
                    "country": o.country, "range_start": o.range_start, "range_end": o.range_end,
                    "source": o.source,
                }),
                None => json!({
                    "ip": ip.to_string(), "found": false, "asn": null, "as_name": null,
                    "country": null, "range_start": null, "range_end": null, "source": null,
                }),
            })
        },
    )
}

/// Whether `name` is a syntactically valid host name (letters, digits, `-`, `_`, dots).
pub(crate) fn valid_hostname(name: &str) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name);
    !n.is_empty()
        && n.len() <= MAX_NAME_LEN
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= MAX_LABEL_LEN
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Reverse lookup with `getnameinfo(NI_NAMEREQD)`; `Ok(None)` when the address has no name.
fn reverse_lookup(ip: IpAddr) -> Result<Option<String>, String> {
    let mut host = [0 as libc::c_char; HOST_BUF_LEN];
    let rc = match ip {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.octets()),
            };
            // SAFETY: `sa` is a valid sockaddr_in of the length passed, `host` a writable
            // buffer of the length passed; no service buffer is requested.
            unsafe {
                libc::getnameinfo(
                    (&sa as *const libc::sockaddr_in).cast::<libc::sockaddr>(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    HOST_BUF_LEN as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
        IpAddr::V6(v6) => {
            // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_addr = libc::in6_addr {
                s6_addr: v6.octets(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe {
                libc::getnameinfo(
                    (&sa as *const libc::sockaddr_in6).cast::<libc::sockaddr>(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    HOST_BUF_LEN as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
    };
    match rc {
        0 => {
            let bytes: Vec<u8> = host
                .iter()
                .take_while(|c| **c != 0)
                .map(|c| *c as u8)
                .collect();
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        libc::EAI_NONAME => Ok(None),
        other => {
            // SAFETY: gai_strerror returns a pointer to a static NUL-terminated string.
            let msg = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(other)) };
            Err(msg.to_string_lossy().into_owned())
        }
    }
}

fn dns_lookup(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "dns_lookup",
            title: "DNS lookup",
            description: "Resolves a host name to its addresses, or an IP address to its name (reverse lookup), with the system resolver (/etc/hosts, then the configured DNS servers). The query leaves the sensor: the DNS servers see it.",
            input: input(
                vec![("query", string_len("Host name (example.com) or IP address (for a reverse lookup)", 1, 255))],
                &["query"],
            ),
            output: output(vec![
                ("query", string("What was asked")),
                ("kind", enumeration("forward or reverse", &["forward", "reverse"])),
                ("addresses", array("Addresses found (forward)", string("Address"))),
                ("hostname", opt_string("Name found (reverse); null when the address has none")),
                ("resolver", string("Which resolver answered")),
            ]),
            annotations: READ_OPEN_WORLD,
            scope: Scope::ReadOnly,
        },
        |_ctx, _t, args| async move {
            let query = args.req_str("query")?;
            if let Some(ip) = crate::args::parse_ip(&query) {
                let task = tokio::task::spawn_blocking(move || reverse_lookup(ip));
                let name = tokio::time::timeout(LOOKUP_TIMEOUT, task)
                    .await
                    .map_err(|_| ToolError::Unavailable("reverse lookup timed out".into()))?
                    .map_err(|e| ToolError::Failed(format!("reverse lookup: {e}")))?
                    .map_err(|e| ToolError::Unavailable(format!("reverse lookup: {e}")))?;
                return Ok(json!({
                    "query": query, "kind": "reverse", "addresses": [ip.to_string()],
                    "hostname": name, "resolver": "system",
                }));
            }
            if !valid_hostname(&query) {
                return Err(invalid("query", "is neither an IP address nor a valid host name"));
            }
            let found = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((query.as_str(), 0)))
                .await
                .map_err(|_| ToolError::Unavailable("lookup timed out".into()))?;
            let mut addrs: Vec<String> = match found {
                Ok(it) => it.map(|sa| sa.ip().to_string()).collect(),
                Err(e) => {
                    return Err(ToolError::NotFound(format!("{query}: {e}")));
                }
            };
            addrs.sort();
            addrs.dedup();
            Ok(json!({
                "query": query, "kind": "forward", "addresses": addrs,
                "hostname": null, "resolver": "system",
            }))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_checked() {
        assert!(valid_hostname("example.com"));
        assert!(valid_hostname("_ldap._tcp.dc.example.com."));
        assert!(valid_hostname("localhost"));
        assert!(!valid_hostname(""));
        assert!(!valid_hostname("a..b"));
        assert!(!valid_hostname("-bad.example"));
        assert!(!valid_hostname("spaces in.name"));
        assert!(!valid_hostname(&"a".repeat(64)));
    }

    #[test]
    fn reverse_lookup_of_loopback_does_not_fail() {
        // /etc/hosts normally names 127.0.0.1; either way the call must not error.
        let r = reverse_lookup("127.0.0.1".parse().unwrap());
        assert!(r.is_ok(), "{r:?}");
    }
}
