//! Network namespaces joined to the host by veth pairs, made by the tests that need live
//! traffic; nothing outside them is ever addressed. Removed on drop.

use std::process::Command;

/// A namespace and the host end of its veth pair.
pub struct Netns {
    /// The namespace.
    pub ns: String,
    /// The host end of the veth pair (the capture interface).
    pub host_if: String,
    /// The namespace end.
    pub peer: String,
}

impl Netns {
    /// Adds another address (`.last` of the namespace's /24) inside the namespace.
    pub fn add_address(&self, ns_ip: &str, last: u8) -> String {
        let (net, _) = ns_ip.rsplit_once('.').expect("IPv4");
        let a = format!("{net}.{last}");
        ip(&["netns", "exec", &self.ns, "ip", "addr", "add", &format!("{a}/24"), "dev", &self.peer]);
        a
    }

    /// `cmd` run inside the namespace.
    pub fn exec(&self, cmd: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, cmd]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// Runs `ip ARGS`, which must succeed.
pub fn ip(args: &[&str]) {
    let st = Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2)");
    assert!(st.success(), "ip {args:?}");
}

/// Skips (outside CI) unless root: live capture needs CAP_NET_RAW and CAP_NET_ADMIN.
pub fn can_capture() -> bool {
    if unsafe { libc::geteuid() } != 0 {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root and must run this test"
        );
        eprintln!("skipping: live capture needs root (CAP_NET_RAW, CAP_NET_ADMIN)");
        return false;
    }
    true
}

/// A veth pair into a fresh namespace: (namespace, host address, namespace address). Tests
/// running at once pass different `tag`s (names and subnets differ).
pub fn veth(tag: u32) -> (Netns, String, String) {
    let id = (std::process::id() + tag * 1000) % 10_000;
    let net = Netns {
        ns: format!("nmt{id}"),
        host_if: format!("nmh{id}"),
        peer: format!("nmp{id}"),
    };
    let peer = net.peer.clone();
    let (host_ip, ns_ip) = (
        format!("10.{}.{}.1", 213 + tag, id % 250),
        format!("10.{}.{}.2", 213 + tag, id % 250),
    );
    ip(&["netns", "add", &net.ns]);
    ip(&[
        "link",
        "add",
        &net.host_if,
        "type",
        "veth",
        "peer",
        "name",
        &peer,
    ]);
    ip(&["link", "set", &peer, "netns", &net.ns]);
    ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &net.host_if]);
    ip(&["link", "set", &net.host_if, "up"]);
    ip(&[
        "netns",
        "exec",
        &net.ns,
        "ip",
        "addr",
        "add",
        &format!("{ns_ip}/24"),
        "dev",
        &peer,
    ]);
    ip(&["netns", "exec", &net.ns, "ip", "link", "set", &peer, "up"]);
    (net, host_ip, ns_ip)
}

