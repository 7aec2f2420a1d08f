//! The policy language. A role is a list of rules; a rule grants operations on data types, with
//! a reveal level, optionally only for subjects under a prefix (a tenant, a merchant: subjects
//! such as `merchant-7:customer-42`). Whatever no rule grants is denied. The built-in roles of
//! API.md are written in the same language ([`builtin_rules`]), so one evaluator decides for
//! both.

use serde::{Deserialize, Serialize};
use tijori_types::DataType;

use crate::policy::Reveal;
use crate::CoreError;

/// What a rule may grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Tokenize,
    Detokenize,
    Search,
    Delete,
    /// Principals, operators, keys, policies, the seal.
    Manage,
    /// Audit records and reports.
    Audit,
}

/// One grant. In JSON: `{"types": ["card_number"] or ["*"], "operations": [...],
/// "reveal": "full" | "masked" | "none", "subject_prefix": "merchant-7:"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Data type names, or `["*"]` for every type.
    pub types: Vec<String>,
    pub operations: Vec<Action>,
    /// How much of a value `detokenize` shows under this rule; `none` unless it grants
    /// `detokenize`.
    #[serde(default = "no_reveal")]
    pub reveal: RevealLevel,
    /// Only subjects starting with this; values stored without a subject do not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
}

fn no_reveal() -> RevealLevel {
    RevealLevel::None
}

/// [`Reveal`] as the policy language spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevealLevel {
    None,
    Masked,
    Full,
}

impl RevealLevel {
    pub fn reveal(self) -> Reveal {
        match self {
            RevealLevel::None => Reveal::None,
            RevealLevel::Masked => Reveal::Masked,
            RevealLevel::Full => Reveal::Full,
        }
    }
}

const ALL_TYPES: &str = "*";
/// Most rules in a role; most characters in a role name or subject prefix.
const MAX_RULES: usize = 64;
const MAX_PREFIX: usize = 256;

impl Rule {
    /// Whether this rule grants `action` on a value of `data_type` (`None`: any type, for the
    /// first coarse check before the item is known) with subject `subject`.
    pub fn grants(&self, action: Action, data_type: Option<&str>, subject: Option<&str>) -> bool {
        if !self.operations.contains(&action) {
            return false;
        }
        let type_ok = match data_type {
            None => true,
            Some(t) => self.types.iter().any(|x| x == ALL_TYPES || x == t),
        };
        let subject_ok = match (&self.subject_prefix, subject) {
            (None, _) => true,
            (Some(p), Some(s)) => s.starts_with(p.as_str()),
            // A coarse check (no item yet) passes; the item's own check decides.
            (Some(_), None) => data_type.is_none(),
        };
        type_ok && subject_ok
    }

    /// Checks a rule as an administrator wrote it.
    fn validate(&self) -> Result<(), CoreError> {
        if self.types.is_empty() || self.operations.is_empty() {
            return Err(CoreError::InvalidRequest(
                "each rule needs at least one type (or \"*\") and one operation",
            ));
        }
        for t in &self.types {
            if t != ALL_TYPES && DataType::parse(t).is_none() {
                return Err(CoreError::InvalidRequest(
                    "a rule names an unknown data type; use the types of API.md or \"*\"",
                ));
            }
        }
        let reveals = self.operations.contains(&Action::Detokenize);
        if reveals == (self.reveal == RevealLevel::None) {
            return Err(CoreError::InvalidRequest(
                "a rule with detokenize needs reveal \"full\" or \"masked\"; one without it needs no reveal",
            ));
        }
        let global =
            self.operations.contains(&Action::Manage) || self.operations.contains(&Action::Audit);
        if global && (self.types != [ALL_TYPES] || self.subject_prefix.is_some()) {
            // Managing the vault and reading its trail concern no one type or subject: a
            // scoped rule would grant them in full and look as if it did not.
            return Err(CoreError::InvalidRequest(
                "manage and audit cover the whole vault: give them in a rule with types [\"*\"] and no subject_prefix",
            ));
        }
        if let Some(p) = &self.subject_prefix {
            if p.is_empty() || p.len() > MAX_PREFIX {
                return Err(CoreError::InvalidRequest(
                    "subject_prefix must be 1-256 characters (omit it for every subject)",
                ));
            }
        }
        Ok(())
    }
}

/// Checks a custom role's rules.
pub fn validate_rules(rules: &[Rule]) -> Result<(), CoreError> {
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(CoreError::InvalidRequest("a role needs 1 to 64 rules"));
    }
    rules.iter().try_for_each(Rule::validate)
}

fn every(operations: &[Action], reveal: RevealLevel) -> Vec<Rule> {
    vec![Rule {
        types: vec![ALL_TYPES.into()],
        operations: operations.to_vec(),
        reveal,
        subject_prefix: None,
    }]
}

/// API.md's built-in roles, in the policy language.
pub fn builtin_rules(role: crate::policy::Role) -> Vec<Rule> {
    use crate::policy::Role;
    use Action::*;
    match role {
        Role::Admin => every(&[Manage, Audit], RevealLevel::None),
        Role::Tokenizer => every(&[Tokenize, Search], RevealLevel::None),
        Role::Revealer => every(&[Tokenize, Detokenize, Search], RevealLevel::Full),
        Role::Support => every(&[Detokenize, Search], RevealLevel::Masked),
        Role::Auditor => every(&[Audit], RevealLevel::None),
        Role::DataOfficer => every(&[Search, Delete, Audit], RevealLevel::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: serde_json::Value) -> Rule {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_rule_matches_its_types_operations_and_subjects() {
        let r = rule(
            serde_json::json!({"types": ["card_number"], "operations": ["detokenize"],
            "reveal": "masked", "subject_prefix": "merchant-7:"}),
        );
        assert!(r.grants(
            Action::Detokenize,
            Some("card_number"),
            Some("merchant-7:c1")
        ));
        assert!(!r.grants(Action::Detokenize, Some("iban"), Some("merchant-7:c1")));
        assert!(!r.grants(
            Action::Detokenize,
            Some("card_number"),
            Some("merchant-8:c1")
        ));
        assert!(
            !r.grants(Action::Detokenize, Some("card_number"), None),
            "no subject, no match"
        );
        assert!(!r.grants(Action::Tokenize, Some("card_number"), Some("merchant-7:c1")));
        assert!(
            r.grants(Action::Detokenize, None, None),
            "coarse check passes"
        );
        validate_rules(&[r]).unwrap();
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            serde_json::json!({"types": [], "operations": ["search"]}),
            serde_json::json!({"types": ["*"], "operations": []}),
            serde_json::json!({"types": ["passport"], "operations": ["search"]}),
            serde_json::json!({"types": ["*"], "operations": ["detokenize"]}),
            serde_json::json!({"types": ["*"], "operations": ["search"], "reveal": "full"}),
            serde_json::json!({"types": ["*"], "operations": ["search"], "subject_prefix": ""}),
            serde_json::json!({"types": ["iban"], "operations": ["manage"]}),
            serde_json::json!({"types": ["*"], "operations": ["audit"], "subject_prefix": "m7:"}),
        ] {
            assert!(validate_rules(&[rule(bad.clone())]).is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<Rule>(serde_json::json!(
            {"types": ["*"], "operations": ["fly"]}))
        .is_err());
        assert!(serde_json::from_value::<Rule>(serde_json::json!(
            {"types": ["*"], "operations": ["search"], "extra": 1}))
        .is_err());
        assert!(validate_rules(&[]).is_err());
    }
}
