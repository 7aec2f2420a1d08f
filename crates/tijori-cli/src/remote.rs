//! Talking to a running server: the one place an HTTP agent is made (https with the public
//! webpki roots, or with only the CAs of `--ca-cert`), requests with the caller's credential,
//! and answers turned into JSON or into an error that says what the server said.

use std::io::Read;
use std::sync::Arc;

use anyhow::{bail, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::Remote;

/// The CAs a command trusts for the server's certificate instead of the public roots, read
/// from `--ca-cert` while the arguments are parsed (so a bad file is a usage error).
#[derive(Clone)]
pub(crate) struct CaCert(Arc<rustls::ClientConfig>);

/// `--ca-cert FILE`: every PEM certificate in the file becomes a trust anchor, and nothing else
/// is trusted. TLS 1.3 and 1.2 only, on the same ring provider as the server.
pub(crate) fn parse_ca_cert(path: &str) -> Result<CaCert, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert.map_err(|e| format!("{path} is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("{path} holds a certificate that cannot be trusted: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(tijori_server::tls::provider())
        .with_protocol_versions(tijori_server::tls::PROTOCOL_VERSIONS)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(CaCert(Arc::new(config)))
}

/// An agent for `http://` and `https://` addresses. Without `ca`, a server's certificate must
/// chain to a public (Mozilla) root; with it, to one of its CAs only.
pub(crate) fn agent(ca: Option<&CaCert>) -> ureq::Agent {
    let builder = ureq::AgentBuilder::new();
    match ca {
        Some(CaCert(config)) => builder.tls_config(config.clone()).build(),
        None => builder.build(),
    }
}

/// A request to the server at `path`, with the caller's credential, on the command's one agent
/// (so `audit tail --follow` keeps its connection).
pub(crate) fn request(remote: &Remote, method: &str, path: &str) -> ureq::Request {
    remote
        .agent
        .get_or_init(|| agent(remote.ca_cert.as_ref()))
        .request(
            method,
            &format!("{}{path}", remote.addr.trim_end_matches('/')),
        )
        .set("Authorization", &format!("Bearer {}", remote.token))
}

pub(crate) fn get(remote: &Remote, path: &str) -> Result<serde_json::Value> {
    answer(request(remote, "GET", path).call())
}

/// The largest answer read (a 10,000-item batch answers about 2.5 MB).
const MAX_ANSWER: u64 = 256 * 1024 * 1024;

pub(crate) fn answer(r: Result<ureq::Response, ureq::Error>) -> Result<serde_json::Value> {
    match r {
        Ok(resp) => {
            // Read whole, then parsed: ureq's `into_json` parses a byte at a time from the
            // socket, which was most of `tijori import`'s own CPU on a 10,000-item answer.
            let mut body = Vec::new();
            resp.into_reader().take(MAX_ANSWER).read_to_end(&mut body)?;
            Ok(serde_json::from_slice(&body)?)
        }
        Err(ureq::Error::Status(code, resp)) => {
            let body: serde_json::Value = resp.into_json().unwrap_or_default();
            let msg = body["error"]["message"].as_str().unwrap_or("no message");
            bail!("the server answered {code}: {msg}")
        }
        Err(e) if is_certificate_error(&e) => bail!(
            "cannot reach the server: {e}\nIts certificate is not trusted: if it is from a \
             private CA or self-signed (tijori operator dev-cert), give that certificate with \
             --ca-cert FILE (or TIJORI_CA_CERT)"
        ),
        Err(e) => bail!(
            "cannot reach the server: {e}; is it running, and is --addr right (https:// for a \
             server with TLS)?"
        ),
    }
}

/// Whether the transport failed on the server's certificate (then --ca-cert is the cure).
/// rustls' error reaches here wrapped in an `io::Error`, whose `source()` skips it.
fn is_certificate_error(e: &ureq::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|e| e as &(dyn std::error::Error + 'static));
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(_)) = candidate.downcast_ref() {
                return true;
            }
        }
        next = inner.or_else(|| err.source());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("tijori-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let path = empty.to_string_lossy().into_owned();
        let e = parse_ca_cert(&path).err().unwrap();
        assert!(e.contains(&path) && e.contains("no PEM certificate"), "{e}");
        let missing = dir.join("missing.pem").to_string_lossy().into_owned();
        assert!(parse_ca_cert(&missing).err().unwrap().contains(&missing));
    }
}
