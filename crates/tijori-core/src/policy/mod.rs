//! Who may do what. The built-in roles of API.md, and the proof of a positive decision:
//! [`Authorized`] can only be made by [`authorize`], and every vault operation demands one, so
//! "no error" can never be mistaken for "allowed". Deny by default: an operation not granted
//! by some rule of the principal's roles is refused.
//!
//! Deciding is two-step. [`authorize`] checks that some rule grants the operation at all (for
//! some type and subject); the operation then asks [`Authorized::allows`] or
//! [`Authorized::reveal_for`] for each item once its data type and subject are known, since a
//! rule may be limited to some types or to subjects under a prefix.

mod book;
pub mod rules;

use std::marker::PhantomData;
use std::sync::OnceLock;

pub(crate) use book::RoleBook;
pub use book::RoleView;
pub use rules::{builtin_rules, validate_rules, Action, RevealLevel, Rule};

use crate::{CoreError, Principal};

/// A built-in role (API.md's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Tokenizer,
    Revealer,
    Support,
    Auditor,
    DataOfficer,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Tokenizer,
        Role::Revealer,
        Role::Support,
        Role::Auditor,
        Role::DataOfficer,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Tokenizer => "tokenizer",
            Role::Revealer => "revealer",
            Role::Support => "support",
            Role::Auditor => "auditor",
            Role::DataOfficer => "data_officer",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The role's rules ([`builtin_rules`]), built once.
    pub fn rules(self) -> &'static [Rule] {
        static TABLE: OnceLock<[Vec<Rule>; 6]> = OnceLock::new();
        let table = TABLE.get_or_init(|| Role::ALL.map(builtin_rules));
        let i = match self {
            Role::Admin => 0,
            Role::Tokenizer => 1,
            Role::Revealer => 2,
            Role::Support => 3,
            Role::Auditor => 4,
            Role::DataOfficer => 5,
        };
        &table[i]
    }
}

/// How much of a value a caller may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reveal {
    None,
    Masked,
    Full,
}

/// An operation that needs a policy decision. Each is a zero-sized type so that
/// `Authorized<Tokenize>` cannot be passed where `Authorized<Detokenize>` is required.
pub trait Operation {
    /// What a rule must grant.
    const ACTION: Action;
    /// Whether it shows values (so an operator with lapsed training may not perform it).
    const REVEALS: bool = false;
    /// The refusal's message.
    const DENIED: &'static str;

    /// Whether a built-in role grants it (for some type and subject).
    fn granted_by(role: Role) -> bool {
        role.rules()
            .iter()
            .any(|r| r.grants(Self::ACTION, None, None))
    }
}

macro_rules! operation {
    ($(#[$doc:meta])* $name:ident, $action:ident, $reveals:literal, $denied:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl Operation for $name {
            const ACTION: Action = Action::$action;
            const REVEALS: bool = $reveals;
            const DENIED: &'static str = $denied;
        }
    };
}

operation!(/// Create tokens.
    Tokenize, Tokenize, false, "your roles do not allow tokenization (needs tokenizer or revealer)");
operation!(/// See values behind tokens, in full or masked.
    Detokenize, Detokenize, true,
    "your roles do not allow detokenization (needs revealer, or support for masked values)");
operation!(/// Find the deterministic token of a value; read a token's metadata.
    Search, Search, false, "your roles do not allow search or token metadata");
operation!(/// Delete tokens.
    Delete, Delete, false, "your roles do not allow deleting tokens (needs data_officer)");
operation!(/// Manage principals, keys, policies, the seal.
    Manage, Manage, false, "only administrators may do this");
operation!(/// Read audit records, reports and metrics.
    ReadAudit, Audit, false, "your roles do not allow reading audit records or reports");

/// The refusal of one item that the operation's rules do not cover.
pub const ITEM_DENIED: &str = "your roles do not allow this operation on this data type or subject";

/// Proof that `principal` may perform `O`. Only [`authorize`] makes one.
#[derive(Debug)]
pub struct Authorized<'p, O: Operation> {
    principal: &'p Principal,
    _op: PhantomData<O>,
}

impl<'p, O: Operation> Authorized<'p, O> {
    pub fn principal(&self) -> &'p Principal {
        self.principal
    }

    /// Every rule of the principal's roles.
    fn rules(&self) -> impl Iterator<Item = &'p Rule> {
        let p = self.principal;
        p.roles
            .iter()
            .flat_map(|r| r.rules().iter())
            .chain(p.custom_rules.iter())
    }

    /// Whether `O` is allowed on a value of `data_type` with `subject`.
    pub fn allows(&self, data_type: &str, subject: Option<&str>) -> bool {
        self.rules()
            .any(|r| r.grants(O::ACTION, Some(data_type), subject))
    }

    /// Whether `O` is allowed on every type for `subject` (erasing a subject's key touches
    /// values of every type).
    pub fn allows_all_types(&self, subject: &str) -> bool {
        self.rules().any(|r| {
            r.types.iter().any(|t| t == "*")
                && r.grants(O::ACTION, None, Some(subject))
                && r.subject_prefix
                    .as_deref()
                    .is_none_or(|p| subject.starts_with(p))
        })
    }

    /// The most the principal may see of a value of `data_type` with `subject` (for
    /// [`Detokenize`]): the highest reveal among the rules that cover it.
    pub fn reveal_for(&self, data_type: &str, subject: Option<&str>) -> Reveal {
        self.rules()
            .filter(|r| r.grants(Action::Detokenize, Some(data_type), subject))
            .map(|r| r.reveal.reveal())
            .max()
            .unwrap_or(Reveal::None)
    }
}

/// Decides whether `principal` may perform `O` at all; items are checked by the operation.
pub fn authorize<O: Operation>(principal: &Principal) -> Result<Authorized<'_, O>, CoreError> {
    let auth = Authorized {
        principal,
        _op: PhantomData,
    };
    if principal.disabled || !auth.rules().any(|r| r.grants(O::ACTION, None, None)) {
        return Err(CoreError::Forbidden(O::DENIED));
    }
    if O::REVEALS && principal.training_lapsed {
        return Err(CoreError::TrainingExpired);
    }
    Ok(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(roles: &[Role]) -> Principal {
        Principal {
            id: "p".into(),
            name: "p".into(),
            kind: crate::PrincipalKind::Service,
            roles: roles.to_vec(),
            created_at: 0,
            disabled: false,
            training_lapsed: false,
            custom_rules: Default::default(),
        }
    }

    /// API.md's role table, row by row.
    #[test]
    fn built_in_role_matrix() {
        let table: [(Role, [bool; 6]); 6] = [
            // tokenize, detokenize, search, delete, manage, audit
            (Role::Admin, [false, false, false, false, true, true]),
            (Role::Tokenizer, [true, false, true, false, false, false]),
            (Role::Revealer, [true, true, true, false, false, false]),
            (Role::Support, [false, true, true, false, false, false]),
            (Role::Auditor, [false, false, false, false, false, true]),
            (Role::DataOfficer, [false, false, true, true, false, true]),
        ];
        for (role, want) in table {
            let p = with(&[role]);
            let got = [
                authorize::<Tokenize>(&p).is_ok(),
                authorize::<Detokenize>(&p).is_ok(),
                authorize::<Search>(&p).is_ok(),
                authorize::<Delete>(&p).is_ok(),
                authorize::<Manage>(&p).is_ok(),
                authorize::<ReadAudit>(&p).is_ok(),
            ];
            assert_eq!(got, want, "{role:?}");
        }
        let reveal = |roles: &[Role]| {
            authorize::<Detokenize>(&with(roles))
                .unwrap()
                .reveal_for("card_number", None)
        };
        assert_eq!(reveal(&[Role::Support]), Reveal::Masked);
        assert_eq!(reveal(&[Role::Revealer]), Reveal::Full);
        assert_eq!(reveal(&[Role::Support, Role::Revealer]), Reveal::Full);
    }

    /// A lapsed training attestation stops reveals only, with its own code.
    #[test]
    fn lapsed_training_stops_reveal_only() {
        let mut p = with(&[Role::Support, Role::Tokenizer]);
        p.training_lapsed = true;
        assert!(matches!(
            authorize::<Detokenize>(&p),
            Err(CoreError::TrainingExpired)
        ));
        assert!(authorize::<Tokenize>(&p).is_ok());
        assert!(authorize::<Search>(&p).is_ok());
    }

    #[test]
    fn disabled_and_roleless_are_denied() {
        let mut p = with(&[Role::Revealer]);
        p.disabled = true;
        assert!(authorize::<Tokenize>(&p).is_err());
        assert!(authorize::<Search>(&with(&[])).is_err());
    }
}
