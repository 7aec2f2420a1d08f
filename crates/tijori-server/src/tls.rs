//! TLS for the API's listeners: the rustls server configuration built from PEM files (TLS 1.3
//! and 1.2 only, AEAD cipher suites only, ALPN `http/1.1`), swapped for a fresh one when the
//! files are reloaded, and each connection's handshake, run by the listener in the
//! connection's own task under a time limit, so a slow or silent client never holds up the
//! others. A verified client certificate reaches handlers as a [`PeerCertificate`]
//! extension, beside the `ConnectInfo<SocketAddr>` the audit's source address comes from.
//! This module never logs key material or the contents of the files it reads.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

/// The protocol versions served: TLS 1.3 first (preferred), then TLS 1.2. rustls implements
/// nothing older, so SSL 3, TLS 1.0 and TLS 1.1 are refused by construction.
pub const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The only application protocol offered: the server speaks HTTP/1.1.
pub const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// How long a client may take to complete its handshake before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A file the TLS configuration could not be built from, named, with the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be read (missing, unreadable).
    #[error("cannot read the TLS {what} file {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The certificate file holds no usable PEM certificate.
    #[error("the TLS certificate file {} {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    /// The key file holds no private key rustls can use.
    #[error("the TLS key file {} {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    /// The key is a valid key, but not the one the certificate was issued for.
    #[error(
        "the private key in {} does not belong to the certificate in {} (give the key that was \
         made with that certificate)",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    /// The client CA file holds no usable CA certificate.
    #[error("the client CA file {} {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },
}

/// Where the server's certificate chain, its key, and optionally the CAs of client
/// certificates are read from (PEM files). Read at start and again at every reload.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
    /// With it, clients are asked for a certificate; one presented must chain to these CAs or
    /// the handshake fails. A client presenting none is still served (authenticated by its
    /// bearer credential as usual).
    pub client_ca: Option<PathBuf>,
}

/// The cryptography used: rustls' *ring* provider with its default cipher suites, which are
/// all AEAD (AES-GCM and ChaCha20-Poly1305, with ECDHE key exchange); no CBC, RC4, 3DES or
/// static-RSA suite exists in it. A unit test holds this.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds a server configuration from the files, or names the file that is wrong and why.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let certs = certificates(&read(&files.cert, "certificate")?).map_err(|reason| {
        TlsError::Certificate {
            path: files.cert.clone(),
            reason,
        }
    })?;
    let key = private_key(&files.key)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| TlsError::Certificate {
            path: files.cert.clone(),
            reason: format!("cannot be used: {e}"),
        })?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let ca_error = |reason: String| TlsError::ClientCa {
                path: path.clone(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            for ca in certificates(&read(path, "client CA")?).map_err(ca_error)? {
                roots
                    .add(ca)
                    .map_err(|e| ca_error(format!("holds a certificate that is no CA: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| ca_error(format!("cannot be used: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::Mismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            }
        }
        rustls::Error::InvalidCertificate(why) => TlsError::Certificate {
            path: files.cert.clone(),
            reason: format!("holds a certificate rustls cannot parse ({why:?})"),
        },
        other => TlsError::Key {
            path: files.key.clone(),
            reason: format!("holds a key that cannot be used: {other}"),
        },
    })?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(config)
}

/// A whole file, wiped from memory when dropped (it may be a private key).
fn read(path: &Path, what: &'static str) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })
}

/// The PEM certificates in a file's text, in order; the reason when there are none.
fn certificates(text: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not valid PEM ({e})"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// The first private key in the key file.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path, "key")?).map_err(|e| TlsError::Key {
        path: path.to_owned(),
        reason: match e {
            pem::Error::NoItemsFound => "holds no PEM private key (PKCS#8, PKCS#1 or SEC1 \
                 \"-----BEGIN ... PRIVATE KEY-----\")"
                .into(),
            // The parser's messages name positions and section kinds, never key bytes.
            other => format!("is not valid PEM ({other})"),
        },
    })
}

/// The TLS configuration in force, and the files it came from. New connections take the
/// current one; [`TlsConfig::reload`] replaces it, leaving open connections as they are.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    files: Arc<TlsFiles>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl TlsConfig {
    /// Reads the files; fails, naming the file, if they do not make a working configuration.
    pub fn load(files: TlsFiles) -> Result<TlsConfig, TlsError> {
        let config = server_config(&files)?;
        Ok(TlsConfig {
            files: Arc::new(files),
            current: Arc::new(RwLock::new(Arc::new(config))),
        })
    }

    /// Reads the files again (after a certificate renewal). On an error the configuration in
    /// force stays, so a half-copied or broken file never takes the listener down.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(server_config(&self.files)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The configuration new connections use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The files this configuration is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// The verified client certificate of a request's connection: its leaf's SHA-256 fingerprint
/// (of the DER encoding). Present as a request extension only when the client presented a
/// certificate and it chained to a `--tls-client-ca`; absent otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerCertificate {
    pub sha256: [u8; 32],
}

impl PeerCertificate {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> PeerCertificate {
        PeerCertificate {
            sha256: Sha256::digest(der).into(),
        }
    }

    /// The fingerprint in lower-case hex.
    pub fn hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// The TLS handshake of one connection under its time limit; answers the stream and the
/// client's verified certificate, if it presented one. `None`: refused or timed out (logged).
pub(crate) async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    config: Arc<ServerConfig>,
) -> Option<(TlsStream<TcpStream>, Option<PeerCertificate>)> {
    let handshake = TlsAcceptor::from(config).accept(tcp);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake refused");
            return None;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return None;
        }
    };
    // With no client CA configured rustls asks for no certificate; with one, a presented
    // certificate has been verified by the time the handshake succeeds.
    let client = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| PeerCertificate::of(leaf));
    Some((stream, client))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::ProtocolVersion;

    #[test]
    fn only_tls_1_2_and_1_3_with_aead_suites() {
        for v in PROTOCOL_VERSIONS {
            assert!(
                matches!(
                    v.version,
                    ProtocolVersion::TLSv1_3 | ProtocolVersion::TLSv1_2
                ),
                "{:?}",
                v.version
            );
        }
        assert_eq!(PROTOCOL_VERSIONS[0].version, ProtocolVersion::TLSv1_3);
        let provider = provider();
        assert!(!provider.cipher_suites.is_empty());
        for suite in &provider.cipher_suites {
            let name = format!("{:?}", suite.suite());
            assert!(
                name.contains("_GCM_") || name.contains("_CHACHA20_POLY1305_"),
                "{name} is not an AEAD suite"
            );
            assert!(
                matches!(
                    suite.version().version,
                    ProtocolVersion::TLSv1_3 | ProtocolVersion::TLSv1_2
                ),
                "{name}"
            );
            if let rustls::SupportedCipherSuite::Tls12(_) = suite {
                assert!(name.starts_with("TLS_ECDHE_"), "{name}: forward secrecy");
            }
        }
    }

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tijori-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_configuration_offers_http_1_1_and_names_a_bad_file() {
        let dir = temp("config");
        let (cert, key) = write_pair(&dir, "a");
        let (_, other_key) = write_pair(&dir, "b");
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
        };
        let config = server_config(&files).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert_eq!(
            config.crypto_provider().cipher_suites,
            provider().cipher_suites
        );

        let mismatch = TlsFiles {
            key: other_key.clone(),
            ..files.clone()
        };
        let e = server_config(&mismatch).unwrap_err();
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
        assert!(e.to_string().contains(&*other_key.to_string_lossy()), "{e}");

        let missing = TlsFiles {
            cert: dir.join("nope.crt"),
            ..files.clone()
        };
        let e = server_config(&missing).unwrap_err();
        assert!(e.to_string().contains("nope.crt"), "{e}");

        let swapped = TlsFiles {
            cert: key.clone(),
            key: cert.clone(),
            client_ca: None,
        };
        let e = server_config(&swapped).unwrap_err();
        assert!(matches!(e, TlsError::Certificate { .. }), "{e}");
    }

    #[test]
    fn a_failed_reload_keeps_the_configuration_in_force() {
        let dir = temp("reload");
        let (cert, key) = write_pair(&dir, "a");
        let tls = TlsConfig::load(TlsFiles {
            cert: cert.clone(),
            key,
            client_ca: None,
        })
        .unwrap();
        let before = tls.current();
        std::fs::write(&cert, "not a certificate").unwrap();
        assert!(tls.reload().is_err());
        assert!(Arc::ptr_eq(&before, &tls.current()));
        let (fresh_cert, fresh_key) = write_pair(&dir, "b");
        std::fs::copy(fresh_cert, &cert).unwrap();
        std::fs::copy(fresh_key, &tls.files().key).unwrap();
        tls.reload().unwrap();
        assert!(!Arc::ptr_eq(&before, &tls.current()));
    }
}
