//! The `tokio-rustls` mode: a TLS heartbeat server written the way a tokio user writes it.
//!
//! A current-thread runtime on its own thread; `TcpListener::accept` in a loop and a task per
//! connection; `tokio_rustls::TlsAcceptor` under a handshake timeout; the stream split in two,
//! `BufReader::lines` on the read half, serde_json for the frames; a `tokio::time::interval`
//! that pings (its first tick is immediate) and closes a connection whose last frame is older
//! than three intervals; pings from the peer answered with pongs; close notify on the way out.

use super::Frame;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// How long a peer may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the server on `127.0.0.1:0` with a heartbeat every `interval`; returns its address.
/// The server runs until the process exits.
pub fn start(config: Arc<rustls::ServerConfig>, interval: Duration) -> io::Result<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("tokio-rustls".into())
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
                let acceptor = TlsAcceptor::from(config);
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        // A failed connection is the client's to count; the server moves on.
                        let _ = serve(acceptor, tcp, interval).await;
                    });
                }
            })
        })?;
    rx.recv().map_err(io::Error::other)?
}

/// One connection: handshake, then ping on every tick and answer the peer's pings.
async fn serve(acceptor: TlsAcceptor, tcp: TcpStream, interval: Duration) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let (reader, mut writer) = tokio::io::split(tls);
    let mut lines = BufReader::new(reader).lines();
    let mut ticks = tokio::time::interval(interval);
    let mut seq = 0u64;
    let mut last_seen = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if last_seen.elapsed() > 3 * interval {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                seq += 1;
                send(&mut writer, &Frame::Ping(seq)).await?;
            }
            line = lines.next_line() => {
                let Some(line) = line? else {
                    // The peer closed; answer its close notify with ours.
                    return writer.shutdown().await;
                };
                last_seen = Instant::now();
                if let Ok(Frame::Ping(n)) = serde_json::from_str(&line) {
                    send(&mut writer, &Frame::Pong(n)).await?;
                }
            }
        }
    }
}

/// Writes one frame as a JSON line and flushes it.
pub(super) async fn send<W: AsyncWrite + Unpin>(writer: &mut W, frame: &Frame) -> io::Result<()> {
    let mut out = serde_json::to_vec(frame)?;
    out.push(b'\n');
    writer.write_all(&out).await?;
    writer.flush().await
}
