//! Per-token request limits per minute, hour and day, as fixed windows aligned to the Unix epoch
//! and kept in memory (a restart forgets the counts, which only ever favours the client).

use crate::auth::TokenInfo;
use std::collections::HashMap;
use std::sync::Mutex;

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// The outcome of one check, reported in `X-RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the first message may proceed.
    pub allowed: bool,
    /// How many of the messages counted may proceed (the first ones).
    pub granted: u32,
    /// Limit of the tightest window (the exceeded one when denied).
    pub limit: u32,
    /// Requests left in that window after this one.
    pub remaining: u32,
    /// When that window resets, Unix seconds.
    pub reset_unix: i64,
    /// Seconds to wait before retrying those not granted (0 when all were).
    pub retry_after_secs: u64,
}

#[derive(Default, Clone, Copy)]
struct Window {
    start: i64,
    count: u32,
}

#[derive(Default)]
struct Counters {
    windows: [Window; 3],
}

/// The in-memory counters of every token seen.
#[derive(Default)]
pub struct RateLimiter {
    state: Mutex<HashMap<i64, Counters>>,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request for `token` at `now_unix`; `None` when the token has no limits.
    pub fn check(&self, token: &TokenInfo, now_unix: i64) -> Option<RateDecision> {
        self.check_n(token, now_unix, 1)
    }

    /// Counts `n` JSON-RPC messages (a batch counts each of its messages) for `token`: as many
    /// as every window still allows are granted and counted; `None` when the token has no limits.
    pub fn check_n(&self, token: &TokenInfo, now_unix: i64, n: u32) -> Option<RateDecision> {
        let limits = [
            (MINUTE, token.rate_per_minute),
            (HOUR, token.rate_per_hour),
            (DAY, token.rate_per_day),
        ];
        if limits.iter().all(|(_, l)| l.is_none()) {
            return None;
        }
        let mut state = self.state.lock().ok()?;
        let counters = state.entry(token.id).or_default();
        // roll windows forward
        for ((len, _), w) in limits.iter().zip(counters.windows.iter_mut()) {
            let start = now_unix - now_unix.rem_euclid(*len);
            if w.start != start {
                *w = Window { start, count: 0 };
            }
        }
        let granted = limits
            .iter()
            .zip(counters.windows.iter())
            .filter_map(|((_, limit), w)| limit.map(|l| l.saturating_sub(w.count)))
            .fold(n, u32::min);
        // the window that frees up last among those that refuse some of the messages
        let mut blocking: Option<(u32, i64, u64)> = None;
        for ((len, limit), w) in limits.iter().zip(counters.windows.iter()) {
            let Some(limit) = *limit else { continue };
            if w.count.saturating_add(n) > limit {
                let reset = w.start.saturating_add(*len);
                let wait = u64::try_from(reset.saturating_sub(now_unix))
                    .unwrap_or(0)
                    .max(1);
                if blocking.is_none_or(|(_, _, b)| wait > b) {
                    blocking = Some((limit, reset, wait));
                }
            }
        }
        let mut tightest: Option<RateDecision> = None;
        for ((len, limit), w) in limits.iter().zip(counters.windows.iter_mut()) {
            let Some(limit) = *limit else { continue };
            w.count = w.count.saturating_add(granted);
            let remaining = limit.saturating_sub(w.count);
            if tightest.is_none_or(|t| remaining < t.remaining) {
                tightest = Some(RateDecision {
                    allowed: granted > 0,
                    granted,
                    limit,
                    remaining,
                    reset_unix: w.start.saturating_add(*len),
                    retry_after_secs: 0,
                });
            }
        }
        let mut d = tightest?;
        if let Some((limit, reset, wait)) = blocking {
            d.retry_after_secs = wait;
            if granted == 0 {
                d.limit = limit;
                d.reset_unix = reset;
            }
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;

    fn token(min: Option<u32>, hour: Option<u32>, day: Option<u32>) -> TokenInfo {
        TokenInfo {
            id: 9,
            name: "t".into(),
            scope: Scope::ReadOnly,
            rate_per_minute: min,
            rate_per_hour: hour,
            rate_per_day: day,
            expires_at: None,
            revoked: false,
        }
    }

    #[test]
    fn unlimited_tokens_are_not_counted() {
        let rl = RateLimiter::new();
        assert_eq!(rl.check(&token(None, None, None), 1000), None);
    }

    #[test]
    fn minute_window_denies_then_resets() {
        let rl = RateLimiter::new();
        let t = token(Some(2), None, None);
        let now = 120; // start of a minute
        let a = rl.check(&t, now);
        assert_eq!(a.map(|d| (d.allowed, d.remaining)), Some((true, 1)));
        let b = rl.check(&t, now + 10);
        assert_eq!(b.map(|d| (d.allowed, d.remaining)), Some((true, 0)));
        let c = rl.check(&t, now + 20);
        assert_eq!(
            c.map(|d| (d.allowed, d.retry_after_secs, d.reset_unix)),
            Some((false, 40, 180))
        );
        let d = rl.check(&t, now + 60);
        assert_eq!(d.map(|d| d.allowed), Some(true));
    }

    #[test]
    fn hour_limit_applies_across_minutes() {
        let rl = RateLimiter::new();
        let t = token(Some(100), Some(3), None);
        for i in 0..3 {
            assert_eq!(rl.check(&t, 3600 + i * 61).map(|d| d.allowed), Some(true));
        }
        let d = rl.check(&t, 3600 + 200);
        assert_eq!(d.map(|d| (d.allowed, d.limit)), Some((false, 3)));
        assert_eq!(d.map(|d| d.retry_after_secs), Some(3400));
    }

    #[test]
    fn a_batch_counts_each_message_and_is_granted_what_is_left() {
        let rl = RateLimiter::new();
        let t = token(Some(10), None, None);
        let a = rl.check_n(&t, 120, 7).unwrap();
        assert_eq!((a.allowed, a.granted, a.remaining), (true, 7, 3));
        let b = rl.check_n(&t, 121, 1000).unwrap();
        assert_eq!((b.allowed, b.granted, b.remaining), (true, 3, 0));
        assert_eq!(b.retry_after_secs, 59);
        let c = rl.check_n(&t, 122, 1).unwrap();
        assert_eq!((c.allowed, c.granted), (false, 0));
    }

    #[test]
    fn tightest_window_is_reported() {
        let rl = RateLimiter::new();
        let t = token(Some(60), Some(5), Some(1000));
        let d = rl.check(&t, 0);
        assert_eq!(d.map(|d| (d.limit, d.remaining)), Some((5, 4)));
    }
}
