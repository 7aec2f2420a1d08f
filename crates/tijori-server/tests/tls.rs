//! The TLS listener on a real socket with real rustls clients: a handler sees the verified
//! client certificate's fingerprint and the peer's address; a client certificate from another
//! CA fails the handshake; a client without a certificate is still served; a client that never
//! finishes its handshake holds up nobody; shutdown returns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tijori_server::tls::{self, PeerCertificate, TlsConfig, TlsFiles};
use tijori_testkit::pki::ClientCa;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// A client certificate `ca` issued, with its key as rustls takes it.
fn client(ca: &ClientCa) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let (cert, key) = ca.issue("client");
    (cert, PrivatePkcs8KeyDer::from(key.serialize_der()).into())
}

struct Fixture {
    addr: SocketAddr,
    server_cert: CertificateDer<'static>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
}

fn dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("server-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A router answering who the caller is: its certificate's fingerprint (or "none") and address.
fn echo() -> Router {
    Router::new().route(
        "/who",
        get(
            |cert: Option<Extension<PeerCertificate>>,
             ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                let cert = cert.map_or("none".to_owned(), |Extension(c)| c.hex());
                format!("cert={cert} peer={peer}")
            },
        ),
    )
}

async fn start(name: &str, client_ca: &ClientCa) -> Fixture {
    let dir = dir(name);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let files = TlsFiles {
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
        client_ca: Some(dir.join("clients.crt")),
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    std::fs::write(dir.join("clients.crt"), client_ca.pem()).unwrap();
    let tls = TlsConfig::load(files).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(tijori_server::listener::serve(
        listener,
        echo(),
        Some(tls),
        Default::default(),
        std::sync::Arc::new(|_, _| {}),
        async move {
            let _ = stopped.await;
        },
    ));
    Fixture {
        addr,
        server_cert: cert.der().clone(),
        stop: Some(stop),
        served,
    }
}

fn connector(
    server_cert: &CertificateDer<'static>,
    client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_cert.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// GET /who over a fresh TLS connection: the answer's body, or the error that ended it.
async fn who(f: &Fixture, connector: &TlsConnector) -> Result<String, std::io::Error> {
    let tcp = TcpStream::connect(f.addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    tls.write_all(b"GET /who HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    Ok(answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned())
}

#[tokio::test]
async fn a_verified_client_certificate_reaches_the_handler() {
    let ca = ClientCa::new("clients");
    let f = start("peer", &ca).await;
    let (cert, key) = client(&ca);
    let expected = PeerCertificate::of(&cert).hex();
    let body = who(&f, &connector(&f.server_cert, Some((cert, key))))
        .await
        .unwrap();
    assert!(body.starts_with(&format!("cert={expected} ")), "{body}");
    assert!(body.contains("peer=127.0.0.1:"), "{body}");

    // No certificate: served all the same, with no fingerprint.
    let body = who(&f, &connector(&f.server_cert, None)).await.unwrap();
    assert!(body.starts_with("cert=none peer=127.0.0.1:"), "{body}");
    stop(f).await;
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_fails_the_handshake() {
    let ca = ClientCa::new("clients");
    let f = start("foreign", &ca).await;
    let stranger = client(&ClientCa::new("someone else"));
    // TLS 1.3 clients learn of the refusal at their first read, not in connect().
    let refused = who(&f, &connector(&f.server_cert, Some(stranger))).await;
    assert!(refused.is_err(), "{refused:?}");
    stop(f).await;
}

#[tokio::test]
async fn a_silent_client_holds_up_nobody() {
    let ca = ClientCa::new("clients");
    let f = start("silent", &ca).await;
    // Connected, never says a word: its handshake waits in its own task.
    let silent = TcpStream::connect(f.addr).await.unwrap();
    let answered = tokio::time::timeout(
        Duration::from_secs(5),
        who(&f, &connector(&f.server_cert, None)),
    )
    .await
    .expect("a second client was served while the first one was silent");
    assert!(answered.unwrap().starts_with("cert=none"));
    drop(silent);
    stop(f).await;
}

async fn stop(mut f: Fixture) {
    let _ = f.stop.take().unwrap().send(());
    tokio::time::timeout(Duration::from_secs(60), f.served)
        .await
        .expect("serve returns after shutdown")
        .unwrap();
}
