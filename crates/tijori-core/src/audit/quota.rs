//! How many value HMACs each principal may ask for (`POST /v1/audit/hash`).
//!
//! Why a limit: the trail carries each tokenized value's HMAC, and the hash endpoint computes
//! that HMAC for any value, so whoever may read the trail could try candidates until one
//! matches. A format-preserving card token keeps the first six and last four digits, which
//! leaves about 100,000 candidates (the Luhn digit cuts the six unknown ones tenfold): a few
//! seconds unlimited, months at the default of 60 an hour. Every call is recorded as well, so
//! a slow search still shows on the trail.
//!
//! Each principal may make `per_hour` calls at once, and one more every hour / `per_hour`
//! after that (a generic cell rate algorithm: each bucket is the time at which it would be
//! full again). Kept in memory on each node: a cluster of N nodes allows up to N times the
//! rate.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::CoreError;

const HOUR: i64 = 3600;

/// The default number of calls a principal may make an hour.
pub const DEFAULT_PER_HOUR: u32 = 60;

/// Per-principal buckets of hash calls. Times are counted in units of 1 / `per_hour` of a
/// second, so that one call's share of the hour is a whole `HOUR` units.
#[derive(Debug)]
pub(crate) struct HashQuota {
    per_hour: i64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// When the calls taken so far will have been paid back, in units.
    paid: i64,
    /// The latest time seen, in units: a clock that steps back neither refills the bucket
    /// nor locks its principal out for the step.
    seen: i64,
}

impl HashQuota {
    /// A quota of `per_hour` calls an hour per principal (at least one).
    pub(crate) fn new(per_hour: u32) -> HashQuota {
        HashQuota {
            per_hour: i64::from(per_hour.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one call from `principal`'s bucket at `now` (Unix seconds), or says in how many
    /// seconds one will be there.
    pub(crate) fn take(&self, principal: &str, now: i64) -> Result<(), CoreError> {
        let now = now.saturating_mul(self.per_hour);
        // How far ahead of now the payback may run: every call of the hour but this one.
        let burst = (self.per_hour - 1) * HOUR;
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| CoreError::poisoned("hash quota"))?;
        let bucket = buckets.entry(principal.to_owned()).or_insert(Bucket {
            paid: now,
            seen: now,
        });
        bucket.seen = bucket.seen.max(now);
        let start = bucket.paid.max(bucket.seen);
        let ahead = start - bucket.seen;
        if ahead <= burst {
            bucket.paid = start + HOUR;
            return Ok(());
        }
        Err(CoreError::RateLimited {
            what: "too many value HMACs asked for: each principal may ask for a limited \
                   number an hour (tijori server --audit-hash-per-hour)",
            retry_after: (ahead - burst)
                .unsigned_abs()
                .div_ceil(self.per_hour.unsigned_abs()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(r: Result<(), CoreError>) -> u64 {
        match r {
            Err(CoreError::RateLimited { retry_after, .. }) => retry_after,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_principal_gets_its_hour_s_calls_then_waits_for_the_refill() {
        let q = HashQuota::new(60);
        for _ in 0..60 {
            q.take("auditor", 1_000).unwrap();
        }
        // One call comes back every 60 s.
        assert_eq!(retry_after(q.take("auditor", 1_000)), 60);
        assert_eq!(retry_after(q.take("auditor", 1_059)), 1);
        q.take("auditor", 1_060).unwrap();
        assert_eq!(retry_after(q.take("auditor", 1_060)), 60);
        // Another principal has its own bucket.
        q.take("admin", 1_060).unwrap();
        // A long pause refills the bucket, but no further than full.
        for _ in 0..60 {
            q.take("auditor", 100_000).unwrap();
        }
        assert!(q.take("auditor", 100_000).is_err());
    }

    #[test]
    fn a_clock_stepping_back_refills_nothing() {
        let q = HashQuota::new(1);
        q.take("a", 10_000).unwrap();
        assert_eq!(retry_after(q.take("a", 5_000)), 3600);
        assert_eq!(retry_after(q.take("a", 10_000)), 3600);
        assert_eq!(retry_after(q.take("a", 13_000)), 600);
        assert_eq!(retry_after(q.take("a", 13_599)), 1);
        q.take("a", 13_600).unwrap();
    }
}
