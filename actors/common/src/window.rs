//! Sliding windows over capture time for detectors: a map bounded in keys that evicts what is
//! stale first, event times in a window (rates), and distinct values in a window (spread). All
//! bounded, so a spoofed-source flood costs a fixed amount of memory and counts its evictions.

use std::collections::VecDeque;

/// Keys come off the wire (spoofable addresses and ports): a per-process randomly seeded hash,
/// several times cheaper than SipHash for these short keys.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
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
            map: HashMap::default(),
            cap: cap.max(1),
            evicted: 0,
        }
    }

    /// The value for `key`, created if absent (evicting first when full).
    pub fn touch(&mut self, key: K, now: i64, window: i64) -> &mut V {
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
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

/// Values a [`Distinct`] keeps in its sighting list alone, before it builds a hash map.
const SMALL_DISTINCT: usize = 8;

/// Distinct values seen in a window, with when each was last seen (spread detections).
/// Expiry and eviction are amortized O(1): `order` lists sightings oldest first, so the values
/// that fall out of the window (or the oldest, when full) are found at its front, not by a scan.
/// Most keys see a handful of values (a spoofed source probes once): up to [`SMALL_DISTINCT`]
/// the sighting list is the whole set and no map is built.
#[derive(Debug, Clone)]
pub struct Distinct<T> {
    /// value → last seen; built past `SMALL_DISTINCT` values, empty (unallocated) before.
    values: HashMap<T, i64>,
    /// (time, value) per sighting, oldest first. With no map each value appears once; with
    /// one, an entry is stale where its value was seen again later.
    order: VecDeque<(i64, T)>,
}

impl<T> Default for Distinct<T> {
    fn default() -> Self {
        Distinct {
            values: HashMap::default(),
            order: VecDeque::new(),
        }
    }
}

impl<T: Eq + Hash + Clone + Ord> Distinct<T> {
    /// Records one value and returns how many distinct values fall in the window ending now.
    pub fn insert(&mut self, value: T, now: i64, window: i64) -> usize {
        let horizon = now.saturating_sub(window);
        while self.order.front().is_some_and(|(t, _)| *t < horizon) {
            self.pop_oldest();
        }
        if self.values.is_empty() {
            match self.order.iter().position(|(_, v)| *v == value) {
                Some(i) if self.order[i].0 >= now => {}
                Some(i) => {
                    self.order.remove(i);
                    self.order.push_back((now, value));
                }
                None if self.order.len() < SMALL_DISTINCT => self.order.push_back((now, value)),
                None => {
                    self.values = self.order.iter().map(|(t, v)| (v.clone(), *t)).collect();
                    self.insert_many(value, now);
                }
            }
            return self.len();
        }
        self.insert_many(value, now);
        self.values.len()
    }

    /// `insert` once the map is built.
    fn insert_many(&mut self, value: T, now: i64) {
        match self.values.get_mut(&value) {
            Some(t) if *t >= now => {}
            Some(t) => {
                *t = now;
                self.order.push_back((now, value));
                if self.order.len() > 2 * self.values.len() + 64 {
                    let values = &self.values;
                    self.order.retain(|(t, v)| values.get(v) == Some(t));
                }
            }
            None => {
                while self.values.len() >= MAX_DISTINCT_PER_KEY && self.pop_oldest() {}
                self.values.insert(value.clone(), now);
                self.order.push_back((now, value));
            }
        }
    }

    /// Drops the oldest sighting, and its value if that was its latest; false when none is left.
    fn pop_oldest(&mut self) -> bool {
        let Some((t, v)) = self.order.pop_front() else {
            return false;
        };
        if self.values.get(&v) == Some(&t) {
            self.values.remove(&v);
            if self.values.is_empty() {
                // Every sighting left is stale: back to the small form.
                self.order.clear();
                self.values = HashMap::default();
            }
        }
        true
    }

    /// Distinct values held.
    pub fn len(&self) -> usize {
        if self.values.is_empty() {
            self.order.len()
        } else {
            self.values.len()
        }
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether `value` is held.
    pub fn contains<Q: ?Sized + Hash + Eq>(&self, value: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
    {
        if self.values.is_empty() {
            self.order.iter().any(|(_, v)| v.borrow() == value)
        } else {
            self.values.contains_key(value)
        }
    }

    /// The `n` values seen most recently, sorted (a sample for evidence); only those are cloned.
    /// Walks the sighting list from its newest end, so it costs `n`, not the set's size.
    pub fn sample(&self, n: usize) -> Vec<T> {
        let mut v: Vec<&T> = Vec::with_capacity(n.min(self.len()));
        for (t, value) in self.order.iter().rev() {
            if v.len() >= n {
                break;
            }
            let live = self.values.is_empty() || self.values.get(value) == Some(t);
            if live {
                v.push(value);
            }
        }
        v.sort_unstable();
        v.into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_forgets_what_left_the_window_and_keeps_what_was_seen_again() {
        let mut d = Distinct::default();
        assert_eq!(d.insert(1u16, 0, 10), 1);
        assert_eq!(d.insert(2, 5, 10), 2);
        assert_eq!(d.insert(1, 8, 10), 2, "seen again, not new");
        // At 16 the horizon is 6: 2 (seen at 5) is gone, 1 (last seen at 8) stays.
        assert_eq!(d.insert(3, 16, 10), 2);
        assert!(d.contains(&1) && d.contains(&3) && !d.contains(&2));
        assert_eq!(d.insert(4, 100, 10), 1);
    }

    #[test]
    fn distinct_counts_the_same_past_the_small_form() {
        let mut d = Distinct::default();
        for v in 0..40u32 {
            assert_eq!(d.insert(v, i64::from(v), 100), v as usize + 1);
        }
        assert_eq!(d.sample(3), vec![37, 38, 39], "the latest three");
        // Everything but 39 expires; back to one value, then to the small form again.
        assert_eq!(d.insert(39, 200, 100), 1);
        assert!(d.contains(&39) && !d.contains(&0));
        assert_eq!(d.insert(7, 201, 100), 2);
        assert_eq!(d.insert(7, 202, 100), 2);
        assert_eq!(d.sample(10), vec![7, 39]);
    }

    #[test]
    fn distinct_full_evicts_the_least_recently_seen() {
        let mut d = Distinct::default();
        for v in 0..MAX_DISTINCT_PER_KEY as u32 {
            d.insert(v, i64::from(v), 1 << 40);
        }
        d.insert(0, 5_000, 1 << 40);
        assert_eq!(d.insert(99_999, 5_001, 1 << 40), MAX_DISTINCT_PER_KEY);
        assert!(d.contains(&0), "0 was seen last, so 1 went instead");
        assert!(!d.contains(&1) && d.contains(&99_999));
    }

    #[test]
    fn distinct_repeats_do_not_grow_without_bound() {
        let mut d = Distinct::default();
        for t in 0..100_000 {
            d.insert(t % 3, t, 1 << 40);
        }
        assert_eq!(d.len(), 3);
        assert!(
            d.order.len() <= 2 * 3 + 65,
            "{} sightings kept",
            d.order.len()
        );
    }
}
