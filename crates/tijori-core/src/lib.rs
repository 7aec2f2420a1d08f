//! The vault itself: tokenize, detokenize, search and delete; principals and their roles; the
//! keyring and its seal state; card security codes held in memory. It knows nothing of HTTP.
//! Every operation takes an [`policy::Authorized`] proof that only [`policy::authorize`] can
//! make, so no code path reaches the store or a key without a policy decision.
#![forbid(unsafe_code)]

pub mod approval;
pub mod audit;
mod changes;
pub mod clock;
mod cvc;
mod erasure;
mod error;
mod idempotency;
pub mod import;
mod keyring;
pub mod operator;
pub mod policy;
mod principal;
pub mod rotation;
pub mod seal;
mod service;
mod tokens;
mod vault;

pub use clock::{parse_rfc3339, rfc3339, Clock, FixedClock, SystemClock};
pub use error::CoreError;
pub use idempotency::{IdempotencyGuard, Replay};
pub use principal::{NewPrincipal, Principal, PrincipalKind, Source};
pub use service::{joined_types, made_resource, Tokenized};
pub use vault::{Detokenized, Vault, VaultConfig, ROOT_ID};
