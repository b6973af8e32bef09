//! The sensor's packet path: capture sources, L2–L4 decoding, IP defragmentation, the flow
//! table, TCP reassembly, the packet ring buffer and the pipeline that ties them to an
//! application handler. Pure, synchronous code (no actix): the capture and pipeline threads
//! run it; actors only ever see the events the handler produces.
//!
//! Data flow: [`source`] / [`live`] → [`pipeline::Pipeline::process`] → [`mod@decode`] →
//! [`defrag`] → [`flow`] → [`ring`] → [`reassembly`] → [`pipeline::AppHandler`].
//! [`synth`] writes synthetic pcaps for tests and benchmarks; [`stats`] exposes counters.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod decode;
pub mod defrag;
pub mod flow;
pub mod hash;
pub mod live;
pub mod pipeline;
pub mod reassembly;
pub mod ring;
pub mod source;
pub mod stats;
pub mod synth;

pub use decode::{decode, DecodeError, DecodedPacket};
pub use flow::{FlowInfo, FlowState};
pub use live::{LiveConfig, LiveSource};
pub use pipeline::{AppHandler, Pipeline, PipelineConfig};
pub use ring::{ExportFilter, PacketRing};
pub use source::{PacketSource, PcapFileSource, RawPacket, SourceError, SourceEvent};
pub use stats::StatsSnapshot;

/// A configuration value that fails validation, with the dotted name of the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted field name (`flow.max_flows`).
    pub field: &'static str,
    /// What is wrong.
    pub message: &'static str,
}

impl ConfigError {
    /// A validation failure for `field`.
    pub fn new(field: &'static str, message: &'static str) -> Self {
        ConfigError { field, message }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
pub(crate) mod tests_support {
    //! Helpers shared by the tests of several modules.
    use std::path::{Path, PathBuf};

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    /// The system allocator, counting allocations per thread (tests run in parallel threads).
    pub struct CountingAlloc;

    // SAFETY: forwards to the system allocator; the counter is a const-initialised
    // thread-local that never allocates.
    unsafe impl GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: CountingAlloc = CountingAlloc;

    /// Allocations made by the current thread so far.
    pub fn allocations() -> u64 {
        ALLOCATIONS.with(|c| c.get())
    }

    /// Every public capture: `oracles/` and `captures/` of `../shared` beside the workspace,
    /// found from this crate's manifest directory (not from any absolute path).
    pub fn shared_captures() -> Vec<PathBuf> {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
        let mut files = Vec::new();
        for d in ["oracles", "captures"] {
            collect_captures(&shared.join(d), &mut files);
        }
        files
    }

    /// Every .pcap / .pcapng under `dir`, sorted.
    pub fn collect_captures(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                collect_captures(&p, out);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(p);
            }
        }
    }
}
