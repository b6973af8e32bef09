//! Reuse of recent tool results. A tool that reads a snapshot refreshed on a fixed period
//! (sensor status is refreshed every 50 ms) declares that period as
//! [`crate::ToolDef::reuse_for`]; within it, a call with the same arguments is answered with the
//! result already encoded for the previous call. Scope checks, argument validation, rate
//! limiting, metrics and the audit row still happen for every call; only the handler, the
//! output-schema check and the encoding are skipped, and the answer is no staler than the
//! snapshot it came from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Distinct (tool, arguments) results kept; beyond it, expired entries are dropped first and,
/// if none are, everything (a burst of distinct arguments only costs recomputation).
const MAX_ENTRIES: usize = 256;

/// An encoded result and when it was made.
type Stamped = (Instant, Arc<[u8]>);

/// Encoded results by tool and canonical arguments.
#[derive(Default)]
pub(crate) struct ResultCache {
    entries: Mutex<HashMap<String, Stamped>>,
}

impl ResultCache {
    /// The key of a call: tool name and its arguments as canonical JSON (object keys sorted).
    pub(crate) fn key(tool: &str, args: &serde_json::Value) -> String {
        let mut key = String::with_capacity(tool.len() + 16);
        key.push_str(tool);
        key.push('\0');
        key.push_str(&serde_json::to_string(args).unwrap_or_default());
        key
    }

    /// The result stored under `key` if it is younger than `max_age`.
    pub(crate) fn get(&self, key: &str, max_age: Duration) -> Option<Arc<[u8]>> {
        let entries = self.entries.lock().ok()?;
        let (at, body) = entries.get(key)?;
        (at.elapsed() < max_age).then(|| body.clone())
    }

    /// Stores a fresh result; `max_age` is the tool's period, used to prune when full.
    pub(crate) fn put(&self, key: String, body: Arc<[u8]>, max_age: Duration) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, (at, _)| at.elapsed() < max_age);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), body));
    }
}

impl ResultCache {
    /// Forgets every stored result; answers how many there were.
    pub(crate) fn clear(&self) -> usize {
        self.entries
            .lock()
            .map(|mut e| {
                let n = e.len();
                e.clear();
                n
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_canonical_and_entries_expire() {
        let a = ResultCache::key("t", &json!({"b": 1, "a": 2}));
        let b = ResultCache::key("t", &json!({"a": 2, "b": 1}));
        assert_eq!(a, b);
        assert_ne!(a, ResultCache::key("u", &json!({"a": 2, "b": 1})));
        let cache = ResultCache::default();
        let body: Arc<[u8]> = Arc::from(&b"{}"[..]);
        cache.put(a.clone(), body.clone(), Duration::from_secs(60));
        assert_eq!(cache.get(&a, Duration::from_secs(60)), Some(body));
        assert_eq!(cache.get(&a, Duration::ZERO), None);
        assert_eq!(cache.get("missing", Duration::from_secs(60)), None);
    }

    #[test]
    fn stays_bounded() {
        let cache = ResultCache::default();
        for i in 0..(MAX_ENTRIES * 3) {
            let key = ResultCache::key("t", &json!({ "i": i }));
            cache.put(key, Arc::from(&b"{}"[..]), Duration::from_secs(60));
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }
}
