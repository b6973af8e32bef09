//! Sliding windows over capture time for detectors: a map bounded in keys that evicts what is
//! stale first, event times in a window (rates), and distinct values in a window (spread). All
//! bounded, so a spoofed-source flood costs a fixed amount of memory and counts its evictions.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Most event times one [`Times`] keeps.
pub const MAX_EVENTS_PER_KEY: usize = 1024;
/// Most values one [`Distinct`] keeps.
pub const MAX_DISTINCT_PER_KEY: usize = 1024;

/// A map bounded to `cap` keys, each stamped with the capture time it was last touched.
#[derive(Debug)]
pub struct Bounded<K, V> {
    map: HashMap<K, (i64, V)>,
    cap: usize,
    /// Keys dropped to make room.
    pub evicted: u64,
}

impl<K: Eq + Hash, V: Default> Bounded<K, V> {
    /// An empty map holding at most `cap` keys.
    pub fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            cap: cap.max(1),
            evicted: 0,
        }
    }

    /// The value for `key`, created if absent (evicting first when full).
    pub fn touch(&mut self, key: K, now: i64, window: i64) -> &mut V {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.make_room(now, window);
        }
        let slot = self.map.entry(key).or_insert_with(|| (now, V::default()));
        slot.0 = slot.0.max(now);
        &mut slot.1
    }

    /// When `key` was last touched.
    pub fn last_touched(&self, key: &K) -> Option<i64> {
        self.map.get(key).map(|(t, _)| *t)
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(_, v)| v)
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key).map(|(_, v)| v)
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every (key, value), in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, (_, v))| (k, v))
    }

    /// Drops the keys not touched since `horizon`; returns how many.
    pub fn expire(&mut self, horizon: i64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, (t, _)| *t >= horizon);
        before - self.map.len()
    }

    /// Drops expired keys; if that frees nothing, the least recently seen quarter.
    fn make_room(&mut self, now: i64, window: i64) {
        let before = self.map.len();
        let horizon = now.saturating_sub(window);
        self.map.retain(|_, (t, _)| *t >= horizon);
        if self.map.len() >= self.cap {
            let mut times: Vec<i64> = self.map.values().map(|(t, _)| *t).collect();
            let k = (times.len() / 4).min(times.len().saturating_sub(1));
            let (_, cut, _) = times.select_nth_unstable(k);
            let cut = *cut;
            self.map.retain(|_, (t, _)| *t > cut);
        }
        self.evicted += (before - self.map.len()) as u64;
    }
}

/// Event times in a window (count detections).
#[derive(Debug, Default, Clone)]
pub struct Times(VecDeque<i64>);

impl Times {
    /// Records one event and returns how many fall in the window ending now.
    pub fn push(&mut self, now: i64, window: i64) -> usize {
        self.expire(now, window);
        if self.0.len() >= MAX_EVENTS_PER_KEY {
            self.0.pop_front();
        }
        self.0.push_back(now);
        self.0.len()
    }

    /// Forgets events older than the window ending now; returns how many remain.
    pub fn expire(&mut self, now: i64, window: i64) -> usize {
        let horizon = now.saturating_sub(window);
        while self.0.front().is_some_and(|t| *t < horizon) {
            self.0.pop_front();
        }
        self.0.len()
    }

    /// Events in the window ending now, without forgetting anything.
    pub fn count(&self, now: i64, window: i64) -> usize {
        let horizon = now.saturating_sub(window);
        self.0.iter().filter(|t| **t >= horizon).count()
    }

    /// The times held, oldest first.
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().copied()
    }
}

/// Distinct values seen in a window, with when each was last seen (spread detections).
#[derive(Debug, Clone)]
pub struct Distinct<T> {
    values: HashMap<T, i64>,
    oldest: i64,
}

impl<T> Default for Distinct<T> {
    fn default() -> Self {
        Distinct {
            values: HashMap::new(),
            oldest: 0,
        }
    }
}

impl<T: Eq + Hash + Clone + Ord> Distinct<T> {
    /// Records one value and returns how many distinct values fall in the window ending now.
    pub fn insert(&mut self, value: T, now: i64, window: i64) -> usize {
        let horizon = now.saturating_sub(window);
        if !self.values.is_empty() && self.oldest < horizon {
            self.values.retain(|_, t| *t >= horizon);
            self.oldest = self.values.values().copied().min().unwrap_or(now);
        }
        if !self.values.contains_key(&value) && self.values.len() >= MAX_DISTINCT_PER_KEY {
            if let Some(old) = self
                .values
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(n, _)| n.clone())
            {
                self.values.remove(&old);
            }
        }
        if self.values.is_empty() {
            self.oldest = now;
        }
        self.oldest = self.oldest.min(now);
        self.values.insert(value, now);
        self.values.len()
    }

    /// Distinct values held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether `value` is held.
    pub fn contains(&self, value: &T) -> bool {
        self.values.contains_key(value)
    }

    /// Up to `n` values, sorted, for evidence.
    pub fn sample(&self, n: usize) -> Vec<T> {
        let mut v: Vec<T> = self.values.keys().cloned().collect();
        v.sort();
        v.truncate(n);
        v
    }
}
