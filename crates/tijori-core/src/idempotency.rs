//! `Idempotency-Key`: a retried request with the same key and body gets the first answer; the
//! same key with another body is a conflict. Requests with one key are serialized in this
//! process so two retries racing each other cannot both do the work. The body is remembered
//! only as a keyed HMAC: a plain hash of a card number would be brute-forceable from the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use subtle::ConstantTimeEq;
use tokio::sync::OwnedMutexGuard;

use crate::CoreError;

/// A saved first answer, to send again.
#[derive(Debug, Clone)]
pub struct Replay {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Held while the first request with a key is being answered.
pub struct IdempotencyGuard {
    pub(crate) principal_id: String,
    pub(crate) key: String,
    pub(crate) fingerprint: [u8; 32],
    pub(crate) _lock: SlotLock,
}

type Slot = (String, String);

/// Per-key locks of requests in flight.
#[derive(Default)]
pub(crate) struct Locks(Mutex<HashMap<Slot, Arc<tokio::sync::Mutex<()>>>>);

/// The lock of one (principal, key) slot. Dropping it, on whatever path, releases the lock
/// and forgets the slot if no one else waits on it, so the map never grows without bound.
pub(crate) struct SlotLock {
    slot: Slot,
    locks: Arc<Locks>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Locks {
    pub(crate) async fn acquire(self: &Arc<Self>, slot: Slot) -> Result<SlotLock, CoreError> {
        let m = {
            let mut map = self
                .0
                .lock()
                .map_err(|_| CoreError::poisoned("idempotency"))?;
            map.entry(slot.clone()).or_default().clone()
        };
        let guard = m.lock_owned().await;
        Ok(SlotLock {
            slot,
            locks: self.clone(),
            guard: Some(guard),
        })
    }
}

impl Drop for SlotLock {
    fn drop(&mut self) {
        self.guard = None;
        if let Ok(mut map) = self.locks.0.lock() {
            if map
                .get(&self.slot)
                .is_some_and(|m| Arc::strong_count(m) == 1)
            {
                map.remove(&self.slot);
            }
        }
    }
}

/// Checks an `Idempotency-Key` header: 1-255 visible ASCII characters.
pub(crate) fn check_key(key: &str) -> Result<(), CoreError> {
    if !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(CoreError::InvalidRequest(
            "Idempotency-Key must be 1-255 visible ASCII characters",
        ))
    }
}

pub(crate) fn same_fingerprint(a: &[u8], b: &[u8; 32]) -> bool {
    a.ct_eq(b.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(l: &Locks) -> usize {
        l.0.lock().unwrap().len()
    }

    #[tokio::test]
    async fn slots_are_forgotten_on_every_path() {
        let locks = Arc::new(Locks::default());
        let slot = ("p".to_owned(), "k".to_owned());
        let first = locks.acquire(slot.clone()).await.unwrap();
        let waiter = {
            let locks = locks.clone();
            let slot = slot.clone();
            tokio::spawn(async move { locks.acquire(slot).await.map(drop) })
        };
        tokio::task::yield_now().await;
        assert_eq!(slots(&locks), 1);
        drop(first);
        waiter.await.unwrap().unwrap();
        assert_eq!(slots(&locks), 0, "no slot left behind");
        assert!(check_key("order-42").is_ok());
        assert!(check_key("").is_err() && check_key("has space").is_err());
    }
}
