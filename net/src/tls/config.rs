//! Building rustls configurations from PEM: the server's chain and key (with ALPN and optional
//! client-certificate verification), the client's roots (a PEM CA file or the webpki roots).
//!
//! # Ground rules
//! - One crypto provider, `ring`, passed explicitly to every builder: nothing depends on a
//!   process-wide default being installed. `ring` builds with a C compiler alone; rustls's
//!   default, `aws-lc-rs`, needs cmake (and on some targets NASM) for its native build, which
//!   a fresh machine with only the Rust toolchain and gcc does not have.
//! - PEM is parsed with `rustls-pki-types` (`PemObject`), which rustls recommends in place of
//!   the retired `rustls-pemfile`.
//! - The server's certificate resolver is wrapped so the SNI the client sent can be read
//!   after the handshake ([`TlsStream::server_name`](super::TlsStream::server_name)).

use std::cell::RefCell;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tls {
        reason: format!("{what}: {e}"),
    }
}

/// Parses every certificate in a PEM buffer (a chain: leaf first).
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err("certificate pem", e))?;
    if certs.is_empty() {
        return Err(tls_err("certificate pem", "no certificate found"));
    }
    Ok(certs)
}

/// Parses the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM buffer.
pub fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| tls_err("private key pem", e))
}

fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(pem)? {
        roots.add(cert).map_err(|e| tls_err("ca certificate", e))?;
    }
    Ok(roots)
}

/// Client-certificate verification on the server.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificates are asked for (the default).
    #[default]
    None,
    /// Clients may present a certificate; one that does must chain to these PEM roots.
    Optional(Vec<u8>),
    /// Clients must present a certificate chaining to these PEM roots.
    Required(Vec<u8>),
}

/// Builds a server configuration from a PEM certificate chain and private key.
///
/// `alpn` lists the protocols the server accepts, in preference order (empty: no ALPN).
/// The result is shared by every connection ([`TlsStream::server`](super::TlsStream::server)).
///
/// ```no_run
/// use wheelbeat_net::tls::{ClientAuth, server_config};
/// # fn f() -> Result<(), wheelbeat_net::Error> {
/// let cert = std::fs::read("cert.pem")?;
/// let key = std::fs::read("key.pem")?;
/// let config = server_config(&cert, &key, &[b"wheelbeat"], ClientAuth::None)?;
/// # Ok(()) }
/// ```
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
    alpn: &[&[u8]],
    client_auth: ClientAuth,
) -> Result<Arc<ServerConfig>, Error> {
    let chain = certs_from_pem(cert_chain_pem)?;
    let key = key_from_pem(key_pem)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("server config", e))?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional(pem) | ClientAuth::Required(pem) if pem.is_empty() => {
            return Err(tls_err("client ca", "empty pem"));
        }
        ClientAuth::Optional(pem) => {
            let v = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots_from_pem(&pem)?),
                provider(),
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| tls_err("client verifier", e))?;
            builder.with_client_cert_verifier(v)
        }
        ClientAuth::Required(pem) => {
            let v = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots_from_pem(&pem)?),
                provider(),
            )
            .build()
            .map_err(|e| tls_err("client verifier", e))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| tls_err("server certificate", e))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.cert_resolver = Arc::new(SniRecorder(config.cert_resolver.clone()));
    Ok(Arc::new(config))
}

/// Where a client finds the roots it trusts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Roots {
    /// The CA certificates in this PEM buffer (e.g. a private CA, or a self-signed server).
    Pem(Vec<u8>),
    /// The Mozilla root program, compiled in (`webpki-roots`): no file, no platform store.
    WebPki,
}

/// Builds a client configuration trusting `roots`, offering `alpn` (empty: no ALPN), and
/// presenting `client_cert` (PEM chain, PEM key) if the server asks for one.
///
/// The server name is given per connection ([`TlsStream::client`](super::TlsStream::client)).
pub fn client_config(
    roots: Roots,
    alpn: &[&[u8]],
    client_cert: Option<(&[u8], &[u8])>,
) -> Result<Arc<ClientConfig>, Error> {
    let store = match roots {
        Roots::Pem(pem) => roots_from_pem(&pem)?,
        Roots::WebPki => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("client config", e))?
        .with_root_certificates(store);
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(certs_from_pem(chain)?, key_from_pem(key)?)
            .map_err(|e| tls_err("client certificate", e))?,
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

thread_local! {
    /// The SNI of the ClientHello resolved last on this thread. rustls calls the resolver
    /// inside `process_tls_records`, synchronously, so the stream that made that call reads
    /// its own value right after it (see `TlsStream`).
    static LAST_SNI: RefCell<Option<Box<str>>> = const { RefCell::new(None) };
}

/// Clears the recorded SNI (before a server stream processes records).
pub(super) fn clear_sni() {
    LAST_SNI.with(|s| s.borrow_mut().take());
}

/// Takes the SNI recorded while the current stream processed records.
pub(super) fn take_sni() -> Option<Box<str>> {
    LAST_SNI.with(|s| s.borrow_mut().take())
}

/// Wraps the configured resolver to record the client's SNI.
#[derive(Debug)]
struct SniRecorder(Arc<dyn ResolvesServerCert>);

impl ResolvesServerCert for SniRecorder {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().map(Box::from);
        LAST_SNI.with(|s| *s.borrow_mut() = name);
        self.0.resolve(hello)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.0.only_raw_public_keys()
    }
}
