//! TLS on the builders (feature `tls`): the configuration a loop wraps its sockets in.
//!
//! # Ground rules
//! - A server wraps every accepted socket in the server side of TLS, a pool every connected
//!   socket in the client side; the heartbeat format, the caps and the bound are those of
//!   plain connections, applied to the plaintext.
//! - A peer reaches the endpoint (the monitor, the handler) only once its handshake has
//!   completed, with the ALPN protocol and the SNI name in its
//!   [`ConnInfo`](super::ConnInfo). Until then only the handshake timeout applies.
//! - Configurations are rustls's own ([`wheelbeat_net::tls`] builds them from PEM), shared
//!   by `Arc` between the loops.

#[cfg(feature = "tls")]
use std::sync::Arc;

#[cfg(feature = "tls")]
use wheelbeat_net::tls::rustls::{ClientConfig, ServerConfig};

#[cfg(feature = "tls")]
use super::{PoolBuilder, ServerBuilder};

/// Which side of TLS a loop speaks, if any.
#[derive(Debug, Clone, Default)]
pub(crate) enum TlsSettings {
    /// Plain sockets.
    #[default]
    Off,
    /// Accepted sockets are TLS servers.
    #[cfg(feature = "tls")]
    Server(Arc<ServerConfig>),
    /// Connected sockets are TLS clients of `server_name`.
    #[cfg(feature = "tls")]
    Client {
        config: Arc<ClientConfig>,
        server_name: Arc<str>,
    },
}

#[cfg(feature = "tls")]
impl ServerBuilder {
    /// Serves TLS with `config` (feature `tls`). Build it from PEM with
    /// [`wheelbeat_net::tls::server_config`]: certificate chain, key, ALPN protocols, and
    /// optional client-certificate verification.
    ///
    /// ```no_run
    /// use wheelbeat_heartbeat::Server;
    /// use wheelbeat_heartbeat::tls::{ClientAuth, server_config};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = server_config(
    ///     &std::fs::read("cert.pem")?,
    ///     &std::fs::read("key.pem")?,
    ///     &[b"wheelbeat"],
    ///     ClientAuth::None,
    /// )?;
    /// let server = Server::builder("0.0.0.0:7000".parse()?).tls(config).start(|_| ())?;
    /// # server.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn tls(mut self, config: Arc<ServerConfig>) -> Self {
        self.opts.tls = TlsSettings::Server(config);
        self
    }

    /// Serves TLS with a certificate chain and key in PEM, no ALPN, no client certificates
    /// (feature `tls`). See [`tls`](Self::tls) for the rest.
    pub fn tls_pem(
        self,
        cert_chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, wheelbeat_net::Error> {
        let config = wheelbeat_net::tls::server_config(
            cert_chain_pem,
            key_pem,
            &[],
            wheelbeat_net::tls::ClientAuth::None,
        )?;
        Ok(self.tls(config))
    }

    /// How long a TLS handshake may take (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`](super::DEFAULT_HANDSHAKE_TIMEOUT), 10 s); see
    /// [`Options::handshake_timeout`](super::Options::handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.opts.handshake_timeout = timeout;
        self
    }
}

#[cfg(feature = "tls")]
impl PoolBuilder {
    /// Connects over TLS with `config`, checking that the server's certificate names
    /// `server_name` (a DNS name or an IP address; also sent as SNI). Build the
    /// configuration with [`wheelbeat_net::tls::client_config`]: roots from a PEM CA file
    /// or the compiled-in webpki roots, ALPN, an optional client certificate.
    ///
    /// ```no_run
    /// use wheelbeat_heartbeat::Pool;
    /// use wheelbeat_heartbeat::tls::{Roots, client_config};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = client_config(Roots::Pem(std::fs::read("ca.pem")?), &[b"wheelbeat"], None)?;
    /// let pool = Pool::builder()
    ///     .connect("127.0.0.1:7000".parse()?, 100)
    ///     .tls(config, "localhost")
    ///     .start(|_| ())?;
    /// # pool.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn tls(mut self, config: Arc<ClientConfig>, server_name: &str) -> Self {
        self.opts.tls = TlsSettings::Client {
            config,
            server_name: server_name.into(),
        };
        self
    }

    /// Connects over TLS trusting the CA certificates in `ca_pem`, no ALPN, no client
    /// certificate (feature `tls`). See [`tls`](Self::tls).
    pub fn tls_ca_pem(
        self,
        ca_pem: &[u8],
        server_name: &str,
    ) -> Result<Self, wheelbeat_net::Error> {
        let config = wheelbeat_net::tls::client_config(
            wheelbeat_net::tls::Roots::Pem(ca_pem.to_vec()),
            &[],
            None,
        )?;
        Ok(self.tls(config, server_name))
    }
}
