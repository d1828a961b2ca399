//! Request rate limits: a token bucket per client address and one per user.
//!
//! A bucket holds up to `burst` tokens and refills at `per_second`; a request
//! takes one token, and without one it is refused with the seconds until the
//! next token. Memory is bounded: at most `max_keys` buckets are tracked;
//! when full, buckets that have refilled completely (idle clients, which lose
//! nothing by being forgotten) are dropped first, then the least recently
//! used ones.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// One limit's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second; 0 turns the limit off.
    pub per_second: f64,
    /// Bucket size: requests a quiet client may send at once.
    pub burst: f64,
}

impl Rate {
    pub const OFF: Rate = Rate {
        per_second: 0.0,
        burst: 0.0,
    };

    pub fn is_off(&self) -> bool {
        self.per_second <= 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by `K`.
pub struct Limiter<K> {
    rate: Rate,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate, max_keys: usize) -> Limiter<K> {
        Limiter {
            rate,
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`; `Err(seconds)` when there is none, with the
    /// whole seconds (at least 1) until there is.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), u32> {
        if self.rate.is_off() {
            return Ok(());
        }
        let burst = self.rate.burst.max(1.0);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.evict(&mut buckets, now, burst);
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate.per_second).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / self.rate.per_second;
            Err(wait.ceil().clamp(1.0, f64::from(u32::MAX)) as u32)
        }
    }

    fn evict(&self, buckets: &mut HashMap<K, Bucket>, now: Instant, burst: f64) {
        let rate = self.rate.per_second;
        buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst);
        if buckets.len() >= self.max_keys {
            // Everyone is busy: forget the least recently seen half.
            let mut seen: Vec<Instant> = buckets.values().map(|b| b.last).collect();
            seen.sort_unstable();
            let cut = seen[seen.len() / 2];
            buckets.retain(|_, b| b.last > cut);
        }
    }

    /// Buckets tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// The two limits bmcd applies.
pub struct RateLimits {
    pub address: Limiter<IpAddr>,
    pub user: Limiter<String>,
}

impl RateLimits {
    pub fn new(address: Rate, user: Rate, max_keys: usize) -> RateLimits {
        RateLimits {
            address: Limiter::new(address, max_keys),
            user: Limiter::new(user, max_keys),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let l = Limiter::new(
            Rate {
                per_second: 2.0,
                burst: 3.0,
            },
            16,
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(&"a", t0), Ok(()));
        }
        assert_eq!(l.check(&"a", t0), Err(1));
        // Another key has its own bucket.
        assert_eq!(l.check(&"b", t0), Ok(()));
        // Half a second later: one token back.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.check(&"a", t1), Ok(()));
        assert!(l.check(&"a", t1).is_err());
    }

    #[test]
    fn retry_after_covers_a_slow_rate() {
        let l = Limiter::new(
            Rate {
                per_second: 0.1,
                burst: 1.0,
            },
            16,
        );
        let t0 = Instant::now();
        assert_eq!(l.check(&1, t0), Ok(()));
        assert_eq!(l.check(&1, t0), Err(10));
    }

    #[test]
    fn off_allows_everything_and_tracks_nothing() {
        let l: Limiter<u32> = Limiter::new(Rate::OFF, 16);
        let t0 = Instant::now();
        for i in 0..1000 {
            assert_eq!(l.check(&i, t0), Ok(()));
        }
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn memory_stays_bounded_and_idle_buckets_go_first() {
        let l = Limiter::new(
            Rate {
                per_second: 1.0,
                burst: 2.0,
            },
            100,
        );
        let t0 = Instant::now();
        // A busy client, emptied.
        let _ = l.check(&0u32, t0);
        let _ = l.check(&0u32, t0);
        for i in 1..10_000u32 {
            let _ = l.check(&i, t0 + Duration::from_micros(u64::from(i)));
            assert!(l.tracked() <= 100);
        }
        // The busy client was tracked until space ran out; it is not given a
        // fresh burst while it is still in the table.
        let l = Limiter::new(
            Rate {
                per_second: 1.0,
                burst: 1.0,
            },
            4,
        );
        assert_eq!(l.check(&"busy", t0), Ok(()));
        assert_eq!(l.check(&"a", t0), Ok(()));
        assert!(l.check(&"busy", t0).is_err());
    }
}
