//! The client side, one implementation per family, run by the parent for every mode alike.
//!
//! # Ground rules
//!
//! - One tokio runtime with two worker threads in the parent process; the clients of every
//!   mode of a family are the same code with the same settings, so a difference between two
//!   modes is the servers' difference.
//! - TLS: `tokio_rustls::TlsConnector`, resumption off, JSON lines; answers every
//!   `{"ping":N}` with `{"pong":N}`. WebSocket: `tokio_tungstenite::client_async_with_config`
//!   with a 4 KiB read buffer (the client's memory is not measured, but 10,000 connections at
//!   tungstenite's default 128 KiB would be 1.3 GB in the parent); tungstenite answers the
//!   server's pings itself, the client counts them.
//! - A held connection (phases 1 and 2) sends one ping of its own (sequence 0) and is *ready*
//!   when its pong arrives; it then answers the server's pings until told to stop, and closes
//!   cleanly (close notify, or a WebSocket close). Any other end of it is a failure.
//! - A cycle (phase 3) is connect + handshake + ping 0 / pong 0 + clean close.

use super::certs::{self, Pem};
use super::tokio_rustls_peer::send;
use super::{Family, Frame, ws_payload, ws_seq};
use futures_util::{SinkExt, StreamExt};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long the WebSocket client waits for the server's close reply before it lets go.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Counters shared by the tasks of one client run.
#[derive(Debug, Default)]
struct Counters {
    ready: AtomicUsize,
    pings: AtomicU64,
    failures: AtomicU64,
    cycles: AtomicU64,
    late_cycles: AtomicU64,
}

/// The client of one family.
pub struct Client {
    rt: tokio::runtime::Runtime,
    family: Family,
    connector: TlsConnector,
}

/// `N` held connections.
pub struct Held {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Held {
    /// Server pings answered so far, over all connections.
    pub fn pings(&self) -> u64 {
        self.counters.pings.load(Ordering::Relaxed)
    }

    /// Connections that failed so far.
    pub fn failures(&self) -> u64 {
        self.counters.failures.load(Ordering::Relaxed)
    }
}

/// What phase 3 did.
#[derive(Debug, Clone, Copy)]
pub struct Cycles {
    /// Cycles completed in the window.
    pub completed: u64,
    /// Cycles completed in all, counting those in flight at the window's end.
    pub total: u64,
    /// Cycles that failed.
    pub failures: u64,
}

impl Client {
    /// A client for `family`, trusting `pem` (TLS).
    pub fn new(family: Family, pem: &Pem) -> Result<Client, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Client {
            rt,
            family,
            connector: TlsConnector::from(pem.client_config()?),
        })
    }

    /// Phase 1: opens `n` connections to `addr`, at most `concurrency` of them between
    /// connect and ready at a time, and returns once all are ready. Errors if one fails or
    /// they are not all ready within `limit`.
    pub fn hold(
        &self,
        addr: SocketAddr,
        n: usize,
        concurrency: usize,
        limit: Duration,
    ) -> Result<Held, String> {
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (counters, gate, stop_rx) =
                (Arc::clone(&counters), Arc::clone(&gate), stop_rx.clone());
            let (family, connector) = (self.family, self.connector.clone());
            tasks.push(self.rt.spawn(async move {
                let Ok(permit) = gate.acquire_owned().await else {
                    return;
                };
                let r = match family {
                    Family::Tls => hold_tls(connector, addr, &counters, permit, stop_rx).await,
                    Family::Ws => hold_ws(addr, &counters, permit, stop_rx).await,
                };
                if let Err(e) = r
                    && counters.failures.fetch_add(1, Ordering::Relaxed) == 0
                {
                    eprintln!("connbench client: first failure: {e}");
                }
            }));
        }
        let held = Held {
            stop,
            tasks,
            counters,
        };
        let deadline = std::time::Instant::now() + limit;
        loop {
            let ready = held.counters.ready.load(Ordering::Relaxed);
            if ready >= n {
                return Ok(held);
            }
            if held.failures() > 0 {
                let f = held.failures();
                self.close(held);
                return Err(format!(
                    "{f} connection(s) failed while connecting ({ready} ready)"
                ));
            }
            if std::time::Instant::now() > deadline {
                self.close(held);
                return Err(format!(
                    "only {ready} of {n} connections ready within {limit:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Closes every held connection cleanly and waits (bounded) for their tasks.
    pub fn close(&self, held: Held) {
        let _ = held.stop.send(true);
        self.rt.block_on(async {
            let all = futures_util::future::join_all(held.tasks);
            let _ = tokio::time::timeout(Duration::from_secs(10), all).await;
        });
    }

    /// Phase 3: `tasks` tasks each repeat a cycle against `addr` for `window`.
    pub fn cycles(&self, addr: SocketAddr, tasks: usize, window: Duration) -> Cycles {
        let counters = Arc::new(Counters::default());
        let (family, connector) = (self.family, self.connector.clone());
        let (stop, stop_rx) = watch::channel(false);
        let handles: Vec<JoinHandle<()>> = (0..tasks)
            .map(|_| {
                let (counters, connector, stop_rx) =
                    (Arc::clone(&counters), connector.clone(), stop_rx.clone());
                self.rt.spawn(async move {
                    while !*stop_rx.borrow() {
                        let r = match family {
                            Family::Tls => cycle_tls(&connector, addr).await,
                            Family::Ws => cycle_ws(addr).await,
                        };
                        // Cycles that end after the window count toward `total` only.
                        let late = *stop_rx.borrow();
                        match r {
                            Ok(()) if late => counters.late_cycles.fetch_add(1, Ordering::Relaxed),
                            Ok(()) => counters.cycles.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                if counters.failures.fetch_add(1, Ordering::Relaxed) == 0 {
                                    eprintln!("connbench client: first cycle failure: {e}");
                                }
                                0
                            }
                        };
                    }
                })
            })
            .collect();
        std::thread::sleep(window);
        let _ = stop.send(true);
        let completed = counters.cycles.load(Ordering::Relaxed);
        self.rt.block_on(async {
            let all = futures_util::future::join_all(handles);
            let _ = tokio::time::timeout(Duration::from_secs(10), all).await;
        });
        Cycles {
            completed,
            total: counters.cycles.load(Ordering::Relaxed)
                + counters.late_cycles.load(Ordering::Relaxed),
            failures: counters.failures.load(Ordering::Relaxed),
        }
    }
}

/// Connects over TLS (a cycle's or a held connection's first steps).
async fn connect_tls(
    connector: &TlsConnector,
    addr: SocketAddr,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    connector.connect(certs::server_name(), tcp).await
}

async fn hold_tls(
    connector: TlsConnector,
    addr: SocketAddr,
    counters: &Counters,
    permit: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let tls = connect_tls(&connector, addr).await?;
    let (reader, mut writer) = tokio::io::split(tls);
    let mut lines = BufReader::new(reader).lines();
    send(&mut writer, &Frame::Ping(0)).await?;
    let mut permit = Some(permit);
    loop {
        tokio::select! {
            _ = stop.changed() => return writer.shutdown().await,
            line = lines.next_line() => {
                let line = line?.ok_or(io::ErrorKind::UnexpectedEof)?;
                match serde_json::from_str(&line) {
                    Ok(Frame::Ping(n)) => {
                        send(&mut writer, &Frame::Pong(n)).await?;
                        counters.pings.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Frame::Pong(0)) if permit.is_some() => {
                        permit = None;
                        counters.ready.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn cycle_tls(connector: &TlsConnector, addr: SocketAddr) -> io::Result<()> {
    let tls = connect_tls(connector, addr).await?;
    let (reader, mut writer) = tokio::io::split(tls);
    let mut lines = BufReader::new(reader).lines();
    send(&mut writer, &Frame::Ping(0)).await?;
    loop {
        let line = lines
            .next_line()
            .await?
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        match serde_json::from_str(&line) {
            Ok(Frame::Pong(0)) => break,
            Ok(Frame::Ping(n)) => send(&mut writer, &Frame::Pong(n)).await?,
            _ => {}
        }
    }
    writer.shutdown().await
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn connect_ws(addr: SocketAddr) -> io::Result<Ws> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let url = format!("ws://{addr}/");
    let (ws, _response) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .map_err(io::Error::other)?;
    Ok(ws)
}

/// Sends a close frame and waits (bounded) for the server's reply and end of stream.
async fn close_ws(ws: &mut Ws) {
    if ws.close(None).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

async fn hold_ws(
    addr: SocketAddr,
    counters: &Counters,
    permit: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut ws = connect_ws(addr).await?;
    ws.send(Message::Ping(ws_payload(0).into()))
        .await
        .map_err(io::Error::other)?;
    let mut permit = Some(permit);
    loop {
        tokio::select! {
            _ = stop.changed() => {
                close_ws(&mut ws).await;
                return Ok(());
            }
            msg = ws.next() => {
                match msg.ok_or(io::ErrorKind::UnexpectedEof)?.map_err(io::Error::other)? {
                    // tungstenite has queued the pong; the next read sends it.
                    Message::Ping(_) => {
                        counters.pings.fetch_add(1, Ordering::Relaxed);
                    }
                    Message::Pong(p) if ws_seq(&p) == Some(0) && permit.is_some() => {
                        permit = None;
                        counters.ready.fetch_add(1, Ordering::Relaxed);
                    }
                    Message::Close(_) => return Err(io::ErrorKind::ConnectionAborted.into()),
                    _ => {}
                }
            }
        }
    }
}

async fn cycle_ws(addr: SocketAddr) -> io::Result<()> {
    let mut ws = connect_ws(addr).await?;
    ws.send(Message::Ping(ws_payload(0).into()))
        .await
        .map_err(io::Error::other)?;
    loop {
        match ws.next().await.ok_or(io::ErrorKind::UnexpectedEof)? {
            Ok(Message::Pong(p)) if ws_seq(&p) == Some(0) => break,
            Ok(_) => {}
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    close_ws(&mut ws).await;
    Ok(())
}
