//! Socket options applied to every accepted or connected socket.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use crate::error::Error;

/// TCP keepalive probing: after `idle` without traffic, probe every `interval`, and give up
/// after `count` unanswered probes. The kernel does the work; this only configures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe (`TCP_KEEPIDLE`).
    pub idle: Duration,
    /// Time between probes (`TCP_KEEPINTVL`).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    pub count: u32,
}

/// Per-socket options for accepted and outbound connections.
///
/// Defaults: `TCP_NODELAY` on (heartbeats and small frames should not wait for Nagle),
/// no keepalive, no user timeout, the kernel's send buffer size, no `TCP_NOTSENT_LOWAT`.
///
/// The last two keep a heartbeat from waiting behind megabytes already in the kernel: a
/// small `send_buffer` caps what the kernel holds per socket, and `notsent_lowat`
/// makes the socket report writable only when less than that many bytes are still
/// unsent (Linux), so the application's own queue, where the priority lane works, holds the rest.
///
/// ```
/// use wheelbeat_net::SocketOptions;
/// let o = SocketOptions::default().send_buffer(Some(64 * 1024)).notsent_lowat(Some(16 * 1024));
/// assert_eq!(o.notsent_lowat, Some(16 * 1024));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// Set `TCP_NODELAY`.
    pub nodelay: bool,
    /// Enable TCP keepalive with these parameters.
    pub keepalive: Option<Keepalive>,
    /// `TCP_USER_TIMEOUT` (Linux): how long sent data may stay unacknowledged before the
    /// kernel drops the connection. Bounds how long a dead peer behind a full send queue
    /// goes unnoticed.
    pub user_timeout: Option<Duration>,
    /// `SO_SNDBUF` in bytes (Linux doubles the value for its bookkeeping and reports the
    /// doubled value back). Applies to Unix sockets too.
    pub send_buffer: Option<usize>,
    /// `TCP_NOTSENT_LOWAT` in bytes (Linux; ignored elsewhere): writable only while fewer unsent bytes
    /// than this are queued in the kernel.
    pub notsent_lowat: Option<u32>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            nodelay: true,
            keepalive: None,
            user_timeout: None,
            send_buffer: None,
            notsent_lowat: None,
        }
    }
}

impl SocketOptions {
    /// Sets [`nodelay`](Self::nodelay).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// Sets [`keepalive`](Self::keepalive).
    pub fn keepalive(mut self, k: Option<Keepalive>) -> Self {
        self.keepalive = k;
        self
    }

    /// Sets [`user_timeout`](Self::user_timeout).
    pub fn user_timeout(mut self, t: Option<Duration>) -> Self {
        self.user_timeout = t;
        self
    }

    /// Sets [`send_buffer`](Self::send_buffer).
    pub fn send_buffer(mut self, bytes: Option<usize>) -> Self {
        self.send_buffer = bytes;
        self
    }

    /// Sets [`notsent_lowat`](Self::notsent_lowat).
    pub fn notsent_lowat(mut self, bytes: Option<u32>) -> Self {
        self.notsent_lowat = bytes;
        self
    }

    /// Applies the options that make sense for a Unix domain socket (`SO_SNDBUF`).
    pub fn apply_unix(&self, socket: SockRef<'_>) -> Result<(), Error> {
        if let Some(n) = self.send_buffer {
            socket.set_send_buffer_size(n)?;
        }
        Ok(())
    }

    /// Applies the options to a TCP socket.
    pub fn apply(&self, socket: SockRef<'_>) -> Result<(), Error> {
        if let Some(n) = self.send_buffer {
            socket.set_send_buffer_size(n)?;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(n) = self.notsent_lowat {
            socket.set_tcp_notsent_lowat(n)?;
        }
        socket.set_tcp_nodelay(self.nodelay)?;
        if let Some(k) = self.keepalive {
            let params = TcpKeepalive::new().with_time(k.idle);
            #[cfg(any(
                target_os = "linux",
                target_os = "android",
                target_os = "macos",
                target_os = "ios",
                target_os = "freebsd",
                target_os = "netbsd"
            ))]
            let params = params.with_interval(k.interval).with_retries(k.count);
            socket.set_tcp_keepalive(&params)?;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(t) = self.user_timeout {
            socket.set_tcp_user_timeout(Some(t))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_buffer_and_notsent_lowat_reach_the_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let opts = SocketOptions::default()
            .send_buffer(Some(64 * 1024))
            .notsent_lowat(Some(16 * 1024));
        opts.apply(SockRef::from(&s)).unwrap();
        let sock = SockRef::from(&s);
        // Linux doubles SO_SNDBUF for its bookkeeping; it is at least what was asked.
        assert!(sock.send_buffer_size().unwrap() >= 64 * 1024);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(sock.tcp_notsent_lowat().unwrap(), 16 * 1024);
    }
}
