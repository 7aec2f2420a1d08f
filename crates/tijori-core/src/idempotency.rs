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
    pub(crate) slot: (String, String),
    pub(crate) locks: Arc<Locks>,
    pub(crate) _lock: Option<OwnedMutexGuard<()>>,
}

type Slot = (String, String);

/// Per-key locks of requests in flight.
#[derive(Default)]
pub(crate) struct Locks(Mutex<HashMap<Slot, Arc<tokio::sync::Mutex<()>>>>);

impl Locks {
    pub(crate) async fn acquire(&self, slot: &Slot) -> Result<OwnedMutexGuard<()>, CoreError> {
        let m = {
            let mut map = self
                .0
                .lock()
                .map_err(|_| CoreError::Internal("idempotency locks poisoned".into()))?;
            map.entry(slot.clone()).or_default().clone()
        };
        Ok(m.lock_owned().await)
    }
}

impl Drop for IdempotencyGuard {
    fn drop(&mut self) {
        // Release the lock first, then forget the entry if no one else waits on it.
        self._lock = None;
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
