//! Operators' passwords, hashed with Argon2id (the `argon2` crate) in the PHC string format, so
//! that parameters travel with each hash and can be raised later without a migration. Only
//! people have passwords; services hold random API keys that need no slow hash.
//!
//! Verification costs the same whether or not the user exists: [`dummy_verify`] burns one
//! hash for an unknown name, so the answer's timing does not tell which names are taken.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::{random_bytes, CryptoError};

/// OWASP's first Argon2id choice: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

fn hasher() -> Result<Argon2<'static>, CryptoError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None)
        .map_err(|_| CryptoError::Malformed("Argon2 parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string (`$argon2id$v=19$m=...`) of `password` under a fresh 128-bit salt.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|_| CryptoError::Malformed("password salt"))?;
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| CryptoError::Malformed("password hash"))
}

/// Whether `password` matches the PHC string `hash`. A malformed stored hash never matches.
/// The comparison inside `argon2` is constant-time.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    // Verify with the parameters the hash was made with (they are in the string).
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the time of one verification and answers `false`: for a name that has no account.
pub fn dummy_verify(password: &str) -> bool {
    // A fixed, valid hash of a random password nobody knows, with the current parameters.
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$dGlqb3JpLWR1bW15LXNhbHQ$0PGYx6Qo2rN7mC0y5wG2V3+8q7rZqT1c2l3yQ0s9x4E";
    let _ = verify_password(password, DUMMY);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("correct horse 42").unwrap();
        let b = hash_password("correct horse 42").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "fresh salt each time");
        assert!(verify_password("correct horse 42", &a));
        assert!(!verify_password("correct horse 43", &a));
        assert!(!verify_password("correct horse 42", "not a hash"));
        assert!(!dummy_verify("correct horse 42"));
    }

    /// The dummy hash parses, so an unknown name costs a real Argon2 run.
    #[test]
    fn dummy_hash_is_well_formed() {
        let parsed = PasswordHash::new(
            "$argon2id$v=19$m=19456,t=2,p=1$dGlqb3JpLWR1bW15LXNhbHQ$0PGYx6Qo2rN7mC0y5wG2V3+8q7rZqT1c2l3yQ0s9x4E",
        );
        assert!(parsed.is_ok());
    }
}
