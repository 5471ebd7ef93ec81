//! The tokio peer: the same heartbeat written the way a tokio user would write it.
//!
//! Server thread: a current-thread runtime, `TcpListener::accept` in a loop, a task per
//! connection that reads serde_json lines (`BufReader::lines`) under a `tokio::time::timeout`
//! (the liveness check) and answers `{"ping":N}` with `{"pong":N}`. Client thread: a
//! current-thread runtime, a task per connection with `tokio::time::interval` (the run's
//! interval, default 1 ms): on each
//! tick it writes `{"ping":N}` and waits for the matching pong line. `interval`'s default
//! missed-tick behaviour (burst) means a connection that fell behind pings back to back, so
//! with thousands of connections the runtimes run flat out, as the other modes do.

use super::Running;
use serde::{Deserialize, Serialize};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long the server waits for a line before it gives a connection up (a user's liveness
/// check; nothing is silent that long in this benchmark).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A heartbeat frame, as a tokio user would declare it for serde_json.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Frame {
    Ping(u64),
    Pong(u64),
}

/// Both sides of the tokio peer, running.
pub struct TokioPeer {
    stop: watch::Sender<bool>,
    round_trips: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    connected: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

impl TokioPeer {
    /// Connections that have completed their first round trip.
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }
}

impl Running for TokioPeer {
    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
    fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

impl Drop for TokioPeer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Starts both runtimes; the client connects `conns` times.
pub fn start(conns: usize, interval: Duration) -> io::Result<TokioPeer> {
    let (stop, stop_rx) = watch::channel(false);
    let round_trips = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicUsize::new(0));
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;

    let server = {
        let stop_rx = stop_rx.clone();
        let failures = Arc::clone(&failures);
        std::thread::Builder::new()
            .name("tokio-server".into())
            .spawn(move || {
                let rt = runtime().expect("server runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("listener");
                    serve(listener, stop_rx, failures).await
                });
            })?
    };
    let client = {
        let (rts, failures, connected) = (
            Arc::clone(&round_trips),
            Arc::clone(&failures),
            Arc::clone(&connected),
        );
        std::thread::Builder::new()
            .name("tokio-client".into())
            .spawn(move || {
                let rt = runtime().expect("client runtime");
                rt.block_on(clients(
                    addr, conns, interval, stop_rx, rts, failures, connected,
                ));
            })?
    };
    Ok(TokioPeer {
        stop,
        round_trips,
        failures,
        connected,
        threads: vec![server, client],
    })
}

async fn serve(listener: TcpListener, mut stop: watch::Receiver<bool>, failures: Arc<AtomicU64>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let failures = Arc::clone(&failures);
                let stop = stop.clone();
                tokio::spawn(async move {
                    if answer(stream).await.is_err() && !*stop.borrow() {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        }
    }
}

/// One server connection: answer pings until the peer goes away or falls silent.
async fn answer(stream: TcpStream) -> io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    loop {
        let line = match tokio::time::timeout(READ_TIMEOUT, lines.next_line()).await {
            Err(_elapsed) => return Err(io::ErrorKind::TimedOut.into()),
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
        };
        if let Ok(Frame::Ping(n)) = serde_json::from_str(&line) {
            let mut out = serde_json::to_vec(&Frame::Pong(n))?;
            out.push(b'\n');
            writer.write_all(&out).await?;
        }
    }
}

async fn clients(
    addr: SocketAddr,
    conns: usize,
    interval: Duration,
    stop: watch::Receiver<bool>,
    round_trips: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    connected: Arc<AtomicUsize>,
) {
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(_) => {
                failures.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (rts, failures, connected, mut stop) = (
            Arc::clone(&round_trips),
            Arc::clone(&failures),
            Arc::clone(&connected),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            tokio::select! {
                _ = stop.changed() => {}
                r = heartbeat(stream, interval, &rts, &connected) => {
                    if r.is_err() && !*stop.borrow() {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// One client connection: a ping per interval tick, each waiting for its pong.
async fn heartbeat(
    stream: TcpStream,
    interval: Duration,
    round_trips: &AtomicU64,
    connected: &AtomicUsize,
) -> io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let mut interval = tokio::time::interval(interval);
    let mut seq = 0u64;
    loop {
        interval.tick().await;
        seq += 1;
        let mut out = serde_json::to_vec(&Frame::Ping(seq))?;
        out.push(b'\n');
        writer.write_all(&out).await?;
        loop {
            let Some(line) = lines.next_line().await? else {
                return Err(io::ErrorKind::UnexpectedEof.into());
            };
            match serde_json::from_str(&line) {
                Ok(Frame::Pong(n)) if n == seq => break,
                _ => continue, // not our answer: ignore, as a tolerant client would
            }
        }
        if seq == 1 {
            connected.fetch_add(1, Ordering::Relaxed);
        }
        round_trips.fetch_add(1, Ordering::Relaxed);
    }
}
