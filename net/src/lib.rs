//! # wheelbeat-net
//!
//! The mio connection layer of wheelbeat: framing codecs with hard caps, capped buffered
//! writes with a priority lane, a generation-checked connection table, and an accept loop that
//! survives descriptor exhaustion, over TCP, Unix domain sockets or TLS (module `tls`, feature
//! `tls`). It holds tens of thousands of sockets on one thread with little memory each, and
//! never lets a peer make it allocate without bound.
//!
//! No async runtime: you own the `mio::Poll` loop and drive these types from it. The crate
//! never reads the clock; back-off and connect deadlines take `now` from your loop.
//!
//! | piece | what it does |
//! |-------|--------------|
//! | [`Codec`], [`LineCodec`], [`LengthCodec`] | cut bytes into frames; `Ok(None)` = need more, `Err` = malformed |
//! | [`Connection`], [`ReadBuf`], [`Outbox`] | framed reads via a per-loop scratch buffer; capped writes, priority lane; [`Connection::drive`] handles one event |
//! | [`Transport`], [`PeerAddr`], [`Handshake`] | the byte stream under a connection: TCP, Unix, TLS |
//! | `tls::TlsStream` (feature `tls`) | rustls's unbuffered API; no buffer held when idle |
//! | [`ConnTable`], [`ConnKey`] | slab keyed by mio `Token` with a generation: stale events miss |
//! | [`bind`], [`Acceptor`], [`Listener`], [`raise_fd_limit`] | listen (TCP or a Unix path), accept until `WouldBlock`, back off on `EMFILE` |
//! | [`Ready`] | the turn's work list: what edge-triggered readiness will not report again |
//! | [`Turn`], [`Served`] | a turn bounded in time: [`Ready`] plus the deadline, checked between frames; `now` from the caller |
//! | [`Connecting`] | non-blocking connect with a caller-enforced deadline |
//! | [`Error`], [`SendError`] | one error enum; a failed send hands the message back |
//! | [`ws`] | WebSocket (RFC 6455): [`ws::WsCodec`], [`ws::Session`], upgrade, ping/pong heartbeat helpers |
//!
//! # Bounds (every one of them)
//! - Frame: at most the codec's `max_frame_len` ([`DEFAULT_MAX_FRAME_LEN`], 64 KiB), enforced
//!   before buffering: at most `max_frame_len + 2` (line) or `+ 4` (length) bytes are held for
//!   an unfinished frame, then it is an error for that connection.
//! - Write queue: [`DEFAULT_WRITE_CAP`] (1 MiB) of encoded bytes plus [`FRAME_OVERHEAD`] bytes
//!   per frame; past it `send` fails and hands the message back. The data buffer's allocation
//!   never passes the cap (the per-frame bookkeeping adds at most 8 bytes a frame). Priority lane: [`DEFAULT_PRIORITY_CAP`] (4 KiB).
//! - Reads: about `budget` bytes per [`Connection::read_frames`] call, then
//!   [`ReadStatus::BudgetExhausted`]; scratch buffer: one per loop, `max_buffered_len + 64 KiB`.
//! - Accepts: `accept_budget` (256) per call, `max_connections` (100,000) live.
//! - Memory per idle connection: `size_of::<Connection>()` (144 bytes in release builds on 64-bit Linux, asserted <= 160)
//!   and no heap, plus a [`ConnTable`] slot and the kernel socket. Over TLS: 3,587 bytes in
//!   all, no buffer (see the `tls` module docs).
//! - TLS: the same caps on plaintext; ciphertext in at most `INCOMING_CAP` (82 KiB), out about
//!   two records; a handshake deadline the caller checks with `now`.
//!   and no heap, plus a [`ConnTable`] slot and the kernel socket.
//! - WebSocket ([`ws`]): upgrade head 8 KiB, frame payload 64 KiB (refused from its header),
//!   message 64 KiB (checked before each fragment is appended); an idle upgraded connection is
//!   `Connection<WsCodec>` (160 bytes) + `ws::Session` (56 bytes), no heap.
//!
//! # Example
//! See `examples/echo.rs` and the README for a complete echo server.
#![deny(missing_docs)]

// The modules are public for their docs (ground rules, state tables, bounds); everything in
// them is also re-exported at the crate root, which is the path to use.
pub mod clock;
pub mod codec;
pub mod conn;
pub mod connect;
pub mod error;
pub mod listen;
pub mod mem;
pub mod options;
pub mod ready;
pub mod table;
#[cfg(test)]
mod test_stream;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;
pub mod turn;
pub mod write;
pub mod ws;

pub use clock::thread_cpu_time;
pub use codec::{Codec, DEFAULT_MAX_FRAME_LEN, Decoded, LengthCodec, LineCodec, MAX_MAX_FRAME_LEN};
pub use conn::{
    Connection, DEFAULT_PRIORITY_CAP, DEFAULT_READ_BUDGET, DEFAULT_WRITE_CAP, Outbox, ReadBuf,
    ReadStatus,
};
pub use connect::{ConnectStatus, Connecting};
pub use error::{Error, FrameError, SendError};
pub use listen::{AcceptStatus, Acceptor, FdLimit, ListenConfig, Listener, bind, raise_fd_limit};
pub use mem::release_free_memory;
pub use options::{Keepalive, SocketOptions};
pub use ready::Ready;
pub use table::{ConnKey, ConnTable};
pub use transport::{Handshake, PeerAddr, ShutdownStatus, Transport};
pub use turn::{Served, Turn};
pub use write::{FRAME_OVERHEAD, FlushStatus};

/// Compiles the README's code blocks as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod readme {
    /// Guards the README's echo server against drifting from `examples/echo.rs`.
    #[test]
    fn readme_echo_server_is_the_example() {
        let readme = include_str!("../README.md");
        let example = include_str!("../examples/echo.rs");
        for line in example.lines().filter(|l| !l.starts_with("//!")) {
            assert!(readme.contains(line), "README lacks: {line}");
        }
    }
}
