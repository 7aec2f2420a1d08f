//! Who may do what. The built-in roles of API.md, and the proof of a positive decision:
//! [`Authorized`] can only be made by [`authorize`], and every vault operation demands one, so
//! "no error" can never be mistaken for "allowed". Deny by default: an operation not granted
//! by some role of the principal is refused.

use std::marker::PhantomData;

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

    /// The reveal level this role grants on detokenize.
    const fn reveal(self) -> Reveal {
        match self {
            Role::Revealer => Reveal::Full,
            Role::Support => Reveal::Masked,
            _ => Reveal::None,
        }
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
    /// The roles that grant it.
    fn granted_by(role: Role) -> bool;
    /// The refusal's message.
    const DENIED: &'static str;
}

macro_rules! operation {
    ($(#[$doc:meta])* $name:ident, $denied:literal, $($role:ident)|+) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl Operation for $name {
            fn granted_by(role: Role) -> bool {
                matches!(role, $(Role::$role)|+)
            }
            const DENIED: &'static str = $denied;
        }
    };
}

operation!(/// Create tokens.
    Tokenize, "your roles do not allow tokenization (needs tokenizer or revealer)", Tokenizer | Revealer);
operation!(/// See values behind tokens, in full or masked.
    Detokenize, "your roles do not allow detokenization (needs revealer, or support for masked values)", Revealer | Support);
operation!(/// Find the deterministic token of a value; read a token's metadata.
    Search, "your roles do not allow search or token metadata", Tokenizer | Revealer | Support | DataOfficer);
operation!(/// Delete tokens.
    Delete, "your roles do not allow deleting tokens (needs data_officer)", DataOfficer);
operation!(/// Manage principals, keys, policies, the seal.
    Manage, "only administrators may do this", Admin);
operation!(/// Read audit records, reports and metrics.
    ReadAudit, "your roles do not allow reading audit records or reports", Admin | Auditor | DataOfficer);

/// Proof that `principal` may perform `O`. Only [`authorize`] makes one.
#[derive(Debug)]
pub struct Authorized<'p, O: Operation> {
    principal: &'p Principal,
    reveal: Reveal,
    _op: PhantomData<O>,
}

impl<'p, O: Operation> Authorized<'p, O> {
    pub fn principal(&self) -> &'p Principal {
        self.principal
    }

    /// The most the principal may see of a value (meaningful for [`Detokenize`]).
    pub fn reveal(&self) -> Reveal {
        self.reveal
    }
}

/// Decides whether `principal` may perform `O`.
pub fn authorize<O: Operation>(principal: &Principal) -> Result<Authorized<'_, O>, CoreError> {
    if principal.disabled || !principal.roles.iter().any(|r| O::granted_by(*r)) {
        return Err(CoreError::Forbidden(O::DENIED));
    }
    let reveal = principal
        .roles
        .iter()
        .map(|r| r.reveal())
        .max()
        .unwrap_or(Reveal::None);
    Ok(Authorized {
        principal,
        reveal,
        _op: PhantomData,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(roles: &[Role]) -> Principal {
        Principal {
            id: "p".into(),
            name: "p".into(),
            roles: roles.to_vec(),
            created_at: 0,
            disabled: false,
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
        assert_eq!(
            authorize::<Detokenize>(&with(&[Role::Support]))
                .unwrap()
                .reveal(),
            Reveal::Masked
        );
        assert_eq!(
            authorize::<Detokenize>(&with(&[Role::Revealer]))
                .unwrap()
                .reveal(),
            Reveal::Full
        );
        assert_eq!(
            authorize::<Detokenize>(&with(&[Role::Support, Role::Revealer]))
                .unwrap()
                .reveal(),
            Reveal::Full
        );
    }

    #[test]
    fn disabled_and_roleless_are_denied() {
        let mut p = with(&[Role::Revealer]);
        p.disabled = true;
        assert!(authorize::<Tokenize>(&p).is_err());
        assert!(authorize::<Search>(&with(&[])).is_err());
    }
}
