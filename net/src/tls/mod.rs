//! TLS with rustls (feature `tls`): [`TlsStream`] is a [`Transport`](crate::Transport), so a
//! [`Connection`](crate::Connection) frames over TLS exactly as over a socket, with the same
//! caps, read budget and calling pattern.
//!
//! # Design: rustls's unbuffered API, buffers freed when empty
//! rustls offers two ways to drive a connection without blocking. The buffered
//! `ServerConnection` (`read_tls` / `process_new_packets` / `write_tls`, as in rustls's
//! `tlsserver-mio` example) owns its buffers; its record deframer keeps a 4 KiB buffer for
//! the connection's whole life once anything was read, and it keeps received plaintext in
//! its own queue. The unbuffered API (`rustls::unbuffered`, `process_tls_records`) leaves
//! the bytes to the caller. [`TlsStream`] uses it, and holds three `Vec`s that are freed
//! (not cleared) as soon as they empty: unprocessed ciphertext, plaintext that did not fit
//! the caller's buffer, and encrypted output not yet written. Plaintext is decrypted
//! straight into the connection's per-loop scratch buffer. So an idle TLS connection holds
//! no ciphertext or plaintext buffer: only rustls's protocol state and traffic keys.
//!
//! # Bounds
//!
//! | what | bound |
//! |------|-------|
//! | frame, write cap, priority cap | as for any connection, on plaintext ([`Connection`](crate::Connection)) |
//! | unprocessed ciphertext | [`INCOMING_CAP`](stream::INCOMING_CAP): a 64 KiB handshake message (rustls's cap) + one record; past it the connection fails |
//! | one socket read | [`READ_CHUNK`](stream::READ_CHUNK): one largest record (18,437 bytes) |
//! | encrypted output | taken while below [`OUTGOING_HIGH`](stream::OUTGOING_HIGH) (16 KiB), at most [`MAX_PLAIN_PER_WRITE`](stream::MAX_PLAIN_PER_WRITE) plaintext per write: about 32 KiB + a handshake flight |
//! | reads per `read_frames` call | the same byte budget on plaintext; handshake-only reads count too (4 per call at most) |
//! | handshake | a deadline the caller sets ([`DEFAULT_HANDSHAKE_TIMEOUT`], 10 s) and checks with `now` ([`Connection::handshake_expired`](crate::Connection::handshake_expired)) |
//!
//! # Errors
//! Garbage instead of a ClientHello, a bad certificate or a corrupt record fail only that
//! connection: `read_frames` returns an [`Error::Io`](crate::Error::Io) of kind `InvalidData`
//! whose message starts with `tls:`. A clean close ([`Connection::shutdown`](crate::Connection::shutdown))
//! sends close_notify, then a FIN.
//!
//! # Crypto provider
//! `ring`: it builds with a C compiler alone. rustls's default, `aws-lc-rs`, needs cmake
//! (and NASM on some targets) for its native build. See [`config`].
//!
//! # Example
//! ```no_run
//! use std::time::{Duration, Instant};
//! use wheelbeat_net::Connection;
//! use wheelbeat_net::tls::{ClientAuth, TlsStream, server_config};
//! # fn f(stream: mio::net::TcpStream) -> Result<(), wheelbeat_net::Error> {
//! let config = server_config(&std::fs::read("cert.pem")?, &std::fs::read("key.pem")?, &[], ClientAuth::None)?;
//! // for each accepted `stream`:
//! let deadline = Instant::now() + wheelbeat_net::tls::DEFAULT_HANDSHAKE_TIMEOUT;
//! let conn = Connection::new(TlsStream::server(stream, config.clone(), Some(deadline))?);
//! // drive it like any Connection; close it if `conn.handshake_expired(now)`.
//! # Ok(()) }
//! ```

use std::time::Duration;

pub mod config;
pub mod stream;

pub use config::{ClientAuth, Roots, certs_from_pem, client_config, key_from_pem, server_config};
/// The rustls version this module is built on, for its configuration types.
pub use rustls;
pub use stream::TlsStream;

/// The suggested handshake timeout: 10 s. A peer that connects and never finishes the
/// handshake is closed at its deadline.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
