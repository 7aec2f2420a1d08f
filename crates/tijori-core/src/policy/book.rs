//! Custom roles: defined by administrators in the policy language, versioned (each change is
//! a new version; the old ones stay readable), audited like every request, and resolved into
//! rules when a principal or operator is authenticated. A change takes effect at the next
//! request of an operator, and for services at once (their directory is reloaded).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tijori_store::{RoleRecord, Store};

use crate::policy::{validate_rules, Authorized, Manage, Role, Rule};
use crate::principal::check_name;
use crate::{CoreError, Vault};

/// A role as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleView {
    pub name: String,
    /// 0 for built-in roles.
    pub version: i64,
    pub builtin: bool,
    pub rules: Vec<Rule>,
    pub changed_at: Option<i64>,
    pub changed_by: Option<String>,
    pub deleted: bool,
}

/// The custom roles in memory, by name.
#[derive(Default)]
pub(crate) struct RoleBook {
    roles: RwLock<HashMap<String, Arc<[Rule]>>>,
}

impl RoleBook {
    pub(crate) async fn load(&self, store: &dyn Store) -> Result<(), CoreError> {
        let mut map = HashMap::new();
        for rec in store.roles().await? {
            let rules: Vec<Rule> = serde_json::from_str(&rec.rules).map_err(|_| {
                CoreError::Internal(format!(
                    "the stored rules of role {} do not parse",
                    rec.name
                ))
            })?;
            map.insert(rec.name, Arc::from(rules));
        }
        *self
            .roles
            .write()
            .map_err(|_| CoreError::poisoned("roles"))? = map;
        Ok(())
    }

    /// The built-in roles among `names`, and the rules of the custom ones. A name that is
    /// neither (a role deleted since) grants nothing.
    pub(crate) fn resolve(&self, names: &[String]) -> (Vec<Role>, Arc<[Rule]>) {
        let mut builtin = Vec::new();
        let mut custom: Vec<Rule> = Vec::new();
        let book = self.roles.read();
        for name in names {
            if let Some(r) = Role::parse(name) {
                builtin.push(r);
            } else if let Ok(book) = &book {
                if let Some(rules) = book.get(name) {
                    custom.extend(rules.iter().cloned());
                }
            }
        }
        (builtin, Arc::from(custom))
    }

    /// Checks role names given for a principal or operator: at least one, each built-in or
    /// defined; answers them without repeats.
    pub(crate) fn check_names(&self, names: &[String]) -> Result<Vec<String>, CoreError> {
        let book = self
            .roles
            .read()
            .map_err(|_| CoreError::poisoned("roles"))?;
        let mut out: Vec<String> = Vec::new();
        for n in names {
            if Role::parse(n).is_none() && !book.contains_key(n) {
                return Err(CoreError::InvalidRequest(
                    "unknown role: use a built-in role (admin, tokenizer, revealer, support, auditor, data_officer) or one defined with PUT /v1/roles/{name}",
                ));
            }
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        if out.is_empty() {
            return Err(CoreError::InvalidRequest(
                "roles must name at least one role",
            ));
        }
        Ok(out)
    }
}

fn builtin_view(role: Role) -> RoleView {
    RoleView {
        name: role.as_str().to_owned(),
        version: 0,
        builtin: true,
        rules: role.rules().to_vec(),
        changed_at: None,
        changed_by: None,
        deleted: false,
    }
}

fn custom_view(rec: RoleRecord) -> Result<RoleView, CoreError> {
    let rules = serde_json::from_str(&rec.rules).map_err(|_| {
        CoreError::Internal(format!(
            "the stored rules of role {} do not parse",
            rec.name
        ))
    })?;
    Ok(RoleView {
        name: rec.name,
        version: rec.version,
        builtin: false,
        rules,
        changed_at: Some(rec.changed_at),
        changed_by: Some(rec.changed_by),
        deleted: rec.deleted,
    })
}

impl Vault {
    /// Every role: the built-in ones, then the custom ones.
    pub async fn roles(&self, _auth: &Authorized<'_, Manage>) -> Result<Vec<RoleView>, CoreError> {
        let mut out: Vec<RoleView> = Role::ALL.into_iter().map(builtin_view).collect();
        for rec in self.store.roles().await? {
            out.push(custom_view(rec)?);
        }
        Ok(out)
    }

    /// Every version of a role, oldest first (a built-in role has one, version 0).
    pub async fn role_history(
        &self,
        _auth: &Authorized<'_, Manage>,
        name: &str,
    ) -> Result<Vec<RoleView>, CoreError> {
        if let Some(r) = Role::parse(name) {
            return Ok(vec![builtin_view(r)]);
        }
        let history = self.store.role_history(name).await?;
        if history.is_empty() {
            return Err(CoreError::NoSuch("no such role"));
        }
        history.into_iter().map(custom_view).collect()
    }

    /// Defines or changes a custom role; `None` rules delete it. `expected_version`, when
    /// given, must be the current version (0: the role must not exist yet), so that two
    /// administrators editing at once cannot silently overwrite each other.
    pub async fn put_role(
        &self,
        auth: &Authorized<'_, Manage>,
        name: &str,
        rules: Option<Vec<Rule>>,
        expected_version: Option<i64>,
    ) -> Result<RoleView, CoreError> {
        check_name(name)?;
        if Role::parse(name).is_some() {
            return Err(CoreError::InvalidRequest(
                "built-in roles cannot be changed; define a custom role with another name",
            ));
        }
        if let Some(rules) = &rules {
            validate_rules(rules)?;
        }
        let history = self.store.role_history(name).await?;
        let current = history.last();
        let version = current.map_or(0, |r| r.version);
        let live = current.is_some_and(|r| !r.deleted);
        if rules.is_none() && !live {
            return Err(CoreError::NoSuch("no such role"));
        }
        if expected_version.is_some_and(|v| v != if live { version } else { 0 }) {
            return Err(CoreError::Conflict(
                "the role has changed since you read it (version differs); read it again and retry",
            ));
        }
        let rec = RoleRecord {
            name: name.to_owned(),
            rules: serde_json::to_string(rules.as_deref().unwrap_or(&[]))
                .map_err(|e| CoreError::Internal(e.to_string()))?,
            version: version + 1,
            changed_at: self.clock.now(),
            changed_by: auth.principal().id.clone(),
            deleted: rules.is_none(),
        };
        if !self.store.put_role(rec.clone()).await? {
            return Err(CoreError::Conflict(
                "another change to this role came first; read it again and retry",
            ));
        }
        self.reload_roles().await?;
        self.publish(crate::changes::ROLES).await;
        custom_view(rec)
    }

    /// Reloads the role book and the principals resolved with it.
    pub(crate) async fn reload_roles(&self) -> Result<(), CoreError> {
        self.role_book.load(self.store.as_ref()).await?;
        self.reload_principals().await
    }
}
