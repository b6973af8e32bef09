//! Process memory figures from `/proc/self/status` (Linux), for `get_memory_status`.

use serde::Serialize;

/// Memory and thread figures of this process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ProcMemory {
    /// Resident set size (VmRSS), bytes.
    pub rss_bytes: u64,
    /// Peak resident set size (VmHWM), bytes.
    pub peak_rss_bytes: u64,
    /// Virtual size (VmSize), bytes.
    pub virtual_bytes: u64,
    /// Threads.
    pub threads: u64,
}

/// Reads this process's figures; `None` where `/proc` is unavailable.
pub(crate) fn read_self() -> Option<ProcMemory> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .map(|s| parse_status(&s))
}

/// Parses the text of a `/proc/<pid>/status` file.
pub(crate) fn parse_status(text: &str) -> ProcMemory {
    let mut m = ProcMemory::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(n) = parts.next().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let scale = match parts.next() {
            Some("kB") => 1024,
            _ => 1,
        };
        let v = n.saturating_mul(scale);
        match key {
            "VmRSS" => m.rss_bytes = v,
            "VmHWM" => m.peak_rss_bytes = v,
            "VmSize" => m.virtual_bytes = v,
            "Threads" => m.threads = n,
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_status_text() {
        let text = "Name:\tnetmonitor\nVmPeak:\t  200000 kB\nVmSize:\t  199000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t9\nbogus line\nVmSwap:\tx kB\n";
        let m = parse_status(text);
        assert_eq!(m.rss_bytes, 40960 * 1024);
        assert_eq!(m.peak_rss_bytes, 51200 * 1024);
        assert_eq!(m.virtual_bytes, 199000 * 1024);
        assert_eq!(m.threads, 9);
        let me = read_self();
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(me.map(|m| m.rss_bytes > 0).unwrap_or(false));
        }
    }
}
