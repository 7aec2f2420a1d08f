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

/// The in-memory home of card security codes.
pub(crate) struct CvcStore {
    key: SecretKey,
    entries: Mutex<HashMap<String, Entry>>,
}

fn ad(token: &str) -> Vec<u8> {
    format!("tijori:cvc:{token}").into_bytes()
}

impl CvcStore {
    pub(crate) fn new() -> Result<CvcStore, CoreError> {
        Ok(CvcStore {
            key: SecretKey::generate()?,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// Keeps a code; `false` if the token is taken.
    pub(crate) fn put(&self, token: &str, value: &str, info: CvcInfo) -> Result<bool, CoreError> {
        let sealed = seal(&self.key, &ad(token), value.as_bytes())?;
        let mut map = self
            .entries
            .lock()
            .map_err(|_| CoreError::poisoned("cvc store"))?;
        if map.contains_key(token) {
            return Ok(false);
        }
        map.insert(token.to_owned(), Entry { sealed, info });
        Ok(true)
    }

    /// Metadata of a live code, without consuming it.
    pub(crate) fn info(&self, token: &str, now: i64) -> Result<Option<CvcInfo>, CoreError> {
        let map = self
            .entries
            .lock()
            .map_err(|_| CoreError::poisoned("cvc store"))?;
        Ok(map
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
        let mut map = self
            .entries
            .lock()
            .map_err(|_| CoreError::poisoned("cvc store"))?;
        let before = map.len();
        map.retain(|_, e| e.info.expires_at > now);
        Ok(before - map.len())
    }

    pub(crate) fn clear(&self) -> Result<(), CoreError> {
        self.entries
            .lock()
            .map_err(|_| CoreError::poisoned("cvc store"))?
            .clear();
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
}
