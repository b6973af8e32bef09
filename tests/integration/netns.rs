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
        ip(&[
            "netns",
            "exec",
            &self.ns,
            "ip",
            "addr",
            "add",
            &format!("{a}/24"),
            "dev",
            &self.peer,
        ]);
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

/// Two namespaces on one host bridge (no host address, no forwarding): traffic between them
/// crosses the client's host-side veth end, which is where the sensor captures.
pub struct Bridged {
    /// The bridge.
    pub bridge: String,
    /// The client namespace; its `host_if` is the capture interface.
    pub client: Netns,
    /// The server namespace.
    pub server: Netns,
    /// The client's and the server's addresses.
    pub client_ip: String,
    pub server_ip: String,
}

impl Drop for Bridged {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// A fresh bridged pair of namespaces; `tag` as for [`veth`].
pub fn bridged(tag: u32) -> Bridged {
    let id = (std::process::id() + tag * 1000) % 10_000;
    let bridge = format!("nmb{id}");
    ip(&["link", "add", &bridge, "type", "bridge"]);
    ip(&["link", "set", &bridge, "up"]);
    let subnet = format!("10.{}.{}", 213 + tag, id % 250);
    let side = |role: &str, last: u8| {
        let net = Netns {
            ns: format!("nm{role}{id}"),
            host_if: format!("nm{role}h{id}"),
            peer: format!("nm{role}p{id}"),
        };
        let addr = format!("{subnet}.{last}");
        ip(&["netns", "add", &net.ns]);
        ip(&[
            "link",
            "add",
            &net.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &net.peer,
        ]);
        ip(&["link", "set", &net.peer, "netns", &net.ns]);
        ip(&["link", "set", &net.host_if, "master", &bridge]);
        ip(&["link", "set", &net.host_if, "up"]);
        let inside = |args: &[&str]| {
            let mut a = vec!["netns", "exec", &net.ns, "ip"];
            a.extend_from_slice(args);
            ip(&a);
        };
        inside(&["addr", "add", &format!("{addr}/24"), "dev", &net.peer]);
        inside(&["link", "set", &net.peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        (net, addr)
    };
    let (client, client_ip) = side("c", 2);
    let (server, server_ip) = side("s", 3);
    Bridged {
        bridge,
        client,
        server,
        client_ip,
        server_ip,
    }
}
