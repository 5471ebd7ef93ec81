//! Real sockets: a graceful shutdown joins every loop thread and closes every
//! descriptor (sockets, epoll, wakers), counted in `/proc/self`.
//!
//! One test per file on purpose: the counts are per process, and another
//! test running in parallel would change them.

mod common;

use std::time::Duration;

use common::{Seen, heartbeat, need_fds, reporter, wait_until};
use wheelbeat_heartbeat::{CloseReason, Pool, Server};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn shutdown_leaves_no_threads_or_descriptors_behind() {
    need_fds(1024);
    let threads_before = count("/proc/self/task");
    let fds_before = count("/proc/self/fd");

    let n = 300;
    let (h, rx) = reporter(false);
    let mut h = Some(h);
    let server = Server::builder("127.0.0.1:0".parse().unwrap())
        .loops(2)
        .heartbeat(heartbeat(100, 500, 3))
        .start(|_| h.take().unwrap_or_else(|| reporter(false).0))
        .unwrap();
    let (ch, crx) = reporter(false);
    let pool = Pool::builder()
        .connect(server.local_addr(), n)
        .heartbeat(heartbeat(100, 500, 3))
        .start(move |_| ch.clone())
        .unwrap();
    let (sh, ph) = (server.handle(), pool.handle());
    let some_conn = common::wait_for(
        &crx,
        std::time::Instant::now() + Duration::from_secs(10),
        |e| match e {
            Seen::Connect(id, _) => Some(*id),
            _ => None,
        },
    )
    .expect("a client connected");
    assert!(wait_until(&crx, Duration::from_secs(10), || ph
        .stats()
        .connections
        == n as u64
        && sh.stats().connections == n as u64));
    assert_eq!(
        count("/proc/self/task"),
        threads_before + 3,
        "two server loops, one pool loop"
    );
    assert!(count("/proc/self/fd") >= fds_before + 2 * n);
    // A handle kept by another thread must not keep anything open either.
    let kept = server.handle();

    pool.shutdown();
    server.shutdown();
    assert!(kept.is_shut_down());
    assert!(kept.send(some_conn, "{}").is_err());

    assert_eq!(
        count("/proc/self/task"),
        threads_before,
        "loop threads joined"
    );
    assert_eq!(
        count("/proc/self/fd"),
        fds_before,
        "every descriptor closed"
    );
    let shutdown_closes = crx
        .try_iter()
        .filter(|e| matches!(e, Seen::Close(_, CloseReason::Shutdown)))
        .count();
    assert_eq!(shutdown_closes, n);
    drop(rx);
}
