//! Card security codes: held in memory only, never in the store (PCI DSS 3.3.1 forbids storing
//! them after authorization). Each is sealed under a key that exists only in this process, is
//! gone after its first detokenize, at its TTL, on seal, and on restart.

use std::collections::HashMap;
use std::sync::Mutex;

use tijori_crypto::{open, seal, SecretKey};
use zeroize::Zeroizing;

use crate::CoreError;

/// What is kept of one code besides its sealed value.
#[derive(Clone)]
pub(crate) struct CvcInfo {
    pub masked: String,
    pub subject: Option<String>,
    pub metadata: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A revealed code and what was kept with it.
pub(crate) type Taken = (Zeroizing<Vec<u8>>, CvcInfo);

struct Entry {
    sealed: Vec<u8>,
    info: CvcInfo,
}

/// The memory the held codes may take, counted as [`Entry::size`]. A code lives from checkout
/// to authorization, seconds to minutes, and takes about 300 bytes (more with metadata): room
/// for some hundred thousand. Without a bound, a client that tokenizes codes and never reveals
/// them could fill the server's memory, each code staying up to an hour.
const CVC_MEMORY: usize = 32 * 1024 * 1024;

/// What a held code costs besides its strings: the map's slot, the entry, allocations.
const ENTRY_OVERHEAD: usize = 200;

impl Entry {
    fn size(&self, token: &str) -> usize {
        let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
        ENTRY_OVERHEAD
            + token.len()
            + self.sealed.len()
            + self.info.masked.len()
            + text(&self.info.subject)
            + text(&self.info.metadata)
    }
}

/// The held codes, the memory they take, and the time expired codes last went.
#[derive(Default)]
struct Held {
    map: HashMap<String, Entry>,
    bytes: usize,
    purged_at: i64,
}

impl Held {
    fn insert(&mut self, token: String, entry: Entry) {
        self.bytes += entry.size(&token);
        self.map.insert(token, entry);
    }

    fn remove(&mut self, token: &str) -> Option<Entry> {
        let entry = self.map.remove(token)?;
        self.bytes -= entry.size(token);
        Some(entry)
    }

    /// Lets go of the codes expired at `now`; answers how many went.
    fn purge(&mut self, now: i64) -> usize {
        self.purged_at = self.purged_at.max(now);
        let Held { map, bytes, .. } = self;
        let before = map.len();
        map.retain(|token, e| {
            let live = e.info.expires_at > now;
            if !live {
                *bytes -= e.size(token);
            }
            live
        });
        before - map.len()
    }
}

/// What a tokenize of a code is told while the store is full.
const FULL: &str = "the vault holds as many card security codes as it keeps in memory; each \
     goes at its first detokenize or at its TTL, so retry shortly (and reveal or delete codes \
     once they are used)";

/// The in-memory home of card security codes.
pub(crate) struct CvcStore {
    key: SecretKey,
    entries: Mutex<Held>,
    /// Bytes, as [`CVC_MEMORY`].
    capacity: usize,
}

fn ad(token: &str) -> Vec<u8> {
    format!("tijori:cvc:{token}").into_bytes()
}

impl CvcStore {
    pub(crate) fn new() -> Result<CvcStore, CoreError> {
        CvcStore::with_capacity(CVC_MEMORY)
    }

    fn with_capacity(capacity: usize) -> Result<CvcStore, CoreError> {
        Ok(CvcStore {
            key: SecretKey::generate()?,
            entries: Mutex::new(Held::default()),
            capacity,
        })
    }

    /// Keeps a code; `false` if the token is taken. A full store first lets its expired codes
    /// go (as of the code's `created_at`, at most once a second: a full store's every refusal
    /// must not cost a walk over all its codes), then refuses with [`CoreError::Full`].
    pub(crate) fn put(&self, token: &str, value: &str, info: CvcInfo) -> Result<bool, CoreError> {
        let sealed = seal(&self.key, &ad(token), value.as_bytes())?;
        let mut held = self
            .entries
            .lock()
            .map_err(|_| CoreError::poisoned("cvc store"))?;
        if held.map.contains_key(token) {
            return Ok(false);
        }
        let entry = Entry { sealed, info };
        let room = |held: &Held| held.bytes + entry.size(token) <= self.capacity;
        if !room(&held) && held.purged_at < entry.info.created_at {
            held.purge(entry.info.created_at);
        }
        if !room(&held) {
            return Err(CoreError::Full(FULL));
        }
        held.insert(token.to_owned(), entry);
        Ok(true)
    }

    /// Metadata of a live code, without consuming it.
    pub(crate) fn info(&self, token: &str, now: i64) -> Result<Option<CvcInfo>, CoreError> {
        let held = self
            .entries
            .lock()
            .map_err(|_| CoreError::poisoned("cvc store"))?;
        Ok(held
            .map
            .get(token)
            .filter(|e| e.info.expires_at > now)
            .map(|e| e.info.clone()))
    }

    /// Removes a code and gives back its value: the first detokenize is the last.
    pub(crate) fn take(&self, token: &str, now: i64) -> Result<Option<Taken>, CoreError> {
        let entry = self
            .entries
            .lock()
            .map_err(|_| CoreError::poisoned("cvc store"))?
            .remove(token);
        match entry {
            Some(e) if e.info.expires_at > now => {
                Ok(Some((open(&self.key, &ad(token), &e.sealed)?, e.info)))
            }
            _ => Ok(None),
        }
    }

    /// `true` if a live code was removed.
    pub(crate) fn remove(&self, token: &str, now: i64) -> Result<bool, CoreError> {
        let entry = self
            .entries
            .lock()
            .map_err(|_| CoreError::poisoned("cvc store"))?
            .remove(token);
        Ok(entry.is_some_and(|e| e.info.expires_at > now))
    }

    pub(crate) fn purge(&self, now: i64) -> Result<usize, CoreError> {
        Ok(self
            .entries
            .lock()
            .map_err(|_| CoreError::poisoned("cvc store"))?
            .purge(now))
    }

    pub(crate) fn clear(&self) -> Result<(), CoreError> {
        *self
            .entries
            .lock()
            .map_err(|_| CoreError::poisoned("cvc store"))? = Held::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(exp: i64) -> CvcInfo {
        CvcInfo {
            masked: "***".into(),
            subject: None,
            metadata: None,
            created_at: 0,
            expires_at: exp,
        }
    }

    #[test]
    fn first_take_is_last_and_ttl_holds() {
        let s = CvcStore::new().unwrap();
        assert!(s.put("t1", "123", info(100)).unwrap());
        assert!(!s.put("t1", "999", info(100)).unwrap());
        assert!(s.info("t1", 50).unwrap().is_some());
        assert_eq!(&s.take("t1", 50).unwrap().unwrap().0[..], b"123");
        assert!(s.take("t1", 50).unwrap().is_none());
        s.put("t2", "456", info(100)).unwrap();
        assert!(s.take("t2", 100).unwrap().is_none(), "expired at its TTL");
        s.put("t3", "789", info(100)).unwrap();
        assert_eq!(s.purge(200).unwrap(), 1);
    }

    #[test]
    fn a_full_store_refuses_until_a_code_goes() {
        let at = |created_at, expires_at| CvcInfo {
            created_at,
            ..info(expires_at)
        };
        // Room for two codes of this size, not three.
        let one = CvcStore::new().unwrap();
        one.put("t0", "000", at(0, 100)).unwrap();
        let size = one.entries.lock().unwrap().bytes;
        assert!(size > ENTRY_OVERHEAD);
        let s = CvcStore::with_capacity(2 * size + size / 2).unwrap();

        assert!(s.put("t1", "123", at(0, 100)).unwrap());
        assert!(s.put("t2", "456", at(0, 50)).unwrap());
        let full = s.put("t3", "789", at(10, 100)).unwrap_err();
        assert!(matches!(full, CoreError::Full(_)), "{full}");
        // A reveal frees a place; so does an expiry, once the next code comes.
        assert!(s.take("t1", 10).unwrap().is_some());
        assert!(s.put("t3", "789", at(10, 100)).unwrap());
        assert!(s.put("t4", "012", at(60, 100)).unwrap(), "t2 expired at 50");
        assert!(s.info("t2", 0).unwrap().is_none());
        assert!(s.put("t5", "345", at(60, 100)).is_err());
        // What is counted goes with what leaves.
        assert_eq!(s.purge(1000).unwrap(), 2);
        assert_eq!(s.entries.lock().unwrap().bytes, 0);
    }
}
