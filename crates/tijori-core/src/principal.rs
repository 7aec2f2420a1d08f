//! Service principals and their API keys. A key is 256 random bits, shown once and stored only
//! as its SHA-256: random keys need no slow password hash, so authentication stays off the
//! hot path's critical cost. Lookup is by that hash, so the key itself is never compared and
//! the lookup's timing can reveal nothing about it (preimage resistance).
//!
//! A key also answers to its principal's rules ([`access`]): an expiry, a grace period for the
//! key a rotation replaced, source networks and a client certificate. The [`Directory`] that
//! holds all this in memory is a cache of the store, rebuilt from it after every change.

mod access;

use std::collections::HashMap;
use std::sync::RwLock;

use tijori_store::PrincipalRecord;
use tijori_types::api::PrincipalResponse;

use access::Refusal;
pub use access::Source;
pub(crate) use access::{admit, grace_until, KeySlot, Rules};

use crate::policy::{Role, RoleBook};
use crate::CoreError;

/// What kind of caller a principal is, as the audit trail names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The root token.
    Root,
    /// A service with an API key.
    Service,
    /// A person logged in with password and one-time code.
    Operator,
}

impl PrincipalKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Root => "root",
            PrincipalKind::Service => "service",
            PrincipalKind::Operator => "operator",
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub kind: PrincipalKind,
    pub roles: Vec<Role>,
    pub created_at: i64,
    pub disabled: bool,
    /// An operator whose data-protection training attestation has lapsed (PCI DSS 12.6): may
    /// log in and work, but no value is revealed to them. Always `false` for services.
    pub training_lapsed: bool,
    /// The rules of the custom roles among its roles (built-in roles carry their own).
    pub custom_rules: std::sync::Arc<[crate::policy::Rule]>,
}

/// A principal just created or given a new key, as an administrator sees it, with the API key
/// that is shown this once. No `Debug`: it holds the key.
pub struct NewPrincipal {
    pub principal: PrincipalResponse,
    pub api_key: String,
}

/// The longest credential looked at; longer ones are refused unread.
const MAX_CREDENTIAL: usize = 512;

/// In-memory index of principals by key hash: a cache of the store, always rebuilt whole from
/// a list of records, so that a reload is all a node needs to catch up with a change made
/// elsewhere.
#[derive(Default)]
pub(crate) struct Directory {
    snapshot: RwLock<Snapshot>,
}

#[derive(Default)]
struct Snapshot {
    /// The records the index was built from (hashes included: this is the lookup table).
    records: Vec<PrincipalRecord>,
    entries: Vec<Entry>,
    /// Key hash -> (index into `entries`, which of the principal's keys it is).
    by_hash: HashMap<[u8; 32], (usize, KeySlot)>,
}

struct Entry {
    principal: Principal,
    /// `None` if the stored rules do not parse: every key of the principal is then refused.
    rules: Option<Rules>,
}

impl Snapshot {
    fn build(records: Vec<PrincipalRecord>, book: &RoleBook) -> Result<Snapshot, CoreError> {
        let mut entries = Vec::with_capacity(records.len());
        let mut by_hash = HashMap::with_capacity(records.len());
        for (i, rec) in records.iter().enumerate() {
            let hash: [u8; 32] = rec
                .key_hash
                .as_slice()
                .try_into()
                .map_err(|_| CoreError::Internal("a stored key hash is not 32 bytes".into()))?;
            let rules = Rules::stored(rec)
                .map_err(|what| {
                    tracing::error!(
                        principal = %rec.id,
                        unreadable = what,
                        "stored access rules do not parse; the principal is refused until they \
                         are set again"
                    );
                })
                .ok();
            entries.push(Entry {
                principal: to_principal(rec.clone(), book),
                rules,
            });
            by_hash.insert(hash, (i, KeySlot::Current));
        }
        // Previous keys second: a current key always wins the (astronomically unlikely) tie.
        for (i, rec) in records.iter().enumerate() {
            let Some(previous) = &rec.previous_key_hash else {
                continue;
            };
            let Ok(hash) = <[u8; 32]>::try_from(previous.as_slice()) else {
                tracing::error!(
                    principal = %rec.id,
                    "a stored previous key hash is not 32 bytes; that key is refused"
                );
                continue;
            };
            // A grace key without an end has none left.
            let until = rec.previous_key_expires_at.unwrap_or(i64::MIN);
            by_hash
                .entry(hash)
                .or_insert((i, KeySlot::Previous { until }));
        }
        Ok(Snapshot {
            records,
            entries,
            by_hash,
        })
    }
}

impl Directory {
    /// Replaces the whole index with one built from `records` (the store's list).
    pub(crate) fn load(
        &self,
        records: Vec<PrincipalRecord>,
        book: &RoleBook,
    ) -> Result<(), CoreError> {
        let snapshot = Snapshot::build(records, book)?;
        *self
            .snapshot
            .write()
            .map_err(|_| CoreError::poisoned("principal directory"))? = snapshot;
        Ok(())
    }

    /// Applies a change just made in the store to the index too, so that it is in effect on
    /// this node at once, whatever a reload does later.
    pub(crate) fn patch(
        &self,
        change: impl FnOnce(&mut Vec<PrincipalRecord>),
        book: &RoleBook,
    ) -> Result<(), CoreError> {
        let mut current = self
            .snapshot
            .write()
            .map_err(|_| CoreError::poisoned("principal directory"))?;
        let mut records = current.records.clone();
        change(&mut records);
        *current = Snapshot::build(records, book)?;
        Ok(())
    }

    /// The record of principal `id` as the index has it.
    pub(crate) fn record(&self, id: &str) -> Result<Option<PrincipalRecord>, CoreError> {
        Ok(self
            .snapshot
            .read()
            .map_err(|_| CoreError::poisoned("principal directory"))?
            .records
            .iter()
            .find(|r| r.id == id)
            .cloned())
    }

    /// The principal whose key `credential` is, if its rules admit `source` at `now`. Every
    /// refusal is the same `Unauthenticated`; the log says which rule refused, never the key.
    pub(crate) fn authenticate(
        &self,
        credential: &str,
        source: &Source,
        now: i64,
    ) -> Result<Principal, CoreError> {
        if credential.is_empty() || credential.len() > MAX_CREDENTIAL {
            return Err(CoreError::Unauthenticated);
        }
        let hash = key_hash(credential);
        let snapshot = self
            .snapshot
            .read()
            .map_err(|_| CoreError::poisoned("principal directory"))?;
        let Some(&(i, slot)) = snapshot.by_hash.get(&hash) else {
            return Err(CoreError::Unauthenticated);
        };
        let entry = snapshot.entries.get(i).ok_or(CoreError::Unauthenticated)?;
        let verdict = match &entry.rules {
            _ if entry.principal.disabled => Err(Refusal::Disabled),
            None => Err(Refusal::Unreadable),
            Some(rules) => admit(rules, slot, source, now),
        };
        match verdict {
            Ok(()) => Ok(entry.principal.clone()),
            Err(refusal) => {
                tracing::info!(
                    principal = %entry.principal.id,
                    reason = refusal.reason(),
                    previous_key = matches!(slot, KeySlot::Previous { .. }),
                    "API key refused"
                );
                Err(CoreError::Unauthenticated)
            }
        }
    }
}

pub(crate) fn key_hash(credential: &str) -> [u8; 32] {
    tijori_crypto::sha256(credential.as_bytes())
}

/// The principal of a stored record, its role names resolved: built-in roles, and the rules
/// of custom ones (a role deleted since grants nothing).
pub(crate) fn to_principal(rec: PrincipalRecord, book: &RoleBook) -> Principal {
    let (roles, custom_rules) = book.resolve(&rec.roles);
    let kind = if rec.id == crate::ROOT_ID {
        PrincipalKind::Root
    } else {
        PrincipalKind::Service
    };
    Principal {
        id: rec.id,
        name: rec.name,
        kind,
        roles,
        created_at: rec.created_at,
        disabled: rec.disabled,
        training_lapsed: false,
        custom_rules,
    }
}

/// Checks a principal name: 1-128 characters of letters, digits, `.`, `_`, `-`.
pub(crate) fn check_name(name: &str) -> Result<(), CoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidRequest(
            "name must be 1-128 characters of letters, digits, '.', '_' or '-'",
        ))
    }
}

/// A principal as an administrator sees it: its rules, never a key or a hash. The end of the
/// previous key's grace period shows only while that key still works.
pub(crate) fn view(rec: &PrincipalRecord, now: i64) -> PrincipalResponse {
    PrincipalResponse {
        id: rec.id.clone(),
        name: rec.name.clone(),
        roles: rec.roles.clone(),
        created_at: crate::rfc3339(rec.created_at),
        disabled: rec.disabled,
        expires_at: rec.expires_at.map(crate::rfc3339),
        allowed_cidrs: rec.allowed_cidrs.clone(),
        client_cert_sha256: rec.client_cert_sha256.as_deref().map(hex::encode),
        previous_key_expires_at: rec
            .previous_key_hash
            .as_ref()
            .and(rec.previous_key_expires_at)
            .filter(|until| *until > now)
            .map(crate::rfc3339),
        api_key: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, key: &str) -> PrincipalRecord {
        PrincipalRecord {
            id: id.into(),
            name: id.into(),
            roles: vec!["tokenizer".into()],
            key_hash: key_hash(key).to_vec(),
            created_at: 1,
            ..PrincipalRecord::default()
        }
    }

    fn from(ip: &str) -> Source {
        Source {
            ip: Some(ip.parse().unwrap()),
            client_cert_sha256: None,
        }
    }

    fn who(dir: &Directory, key: &str, source: &Source, now: i64) -> Option<String> {
        match dir.authenticate(key, source, now) {
            Ok(p) => Some(p.id),
            Err(CoreError::Unauthenticated) => None,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    #[test]
    fn keys_current_and_previous_and_every_refusal_alike() {
        let rotated = PrincipalRecord {
            previous_key_hash: Some(key_hash("tjk_old").to_vec()),
            previous_key_expires_at: Some(100),
            ..record("p1", "tjk_new")
        };
        let disabled = PrincipalRecord {
            disabled: true,
            ..record("p2", "tjk_off")
        };
        let fenced = PrincipalRecord {
            allowed_cidrs: vec!["10.0.0.0/8".into()],
            ..record("p3", "tjk_fenced")
        };
        let broken = PrincipalRecord {
            allowed_cidrs: vec!["not a network".into()],
            ..record("p4", "tjk_broken")
        };
        let dir = Directory::default();
        dir.load(
            vec![rotated, disabled, fenced, broken],
            &RoleBook::default(),
        )
        .unwrap();
        let any = Source::default();
        assert_eq!(who(&dir, "tjk_new", &any, 50).as_deref(), Some("p1"));
        assert_eq!(who(&dir, "tjk_old", &any, 99).as_deref(), Some("p1"));
        assert_eq!(who(&dir, "tjk_old", &any, 100), None, "grace over");
        assert_eq!(who(&dir, "tjk_new", &any, 100).as_deref(), Some("p1"));
        assert_eq!(who(&dir, "tjk_off", &any, 0), None, "disabled");
        assert_eq!(
            who(&dir, "tjk_fenced", &from("10.9.8.7"), 0).as_deref(),
            Some("p3")
        );
        assert_eq!(who(&dir, "tjk_fenced", &from("127.0.0.1"), 0), None);
        assert_eq!(who(&dir, "tjk_fenced", &any, 0), None, "source unknown");
        assert_eq!(
            who(&dir, "tjk_broken", &any, 0),
            None,
            "unreadable rules refuse"
        );
        assert_eq!(who(&dir, "tjk_unknown", &any, 0), None);
        assert_eq!(who(&dir, "", &any, 0), None);
        assert_eq!(who(&dir, &"x".repeat(513), &any, 0), None);
    }

    #[test]
    fn a_patch_is_in_effect_at_once() {
        let dir = Directory::default();
        let book = RoleBook::default();
        dir.load(vec![record("p1", "tjk_a"), record("p2", "tjk_b")], &book)
            .unwrap();
        dir.patch(
            |records| {
                if let Some(r) = records.iter_mut().find(|r| r.id == "p1") {
                    r.key_hash = key_hash("tjk_c").to_vec();
                }
                records.push(record("p3", "tjk_d"));
            },
            &book,
        )
        .unwrap();
        let any = Source::default();
        assert_eq!(
            who(&dir, "tjk_a", &any, 0),
            None,
            "the replaced key is gone"
        );
        assert_eq!(who(&dir, "tjk_c", &any, 0).as_deref(), Some("p1"));
        assert_eq!(who(&dir, "tjk_b", &any, 0).as_deref(), Some("p2"));
        assert_eq!(who(&dir, "tjk_d", &any, 0).as_deref(), Some("p3"));
        assert_eq!(dir.record("p3").unwrap().unwrap().name, "p3");
        assert!(dir.record("nobody").unwrap().is_none());
    }

    #[test]
    fn a_bad_stored_key_hash_is_an_error_and_leaves_the_index_alone() {
        let dir = Directory::default();
        dir.load(vec![record("p1", "tjk_a")], &RoleBook::default())
            .unwrap();
        let bad = PrincipalRecord {
            key_hash: vec![1; 31],
            ..record("p2", "tjk_b")
        };
        assert!(matches!(
            dir.load(vec![bad], &RoleBook::default()),
            Err(CoreError::Internal(_))
        ));
        assert_eq!(
            who(&dir, "tjk_a", &Source::default(), 0).as_deref(),
            Some("p1")
        );
    }

    #[test]
    fn the_view_shows_rules_but_no_hash() {
        let rec = PrincipalRecord {
            expires_at: Some(0),
            previous_key_hash: Some(vec![0xee; 32]),
            previous_key_expires_at: Some(60),
            allowed_cidrs: vec!["10.0.0.0/8".into()],
            client_cert_sha256: Some(vec![0xab; 32]),
            ..record("p1", "tjk_a")
        };
        let v = view(&rec, 10);
        assert_eq!(v.expires_at.as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            v.previous_key_expires_at.as_deref(),
            Some("1970-01-01T00:01:00Z")
        );
        assert_eq!(v.client_cert_sha256, Some("ab".repeat(32)));
        assert_eq!(v.allowed_cidrs, ["10.0.0.0/8"]);
        assert!(v.api_key.is_none());
        assert_eq!(view(&rec, 60).previous_key_expires_at, None, "grace over");
        let text = serde_json::to_string(&v).unwrap();
        assert!(
            !text.contains(&"ee".repeat(32)) && !text.contains(&hex::encode(key_hash("tjk_a")))
        );
    }
}
