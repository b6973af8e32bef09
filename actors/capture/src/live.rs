//! Live capture from a Linux interface through an AF_PACKET socket with a TPACKET_V3
//! memory-mapped ring.
//!
//! Why not pnet's channel: pnet_datalink reads one packet per `recvfrom` system call and does
//! not expose its socket, so the kernel's drop counter (`PACKET_STATISTICS`) cannot be read.
//! Here the kernel fills blocks of a shared ring and we walk them without system calls,
//! releasing a block when all its packets are consumed; `PACKET_STATISTICS` gives kernel
//! drops. pnet_datalink is still used to enumerate and validate interfaces
//! ([`list_interfaces`]).
//!
//! Details: the socket is created with protocol 0 and bound to the interface afterwards, so no
//! packet of another interface slips in; promiscuous mode uses `PACKET_MR_PROMISC` membership
//! (dropped automatically with the socket); VLAN tags stripped by the NIC are put back into the
//! frame (as libpcap does), so VLAN decoding works on live traffic; `PACKET_IGNORE_OUTGOING`
//! is optional (needed on `lo`, which shows each packet twice); `PACKET_FANOUT` lets several
//! sockets share one interface. Several interfaces = several `LiveSource`s, one per thread.

use crate::decode::linktype;
use crate::source::{KernelStats, PacketSource, RawPacket, SourceError, SourceEvent};
use netmonitor_common::Timestamp;
use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};

/// Default bytes per ring block (a packet never spans blocks, so this caps packet size too).
pub const DEFAULT_BLOCK_BYTES: u32 = 1 << 20;
/// Default number of ring blocks (64 MiB of kernel ring).
pub const DEFAULT_BLOCK_COUNT: u32 = 64;

/// Live capture settings for one interface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// Interface name (`eth1`).
    pub interface: String,
    /// Receive traffic not addressed to this host (SPAN/TAP ports need it).
    pub promiscuous: bool,
    /// Ring block size in bytes (power of two, multiple of the page size).
    pub block_bytes: u32,
    /// Number of ring blocks.
    pub block_count: u32,
    /// The kernel hands over a partly filled block after this many milliseconds.
    pub block_timeout_ms: u32,
    /// `next_event` returns `Idle` after waiting this long for a block.
    pub poll_timeout_ms: u32,
    /// Skip packets this host sends (avoids the double copies on `lo`).
    pub ignore_outgoing: bool,
    /// Join this `PACKET_FANOUT` group (hash mode) to spread one interface over threads.
    pub fanout_group: Option<u16>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            interface: String::new(),
            promiscuous: true,
            block_bytes: DEFAULT_BLOCK_BYTES,
            block_count: DEFAULT_BLOCK_COUNT,
            block_timeout_ms: 10,
            poll_timeout_ms: 100,
            ignore_outgoing: false,
            fanout_group: None,
        }
    }
}

impl LiveConfig {
    /// Settings for one interface with defaults otherwise.
    pub fn for_interface(name: &str) -> Self {
        LiveConfig {
            interface: name.to_string(),
            ..LiveConfig::default()
        }
    }

    /// Checks the settings, naming the first bad field.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        if self.interface.is_empty() || self.interface.len() >= libc::IFNAMSIZ {
            return Err(crate::ConfigError::new(
                "live.interface",
                "must be 1 to 15 characters",
            ));
        }
        if !self.block_bytes.is_power_of_two() || self.block_bytes < 4096 {
            return Err(crate::ConfigError::new(
                "live.block_bytes",
                "must be a power of two >= 4096",
            ));
        }
        if self.block_count == 0 {
            return Err(crate::ConfigError::new(
                "live.block_count",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// An interface as the OS lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterfaceInfo {
    /// Name.
    pub name: String,
    /// OS index.
    pub index: u32,
    /// Administratively up.
    pub is_up: bool,
    /// Loopback interface.
    pub is_loopback: bool,
    /// MAC address, when it has one.
    pub mac: Option<String>,
    /// Addresses with prefix length.
    pub addresses: Vec<String>,
}

/// The machine's interfaces (via pnet_datalink).
pub fn list_interfaces() -> Vec<InterfaceInfo> {
    pnet_datalink::interfaces()
        .into_iter()
        .map(|i| InterfaceInfo {
            is_up: i.is_up(),
            is_loopback: i.is_loopback(),
            mac: i.mac.map(|m| m.to_string()),
            addresses: i.ips.iter().map(|n| n.to_string()).collect(),
            index: i.index,
            name: i.name,
        })
        .collect()
}

fn os_err(iface: &str, what: &'static str) -> SourceError {
    SourceError::Live {
        iface: iface.to_string(),
        what,
        source: io::Error::last_os_error(),
    }
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live, properly sized value for the duration of the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// pcap link type for an interface's ARPHRD type (from sysfs).
fn linktype_of(iface: &str) -> u32 {
    let ty = std::fs::read_to_string(format!("/sys/class/net/{iface}/type"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1);
    match ty {
        // ARPHRD_NONE (tun), ARPHRD_IPGRE, ARPHRD_TUNNEL, ARPHRD_TUNNEL6, ARPHRD_SIT, ARPHRD_PPP:
        // frames start with the IP header.
        0xFFFE | 778 | 768 | 769 | 776 | 512 => linktype::RAW,
        _ => linktype::ETHERNET,
    }
}

/// A live capture on one interface (see module docs).
pub struct LiveSource {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    block_bytes: usize,
    block_count: usize,
    block: usize,
    in_block: bool,
    /// Packets were handed out since the last `Idle`: when the ring runs dry the caller hears
    /// `Idle` at once (and sends its batch) instead of after the poll timeout.
    delivered: bool,
    pkts_left: u32,
    next_off: usize,
    poll_timeout_ms: i32,
    linktype: u32,
    iface_id: u16,
    name: String,
    scratch: Vec<u8>,
    stats: KernelStats,
}

// SAFETY: the mapping is owned exclusively by this value and only touched through `&mut self`.
unsafe impl Send for LiveSource {}

impl LiveSource {
    /// Opens the interface; `iface_id` is stamped on every packet ([`RawPacket::iface`]).
    pub fn open(cfg: &LiveConfig, iface_id: u16) -> Result<Self, SourceError> {
        cfg.validate().map_err(|e| SourceError::Live {
            iface: cfg.interface.clone(),
            what: "invalid configuration",
            source: io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
        })?;
        let name = cfg.interface.clone();
        let Some(ifc) = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == name)
        else {
            return Err(SourceError::Live {
                iface: name,
                what: "no such interface",
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        };
        let ifindex = i32::try_from(ifc.index).unwrap_or(0);
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os_err(&name, "socket(AF_PACKET) (needs CAP_NET_RAW)"));
        }
        // SAFETY: `raw` is a fresh, valid descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let version: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(s, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .map_err(|e| live_err(&name, "PACKET_VERSION", e))?;
        if cfg.ignore_outgoing {
            let one: libc::c_int = 1;
            setsockopt(s, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)
                .map_err(|e| live_err(&name, "PACKET_IGNORE_OUTGOING", e))?;
        }
        let frame_size: u32 = 2048;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_bytes,
            tp_block_nr: cfg.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: (cfg.block_bytes / frame_size) * cfg.block_count,
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(s, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| live_err(&name, "PACKET_RX_RING", e))?;
        let map_len = cfg.block_bytes as usize * cfg.block_count as usize;
        // SAFETY: mapping the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                s,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(os_err(&name, "mmap of the packet ring"));
        }
        // From here on Drop unmaps.
        let mut src = LiveSource {
            fd,
            map: map.cast(),
            map_len,
            block_bytes: cfg.block_bytes as usize,
            block_count: cfg.block_count as usize,
            block: 0,
            in_block: false,
            delivered: false,
            pkts_left: 0,
            next_off: 0,
            poll_timeout_ms: i32::try_from(cfg.poll_timeout_ms).unwrap_or(i32::MAX),
            linktype: linktype_of(&name),
            iface_id,
            name: name.clone(),
            scratch: Vec::with_capacity(cfg.block_bytes as usize),
            stats: KernelStats::default(),
        };
        // SAFETY: zeroed sockaddr_ll is a valid value; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: `sll` is a valid sockaddr_ll of the given size.
        let r = unsafe {
            libc::bind(
                s,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(os_err(&name, "bind"));
        }
        if cfg.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(s, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| live_err(&name, "promiscuous mode", e))?;
        }
        if let Some(group) = cfg.fanout_group {
            let arg: libc::c_int = i32::from(group) | ((libc::PACKET_FANOUT_HASH as i32) << 16);
            setsockopt(s, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
                .map_err(|e| live_err(&name, "PACKET_FANOUT", e))?;
        }
        // Reset counters so they start at the bind.
        let _ = src.read_kernel_stats();
        src.stats = KernelStats::default();
        Ok(src)
    }

    /// The pcap link type of this interface's frames.
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// Interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn block_ptr(&self, i: usize) -> *mut u8 {
        // SAFETY: i < block_count, so the offset stays inside the mapping.
        unsafe { self.map.add(i * self.block_bytes) }
    }

    fn block_status(&self, i: usize) -> u32 {
        let bd = self.block_ptr(i).cast::<libc::tpacket_block_desc>();
        // SAFETY: the block descriptor lies at the start of each block; the kernel writes the
        // status concurrently, hence the volatile read.
        let st = unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*bd).hdr.bh1.block_status)) };
        fence(Ordering::Acquire);
        st
    }

    fn release_block(&mut self, i: usize) {
        let bd = self.block_ptr(i).cast::<libc::tpacket_block_desc>();
        fence(Ordering::Release);
        // SAFETY: handing the block back to the kernel; we hold no references into it (the
        // borrow of the last packet ended when `next_event` was called again).
        unsafe {
            std::ptr::write_volatile(
                std::ptr::addr_of_mut!((*bd).hdr.bh1.block_status),
                libc::TP_STATUS_KERNEL,
            )
        };
    }

    fn read_kernel_stats(&mut self) -> io::Result<KernelStats> {
        // SAFETY: zeroed tpacket_stats_v3 is valid; getsockopt fills at most `len` bytes.
        let mut st: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: valid pointers to `st` and `len`.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // The kernel resets its counters on every read: accumulate.
        self.stats.packets += u64::from(st.tp_packets);
        self.stats.drops += u64::from(st.tp_drops);
        Ok(self.stats)
    }

    fn wait(&self) -> Result<bool, SourceError> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, self.poll_timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(live_err(&self.name, "poll", e));
        }
        if r > 0 && pfd.revents & libc::POLLERR != 0 {
            // Interface went down or away: surface it so the supervisor can restart.
            let mut err: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: valid pointers.
            unsafe {
                libc::getsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            if err != 0 {
                return Err(live_err(
                    &self.name,
                    "socket error",
                    io::Error::from_raw_os_error(err),
                ));
            }
        }
        Ok(r > 0)
    }
}

fn live_err(iface: &str, what: &'static str, source: io::Error) -> SourceError {
    SourceError::Live {
        iface: iface.to_string(),
        what,
        source,
    }
}

impl PacketSource for LiveSource {
    fn next_event(&mut self) -> Result<SourceEvent<'_>, SourceError> {
        loop {
            if self.in_block && self.pkts_left == 0 {
                self.release_block(self.block);
                self.block = (self.block + 1) % self.block_count;
                self.in_block = false;
            }
            if !self.in_block {
                if self.block_status(self.block) & libc::TP_STATUS_USER == 0 {
                    if std::mem::take(&mut self.delivered) {
                        return Ok(SourceEvent::Idle);
                    }
                    self.wait()?;
                    if self.block_status(self.block) & libc::TP_STATUS_USER == 0 {
                        return Ok(SourceEvent::Idle);
                    }
                }
                let bd = self
                    .block_ptr(self.block)
                    .cast::<libc::tpacket_block_desc>();
                // SAFETY: the block is ours (status USER) until released.
                let (num, first) = unsafe {
                    let h = std::ptr::read_volatile(std::ptr::addr_of!((*bd).hdr.bh1));
                    (h.num_pkts, h.offset_to_first_pkt as usize)
                };
                self.in_block = true;
                self.pkts_left = num;
                self.next_off = first;
                continue;
            }
            let hdr_size = std::mem::size_of::<libc::tpacket3_hdr>();
            let off = self.next_off;
            if off + hdr_size > self.block_bytes {
                // Inconsistent block: skip the rest of it.
                self.pkts_left = 0;
                continue;
            }
            let base = self.block_ptr(self.block);
            // SAFETY: `off + hdr_size` is inside the block checked above.
            let h: libc::tpacket3_hdr = unsafe { std::ptr::read_unaligned(base.add(off).cast()) };
            self.pkts_left -= 1;
            self.delivered = true;
            self.next_off = if h.tp_next_offset != 0 {
                off + h.tp_next_offset as usize
            } else {
                self.block_bytes
            };
            let start = off + usize::from(h.tp_mac);
            let len = h.tp_snaplen as usize;
            if start + len > self.block_bytes {
                continue;
            }
            // SAFETY: `[start, start+len)` is inside the block, which the kernel will not touch
            // until we release it on a later call; the slice's lifetime is tied to `&mut self`.
            let data: &[u8] = unsafe { std::slice::from_raw_parts(base.add(start), len) };
            let ts = Timestamp::from_secs_micros(i64::from(h.tp_sec), i64::from(h.tp_nsec / 1000));
            let mut orig_len = h.tp_len;
            let vlan_valid = h.tp_status & libc::TP_STATUS_VLAN_VALID != 0
                && (h.hv1.tp_vlan_tci != 0 || h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0);
            if vlan_valid && self.linktype == linktype::ETHERNET && data.len() >= 12 {
                // Put back the 802.1Q tag the NIC stripped.
                let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    h.hv1.tp_vlan_tpid
                } else {
                    0x8100
                };
                let tci = (h.hv1.tp_vlan_tci & 0xFFFF) as u16;
                self.scratch.clear();
                let (macs, rest) = data.split_at(12);
                self.scratch.extend_from_slice(macs);
                self.scratch.extend_from_slice(&tpid.to_be_bytes());
                self.scratch.extend_from_slice(&tci.to_be_bytes());
                self.scratch.extend_from_slice(rest);
                orig_len = orig_len.saturating_add(4);
                return Ok(SourceEvent::Packet(RawPacket {
                    ts,
                    linktype: self.linktype,
                    data: &self.scratch,
                    orig_len,
                    iface: self.iface_id,
                }));
            }
            return Ok(SourceEvent::Packet(RawPacket {
                ts,
                linktype: self.linktype,
                data,
                orig_len,
                iface: self.iface_id,
            }));
        }
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        self.read_kernel_stats().ok()
    }
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        // SAFETY: unmapping the region mapped in `open`; no references outlive `self`.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn ip(args: &[&str]) -> bool {
        Command::new("ip")
            .args(args)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    #[test]
    fn config_validation_names_fields() {
        assert_eq!(
            LiveConfig::default().validate().unwrap_err().field,
            "live.interface"
        );
        let c = LiveConfig {
            block_bytes: 5000,
            ..LiveConfig::for_interface("eth0")
        };
        assert_eq!(c.validate().unwrap_err().field, "live.block_bytes");
        assert!(LiveConfig::for_interface("eth0").validate().is_ok());
    }

    #[test]
    fn lists_loopback() {
        let l = list_interfaces();
        assert!(l.iter().any(|i| i.is_loopback), "{l:?}");
    }

    #[test]
    fn unknown_interface_is_a_clear_error() {
        let e = LiveSource::open(&LiveConfig::for_interface("nm-nosuch0"), 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("no such interface"), "{e}");
    }

    /// Captures real traffic on a veth pair whose other end is in a private network
    /// namespace. Needs root and iproute2; skipped otherwise.
    #[test]
    fn captures_on_a_veth_pair_in_a_namespace() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 || !ip(&["-V"]) {
            eprintln!("needs root and iproute2; skipping");
            return;
        }
        let id = std::process::id() % 100_000;
        let ns = format!("nmcap{id}");
        let a = format!("nmA{id}");
        let b = format!("nmB{id}");
        let net = format!("10.{}.{}", 200 + (id % 50), id % 250);
        struct Cleanup(String, String);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = Command::new("ip").args(["link", "del", &self.1]).status();
                let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
            }
        }
        let _c = Cleanup(ns.clone(), a.clone());
        assert!(ip(&["netns", "add", &ns]));
        assert!(ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]));
        assert!(ip(&["link", "set", &b, "netns", &ns]));
        assert!(ip(&["addr", "add", &format!("{net}.1/24"), "dev", &a]));
        assert!(ip(&["link", "set", &a, "up"]));
        assert!(ip(&[
            "netns",
            "exec",
            &ns,
            "ip",
            "addr",
            "add",
            &format!("{net}.2/24"),
            "dev",
            &b
        ]));
        assert!(ip(&["netns", "exec", &ns, "ip", "link", "set", &b, "up"]));

        let cfg = LiveConfig {
            poll_timeout_ms: 50,
            ..LiveConfig::for_interface(&a)
        };
        let mut src = LiveSource::open(&cfg, 3).unwrap();
        assert_eq!(src.linktype(), linktype::ETHERNET);
        let sock = std::net::UdpSocket::bind(format!("{net}.1:0")).unwrap();
        let marker = b"netmonitor-live-capture-marker";
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut found = false;
        let mut sent = Instant::now() - Duration::from_secs(1);
        while Instant::now() < deadline && !found {
            if sent.elapsed() > Duration::from_millis(200) {
                let _ = sock.send_to(marker, format!("{net}.2:9999"));
                sent = Instant::now();
            }
            match src.next_event().unwrap() {
                SourceEvent::Packet(p) => {
                    assert_eq!(p.iface, 3);
                    assert!(p.ts.0 > 1_600_000_000_000_000);
                    if let Ok(d) = crate::decode::decode(p.linktype, p.data) {
                        if d.dst_port == 9999 && d.payload == marker {
                            found = true;
                        }
                    }
                }
                SourceEvent::Idle | SourceEvent::End => {}
            }
        }
        assert!(found, "marker datagram not captured");
        let k = src.kernel_stats().unwrap();
        assert!(k.packets >= 1, "{k:?}");
    }
}
