//! The `server` example's `--metrics ADDR`: a small HTTP/1.1 responder on its own thread,
//! std only, answering `GET /metrics` with the Prometheus text of the loops' published
//! statistics (`Handle::published_stats`, no round trip to the loops) and 404 to anything
//! else.
//!
//! Ground rules: one request per connection (`Connection: close`), the request head capped
//! at 8 KiB and read with a 2 s timeout, so a slow or hostile client costs this thread at
//! most that; the event loops never notice a scrape.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use wheelbeat_heartbeat::{Handle, metrics};

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// Binds `addr` and serves scrapes on a thread of its own; returns the bound address.
pub fn serve(addr: SocketAddr, handle: Handle) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = answer(s, &handle) {
                            log::debug!("metrics: {e}");
                        }
                    }
                    Err(e) => log::warn!("metrics: accept failed: {e}"),
                }
            }
        })?;
    Ok(bound)
}

fn answer(mut s: TcpStream, handle: &Handle) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next(), parts.next());
    let (status, ctype, body) = match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => (
            "200 OK",
            metrics::CONTENT_TYPE,
            metrics::encode(&handle.published_stats()),
        ),
        _ => (
            "404 Not Found",
            "text/plain",
            "try GET /metrics\n".to_string(),
        ),
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body.as_bytes())?;
    s.flush()
}
