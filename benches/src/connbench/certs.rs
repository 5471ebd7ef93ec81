//! A throwaway certificate made at run time, and the rustls configurations built on it.
//!
//! # Ground rules
//!
//! - `rcgen` makes one self-signed ECDSA P-256 certificate for `localhost` per run; no key is
//!   ever written to disk. The parent makes it and hands it to each child as PEM in the
//!   environment ([`CERT_ENV`], [`KEY_ENV`]), so every mode serves the same certificate.
//! - Every configuration names the `ring` provider explicitly (the workspace's rustls build),
//!   so nothing depends on a process-wide default provider.
//! - The client turns session resumption off: every handshake of phase 3 is a full one, for
//!   every mode alike.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;

/// Environment variable carrying the certificate (PEM) to a child.
pub const CERT_ENV: &str = "CONNBENCH_CERT_PEM";
/// Environment variable carrying the private key (PEM) to a child.
pub const KEY_ENV: &str = "CONNBENCH_KEY_PEM";
/// The name the certificate is issued for and the client asks for.
pub const SERVER_NAME: &str = "localhost";

/// A certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// Its private key (PKCS#8).
    pub key: String,
}

impl Pem {
    /// Makes a new self-signed certificate for [`SERVER_NAME`].
    pub fn generate() -> Result<Pem, String> {
        let ck = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])
            .map_err(|e| format!("rcgen: {e}"))?;
        Ok(Pem {
            cert: ck.cert.pem(),
            key: ck.signing_key.serialize_pem(),
        })
    }

    /// Reads the certificate a parent handed down in the environment.
    pub fn from_env() -> Result<Pem, String> {
        let get = |k: &str| std::env::var(k).map_err(|_| format!("{k} not set"));
        Ok(Pem {
            cert: get(CERT_ENV)?,
            key: get(KEY_ENV)?,
        })
    }

    /// The certificate chain (of one), DER.
    pub fn cert_chain(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        CertificateDer::pem_slice_iter(self.cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate PEM: {e}"))
    }

    /// The private key, DER.
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, String> {
        PrivateKeyDer::from_pem_slice(self.key.as_bytes()).map_err(|e| format!("key PEM: {e}"))
    }

    /// A server configuration serving this certificate, no client authentication.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(self.cert_chain()?, self.private_key()?)
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(config))
    }

    /// A client configuration trusting only this certificate, resumption off.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in self.cert_chain()? {
            roots.add(cert).map_err(|e| e.to_string())?;
        }
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Arc::new(config))
    }
}

/// The server name the client verifies.
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).expect("a valid DNS name")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory handshake: the client trusts the generated certificate for `localhost`.
    #[test]
    fn generated_certificate_completes_a_handshake() {
        let pem = Pem::generate().expect("a certificate");
        let mut server = rustls::ServerConnection::new(pem.server_config().expect("server"))
            .expect("a server connection");
        let mut client =
            rustls::ClientConnection::new(pem.client_config().expect("client"), server_name())
                .expect("a client connection");
        for _ in 0..10 {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).expect("client writes");
            server.read_tls(&mut &wire[..]).expect("server reads");
            server.process_new_packets().expect("server accepts");
            wire.clear();
            server.write_tls(&mut wire).expect("server writes");
            client.read_tls(&mut &wire[..]).expect("client reads");
            client.process_new_packets().expect("client accepts");
            if !client.is_handshaking() && !server.is_handshaking() {
                return;
            }
        }
        panic!("handshake did not complete in 10 flights");
    }
}
