//! The `tungstenite-*` modes: a WebSocket heartbeat server written the way a
//! tokio-tungstenite user writes it.
//!
//! A current-thread runtime on its own thread; a task per connection;
//! `accept_async_with_config` under a handshake timeout; a `tokio::time::interval` that sends
//! a ping frame carrying the sequence number (its first tick is immediate) and closes a
//! connection whose last frame is older than three intervals; text and binary messages echoed;
//! tungstenite itself answers the peer's pings. Two configurations: tungstenite's default
//! (128 KiB read buffer since 0.25) and a 4 KiB read buffer, the tuning its users are told to do.

use super::ws_payload;
use futures_util::{SinkExt, StreamExt};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// How long a peer may take over its upgrade request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The configurations of the two modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// `WebSocketConfig::default()`.
    Default,
    /// `WebSocketConfig::default().read_buffer_size(4096)`.
    ReadBuffer4k,
}

impl Tuning {
    /// The configuration handed to tungstenite.
    pub fn config(self) -> WebSocketConfig {
        match self {
            Tuning::Default => WebSocketConfig::default(),
            Tuning::ReadBuffer4k => WebSocketConfig::default().read_buffer_size(4096),
        }
    }
}

/// Starts the server on `127.0.0.1:0` with a heartbeat every `interval`; returns its address.
/// The server runs until the process exits.
pub fn start(tuning: Tuning, interval: Duration) -> io::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("tungstenite".into())
        .spawn(move || {
            let rt = match super::runtime() {
                Ok(rt) => rt,
                Err(e) => return drop(tx.send(Err(e))),
            };
            rt.block_on(async move {
                let listener = match TcpListener::bind("127.0.0.1:0").await {
                    Ok(l) => l,
                    Err(e) => return drop(tx.send(Err(e))),
                };
                let _ = tx.send(listener.local_addr());
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(async move {
                        // A failed connection is the client's to count; the server moves on.
                        let _ = serve(tcp, tuning.config(), interval).await;
                    });
                }
            })
        })?;
    rx.recv().map_err(io::Error::other)?
}

/// One connection: upgrade, then ping on every tick, echo messages, until the peer leaves.
async fn serve(
    tcp: TcpStream,
    config: WebSocketConfig,
    interval: Duration,
) -> Result<(), tungstenite::Error> {
    tcp.set_nodelay(true)?;
    let accept = tokio_tungstenite::accept_async_with_config(tcp, Some(config));
    let mut ws = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let mut ticks = tokio::time::interval(interval);
    let mut seq = 0u64;
    let mut last_seen = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if last_seen.elapsed() > 3 * interval {
                    return Err(io::Error::from(io::ErrorKind::TimedOut).into());
                }
                seq += 1;
                ws.send(Message::Ping(ws_payload(seq).into())).await?;
            }
            msg = ws.next() => {
                let Some(msg) = msg else { return Ok(()) };
                last_seen = Instant::now();
                match msg? {
                    m @ (Message::Text(_) | Message::Binary(_)) => ws.send(m).await?,
                    // tungstenite has queued the reply to a close; the next read sends it.
                    Message::Close(_) => {}
                    // Pings are answered by tungstenite; pongs are the sign of life above.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
        }
    }
}
