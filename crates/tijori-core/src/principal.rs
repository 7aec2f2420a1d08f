//! Service principals and their API keys. A key is 256 random bits, shown once and stored only
//! as its SHA-256: random keys need no slow password hash, so authentication stays off the
//! hot path's critical cost. Lookup is by that hash, so the key itself is never compared and
//! the lookup's timing can reveal nothing about it (preimage resistance).

use std::collections::HashMap;
use std::sync::RwLock;

use tijori_store::PrincipalRecord;

use crate::policy::Role;
use crate::CoreError;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub created_at: i64,
    pub disabled: bool,
}

/// A principal just created, with the API key that is shown this once.
pub struct NewPrincipal {
    pub principal: Principal,
    pub api_key: String,
}

/// The longest credential looked at; longer ones are refused unread.
const MAX_CREDENTIAL: usize = 512;

/// In-memory index of principals by key hash, loaded from the store.
#[derive(Default)]
pub(crate) struct Directory {
    by_hash: RwLock<HashMap<[u8; 32], Principal>>,
}

impl Directory {
    pub(crate) fn load(&self, records: Vec<PrincipalRecord>) -> Result<(), CoreError> {
        let mut map = HashMap::with_capacity(records.len());
        for rec in records {
            let hash: [u8; 32] = rec
                .key_hash
                .as_slice()
                .try_into()
                .map_err(|_| CoreError::Internal("a stored key hash is not 32 bytes".into()))?;
            map.insert(hash, to_principal(rec)?);
        }
        *self
            .by_hash
            .write()
            .map_err(|_| CoreError::poisoned("principal directory"))? = map;
        Ok(())
    }

    /// Marks a principal disabled (or not) in memory at once, whatever a reload does later.
    pub(crate) fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), CoreError> {
        let mut map = self
            .by_hash
            .write()
            .map_err(|_| CoreError::poisoned("principal directory"))?;
        for p in map.values_mut().filter(|p| p.id == id) {
            p.disabled = disabled;
        }
        Ok(())
    }

    pub(crate) fn authenticate(&self, credential: &str) -> Result<Principal, CoreError> {
        if credential.is_empty() || credential.len() > MAX_CREDENTIAL {
            return Err(CoreError::Unauthenticated);
        }
        let hash = key_hash(credential);
        match self
            .by_hash
            .read()
            .map_err(|_| CoreError::poisoned("principal directory"))?
            .get(&hash)
        {
            Some(p) if !p.disabled => Ok(p.clone()),
            _ => Err(CoreError::Unauthenticated),
        }
    }
}

pub(crate) fn key_hash(credential: &str) -> [u8; 32] {
    tijori_crypto::sha256(credential.as_bytes())
}

pub(crate) fn to_principal(rec: PrincipalRecord) -> Result<Principal, CoreError> {
    let roles = rec
        .roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| CoreError::Internal("a stored role is unknown".into()))
        })
        .collect::<Result<_, _>>()?;
    Ok(Principal {
        id: rec.id,
        name: rec.name,
        roles,
        created_at: rec.created_at,
        disabled: rec.disabled,
    })
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

/// Parses role names; at least one, each built-in, no repeats.
pub(crate) fn parse_roles(names: &[String]) -> Result<Vec<Role>, CoreError> {
    let mut roles: Vec<Role> = Vec::new();
    for n in names {
        let r = Role::parse(n).ok_or(CoreError::InvalidRequest(
            "unknown role; use admin, tokenizer, revealer, support, auditor or data_officer",
        ))?;
        if !roles.contains(&r) {
            roles.push(r);
        }
    }
    if roles.is_empty() {
        return Err(CoreError::InvalidRequest(
            "roles must name at least one role",
        ));
    }
    Ok(roles)
}
