//! The root-of-trust joint. A [`KeyProvider`] wraps and unwraps key-encryption keys; the dev key
//! file here, and later Shamir-unsealed and PKCS#11 providers, all plug in behind this one trait,
//! so the rest of the vault never knows where the root key lives.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use zeroize::Zeroize;

use crate::{unwrap_key, wrap_key, CryptoError, SecretKey};

/// Wraps and unwraps key-encryption keys under a root of trust.
pub trait KeyProvider: Send + Sync {
    /// A short name for logs and `GET /v1/sys/keys` (never key material).
    fn name(&self) -> &'static str;
    /// Wraps `key`, bound to `ad`.
    fn wrap(&self, ad: &[u8], key: &SecretKey) -> Result<Vec<u8>, CryptoError>;
    /// Unwraps what [`KeyProvider::wrap`] made; an opaque error on any mismatch.
    fn unwrap(&self, ad: &[u8], wrapped: &[u8]) -> Result<SecretKey, CryptoError>;
}

/// A root key held in memory: rebuilt from custodians' shares at unseal, or read from the dev
/// key file. It zeroizes when dropped, which the vault does as soon as the key-encryption keys
/// are unwrapped.
pub struct RootKey {
    root: SecretKey,
    name: &'static str,
}

impl RootKey {
    /// `name` says where the key came from (`shamir`, `dev-key-file`), for the key records.
    pub fn new(root: SecretKey, name: &'static str) -> RootKey {
        RootKey { root, name }
    }
}

impl KeyProvider for RootKey {
    fn name(&self) -> &'static str {
        self.name
    }

    fn wrap(&self, ad: &[u8], key: &SecretKey) -> Result<Vec<u8>, CryptoError> {
        wrap_key(&self.root, ad, key)
    }

    fn unwrap(&self, ad: &[u8], wrapped: &[u8]) -> Result<SecretKey, CryptoError> {
        unwrap_key(&self.root, ad, wrapped)
    }
}

/// Development root of trust: a 32-byte key in a file of the data dir (mode 0600).
/// Insecure by design (the key sits beside the data it protects); the server says so at start.
pub struct DevKeyFile;

const DEV_NAME: &str = "dev-key-file";

impl DevKeyFile {
    /// Reads the key file, or creates it with a fresh key if it does not exist.
    /// Returns the root key and whether the file was created now.
    pub fn load_or_create(path: &Path) -> Result<(RootKey, bool), CryptoError> {
        let fail = |reason: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut f) => {
                let root = SecretKey::generate()?;
                f.write_all(root.expose_secret())
                    .map_err(|e| fail(e.to_string()))?;
                f.sync_all().map_err(|e| fail(e.to_string()))?;
                Ok((RootKey::new(root, DEV_NAME), true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mut f = OpenOptions::new()
                    .read(true)
                    .open(path)
                    .map_err(|e| fail(e.to_string()))?;
                let mut buf = Vec::with_capacity(33);
                f.read_to_end(&mut buf).map_err(|e| fail(e.to_string()))?;
                let root = SecretKey::from_slice(&buf);
                buf.zeroize();
                let root = root.ok_or_else(|| fail("is not a 32-byte key".into()))?;
                Ok((RootKey::new(root, DEV_NAME), false))
            }
            Err(e) => Err(fail(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn key_file_is_private_and_stable() {
        let dir = std::env::temp_dir().join(format!("tijori-devkey-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("root.key");
        let _ = std::fs::remove_file(&path);
        let (p1, created) = DevKeyFile::load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let kek = SecretKey::generate().unwrap();
        let w = p1.wrap(b"kek|1", &kek).unwrap();
        let (p2, created) = DevKeyFile::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(
            p2.unwrap(b"kek|1", &w).unwrap().expose_secret(),
            kek.expose_secret()
        );
        std::fs::write(&path, b"short").unwrap();
        assert!(DevKeyFile::load_or_create(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
