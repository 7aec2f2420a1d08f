//! A certificate authority for client certificates (mutual TLS), made fresh for a test.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;

/// A CA that signs client certificates.
pub struct ClientCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl ClientCa {
    pub fn new(name: &str) -> ClientCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        ClientCa { cert, key }
    }

    /// The CA's certificate in PEM, for `--tls-client-ca`.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A client certificate it issued to `name`, and its key.
    pub fn issue(&self, name: &str) -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.der().clone(), key)
    }
}
