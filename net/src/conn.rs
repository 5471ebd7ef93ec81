//! One connection over any [`Transport`] (TCP, Unix, TLS): framed reads through a per-loop
//! scratch buffer, capped framed writes.
//!
//! # Ground rules
//! - Edge-triggered: after a readable event call [`Connection::read_frames`] until it says
//!   [`ReadStatus::Drained`] (or the peer closed); after a writable event, and after queueing,
//!   call [`Connection::flush`]. Then [`Connection::sync_interest`], which re-registers only
//!   when the wanted interest changed.
//! - Reads go into a [`ReadBuf`] the event loop owns and lends to every connection in turn.
//!   A connection keeps only the unfinished tail of a frame, in a `Vec` that is empty (no heap)
//!   whenever it is between frames.
//! - Every call does a bounded amount of work: reads stop after a byte budget so one busy peer
//!   cannot starve the others ([`ReadStatus::BudgetExhausted`] says "call again, without
//!   waiting for an event").
//!
//! - Tell the connection what each event said with [`Connection::on_event`] (or
//!   [`Connection::note_event`]) before reading. That lets it skip the read that would only
//!   return `WouldBlock`; see "Short reads" below. A caller that never calls it gets the
//!   plain read-until-`WouldBlock` behaviour.
//!
//! # Short reads (Linux)
//! A heartbeat round trip moves one small frame each way, so reading until `WouldBlock`
//! costs two `recv` calls per event where one would do, and syscalls are most of the
//! loop's CPU. When a read returns fewer bytes than there was room for (`0 < n < room`),
//! the kernel's receive queue was empty at that instant. With edge-triggered epoll, any byte
//! that arrives after that instant raises a new edge, so the connection can stop there and
//! report [`ReadStatus::Drained`] without the extra read. This is what tokio's
//! `PollEvented::poll_read` does.
//!
//! The catch is the peer's FIN. Data and a FIN that arrive together raise ONE edge, and the
//! short read returns the data but not the EOF: stop there and the close is never seen. So
//! once an event says "read closed" (or "error"), the connection remembers it (the flag is
//! sticky: like tokio, we never clear the read-closed bit) and from then on always reads
//! until EOF or `WouldBlock`.
//!
//! The optimisation relies on edge-triggered epoll semantics, so it is compiled only for
//! Linux and Android, and used only for transports whose short read proves the socket empty
//! ([`Transport::read_drained`]: a short read on a plain socket; for TLS, a short socket read
//! whose records were all delivered); elsewhere `read_frames` reads until `WouldBlock` as before. It is
//! also off until the caller has called [`Connection::on_event`] or
//! [`Connection::note_event`] at least once, because a caller that never reports events
//! could otherwise miss a FIN that arrived with the last data.
//!
//! # Backpressure
//! To stop reading a peer (say its replies are piling up against the write cap), stop calling
//! `read_frames` for it: the kernel's receive buffer fills and TCP flow control slows the peer
//! down. Readiness is edge-triggered, so bytes already buffered will not raise a new event:
//! when resuming, call `read_frames` at once instead of waiting for one.
//!
//! # Bounds and memory
//! - Idle connection: `size_of::<Connection<LineCodec>>()` bytes and no heap, plus the
//!   kernel's socket (over TLS, rustls's state and keys too: see the `tls` module). On 64-bit Linux that is 144 bytes in release builds and 160 in debug
//!   builds (mio adds a debug-only selector id to each socket); a test asserts <= 160.
//! - Partial frame: at most [`Codec::max_buffered_len`] bytes (64 KiB + 2 for the default line
//!   codec). After [`ReadStatus::Stopped`] the undelivered rest of the last read is kept
//!   instead, at most `max_buffered_len + 64 KiB`, until the next call delivers it.
//! - Write queue: at most the write cap ([`DEFAULT_WRITE_CAP`], 1 MiB, counting
//!   [`FRAME_OVERHEAD`](crate::FRAME_OVERHEAD) bytes per frame); the data buffer's allocation
//!   never passes the cap; the ring of frame lengths takes 4 bytes per queued frame, up to 8
//!   with its growth slack; plus the priority lane's cap ([`DEFAULT_PRIORITY_CAP`], 4 KiB).
//! - A busy connection's heap is therefore at most the write cap (about 1.1 × for 64-byte
//!   frames, 2.6 × in the worst case of a queue of empty frames), plus the priority cap, plus
//!   one max frame. `heap_bytes` reports it; the slow-reader test checks it.

use std::io;
use std::ops::ControlFlow;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::codec::{Codec, LineCodec};
use crate::error::{Error, SendError};
use crate::transport::{AsWrite, Handshake, PeerAddr, ShutdownStatus, Transport};
use crate::write::{FlushStatus, WriteQueue};

/// Default cap on queued outbound data bytes per connection: 1 MiB.
pub const DEFAULT_WRITE_CAP: usize = 1024 * 1024;
/// Default cap on queued priority bytes per connection: 4 KiB.
pub const DEFAULT_PRIORITY_CAP: usize = 4 * 1024;
/// Default per-call read budget, in bytes, suggested for [`Connection::read_frames`]: 64 KiB.
pub const DEFAULT_READ_BUDGET: usize = 64 * 1024;
/// Bytes of the scratch buffer kept free for a read beyond the longest partial frame.
/// At least one TLS record's plaintext (16 KiB), which a TLS transport delivers whole.
pub(crate) const READ_ROOM: usize = 64 * 1024;
/// `Interrupted` reads ("progress, nothing to deliver", e.g. TLS handshake records) allowed
/// per `read_frames` call before it reports [`ReadStatus::BudgetExhausted`]: each is at most
/// one socket read of about one TLS record, so this keeps the call near its byte budget.
const MAX_EMPTY_READS: u32 = 4;

/// The event loop's read scratch buffer, lent to each connection's
/// [`read_frames`](Connection::read_frames) in turn.
///
/// It grows (once) to fit the largest codec it meets: `max_buffered_len + 64 KiB`, so 128 KiB
/// for the default codecs. One per event loop, not per connection.
#[derive(Debug, Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
}

impl ReadBuf {
    /// An empty scratch buffer; it is sized on first use.
    pub fn new() -> Self {
        ReadBuf { buf: Vec::new() }
    }

    /// A scratch buffer already sized for frames of up to `max_frame_len` bytes.
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        let mut b = ReadBuf::new();
        b.ensure(max_frame_len + 8 + READ_ROOM);
        b
    }

    /// Bytes allocated.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    fn ensure(&mut self, len: usize) {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
    }
}

/// How a call to [`Connection::read_frames`] ended (errors aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// Everything available was read: the socket would block, or (on Linux, once events
    /// are reported with [`Connection::on_event`]) a read left room in the buffer. Wait for
    /// the next event.
    Drained,
    /// The byte budget was spent with the socket possibly still readable. Call again
    /// without waiting for an event (edge-triggered readiness will not fire again).
    BudgetExhausted,
    /// The frame callback returned `ControlFlow::Break`; unread frames stay buffered.
    Stopped,
    /// The peer closed its sending side (read returned 0) at a frame boundary. Close, or
    /// keep writing if the protocol allows half-close.
    Closed,
}

/// The write side of a connection, lent to the frame callback of
/// [`Connection::read_frames`] so it can reply while frames are being read.
pub struct Outbox<'a, C: Codec> {
    queue: &'a mut WriteQueue,
    codec: &'a C,
    write_cap: usize,
    priority_cap: usize,
}

impl<C: Codec> std::fmt::Debug for Outbox<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("queued", &self.queue.queued())
            .finish_non_exhaustive()
    }
}

impl<C: Codec> Outbox<'_, C> {
    /// Queues one frame on the data lane; see [`Connection::send`].
    pub fn send<M: AsRef<[u8]>>(&mut self, msg: M) -> Result<(), SendError<M>> {
        send_data(self.queue, self.codec, self.write_cap, msg)
    }

    /// Queues one frame on the priority lane; see [`Connection::send_priority`].
    pub fn send_priority<M: AsRef<[u8]>>(&mut self, msg: M) -> Result<(), SendError<M>> {
        send_prio(self.queue, self.codec, self.priority_cap, msg)
    }

    /// Bytes queued on the data lane (frame bookkeeping included).
    pub fn queued(&self) -> usize {
        self.queue.queued()
    }
}

/// Refuses a payload over the codec's frame cap before anything is queued, handing the message
/// back: the peer could never decode it, so queueing it would only poison the stream.
fn check_frame_len<C: Codec, M: AsRef<[u8]>>(codec: &C, msg: M) -> Result<M, SendError<M>> {
    let len = msg.as_ref().len();
    if len > codec.max_frame_len() {
        let e = Error::FrameTooLong {
            len: len as u64,
            max: codec.max_frame_len(),
        };
        return Err(SendError::new(msg, e));
    }
    Ok(msg)
}

fn send_data<C: Codec, M: AsRef<[u8]>>(
    queue: &mut WriteQueue,
    codec: &C,
    cap: usize,
    msg: M,
) -> Result<(), SendError<M>> {
    let msg = check_frame_len(codec, msg)?;
    let payload = msg.as_ref();
    let len = codec.encoded_len(payload.len());
    let queued = queue.queued();
    if queued + len + crate::write::FRAME_OVERHEAD > cap {
        return Err(SendError::new(msg, Error::QueueFull { queued, cap }));
    }
    match queue.push_data(len, cap, |dst| codec.encode(payload, dst)) {
        Ok(()) => Ok(()),
        Err(e) => Err(SendError::new(msg, e)),
    }
}

fn send_prio<C: Codec, M: AsRef<[u8]>>(
    queue: &mut WriteQueue,
    codec: &C,
    cap: usize,
    msg: M,
) -> Result<(), SendError<M>> {
    let msg = check_frame_len(codec, msg)?;
    let payload = msg.as_ref();
    let len = codec.encoded_len(payload.len());
    let queued = queue.prio_queued();
    if queued + len > cap {
        return Err(SendError::new(msg, Error::QueueFull { queued, cap }));
    }
    match queue.push_prio(len, |dst| codec.encode(payload, dst)) {
        Ok(()) => Ok(()),
        Err(e) => Err(SendError::new(msg, e)),
    }
}

/// A framed, non-blocking connection over a [`Transport`]: a [`mio::net::TcpStream`] by
/// default, a [`mio::net::UnixStream`], or TLS over either (feature `tls`).
///
/// See the [module docs](self) for the calling pattern and every bound. In short:
///
/// ```no_run
/// # use std::ops::ControlFlow;
/// # use mio::{Poll, Token};
/// # use wheelbeat_net::{Connection, ReadBuf, ReadStatus, DEFAULT_READ_BUDGET};
/// # fn f(poll: &Poll, stream: mio::net::TcpStream) -> Result<(), wheelbeat_net::Error> {
/// let mut conn = Connection::new(stream);
/// conn.sync_interest(poll.registry(), Token(7))?;
/// let mut scratch = ReadBuf::new(); // one per event loop
/// // on a readable event:
/// loop {
///     let status = conn.read_frames(&mut scratch, DEFAULT_READ_BUDGET, |frame, out| {
///         let _ = out.send(frame); // echo; a full queue hands the frame back
///         ControlFlow::Continue(())
///     })?;
///     if status != ReadStatus::BudgetExhausted {
///         break; // (a real loop would go serve other connections first)
///     }
/// }
/// conn.flush()?;
/// conn.sync_interest(poll.registry(), Token(7))?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Connection<C: Codec = LineCodec, S: Transport = TcpStream> {
    stream: S,
    codec: C,
    /// The unfinished frame carried between reads; empty (no allocation) between frames.
    partial: Vec<u8>,
    out: WriteQueue,
    write_cap: u32,
    priority_cap: u32,
    /// The interest last registered: 0 none, 1 readable, 2 readable + writable.
    registered: u8,
    /// [`EVENTS_SEEN`] | [`READ_CLOSED`]: what the caller's events have said (see the
    /// module docs, "Short reads").
    flags: u8,
}

/// The caller reports events ([`Connection::on_event`]), so the short-read stop is safe.
const EVENTS_SEEN: u8 = 1;
/// An event said read-closed or error: read to EOF / `WouldBlock` from now on. Sticky.
const READ_CLOSED: u8 = 2;

/// Whether a short read may end a `read_frames` call on this target: only where mio uses
/// edge-triggered epoll, whose next edge is guaranteed for data arriving after the read.
const SHORT_READS: bool = cfg!(any(target_os = "linux", target_os = "android"));

const REG_NONE: u8 = 0;
const REG_READ: u8 = 1;
const REG_READ_WRITE: u8 = 2;

impl<S: Transport> Connection<LineCodec, S> {
    /// A connection framed by [`LineCodec`] with default caps.
    pub fn new(stream: S) -> Self {
        Connection::with_codec(stream, LineCodec::new())
    }
}

impl<C: Codec, S: Transport> Connection<C, S> {
    /// A connection framed by `codec`, with the default write cap ([`DEFAULT_WRITE_CAP`],
    /// 1 MiB) and priority cap ([`DEFAULT_PRIORITY_CAP`], 4 KiB).
    pub fn with_codec(stream: S, codec: C) -> Self {
        Connection {
            stream,
            codec,
            partial: Vec::new(),
            out: WriteQueue::default(),
            write_cap: DEFAULT_WRITE_CAP as u32,
            priority_cap: DEFAULT_PRIORITY_CAP as u32,
            registered: REG_NONE,
            flags: 0,
        }
    }

    /// Sets the cap on queued data bytes (frame bookkeeping included; saturates at 4 GiB);
    /// see [`send`](Self::send). Lowering it below what is queued drops nothing: later sends
    /// fail until the queue drains.
    pub fn set_write_cap(&mut self, cap: usize) {
        self.write_cap = u32::try_from(cap).unwrap_or(u32::MAX);
    }

    /// The cap on queued data bytes.
    pub fn write_cap(&self) -> usize {
        self.write_cap as usize
    }

    /// Sets the cap on queued priority bytes (saturates at 4 GiB).
    pub fn set_priority_cap(&mut self, cap: usize) {
        self.priority_cap = u32::try_from(cap).unwrap_or(u32::MAX);
    }

    /// The cap on queued priority bytes.
    pub fn priority_cap(&self) -> usize {
        self.priority_cap as usize
    }

    /// The transport, e.g. for socket options or TLS details.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The transport, mutably (do not read or write it directly: framing state lives here).
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The peer's address (TCP or Unix).
    pub fn peer_addr(&self) -> Result<PeerAddr, Error> {
        Ok(self.stream.peer_addr()?)
    }

    /// Where the transport's handshake stands ([`Handshake::Done`] for plain sockets).
    pub fn handshake(&self) -> Handshake {
        self.stream.handshake()
    }

    /// True if the transport's handshake is still in progress with its deadline passed at
    /// `now`: close the connection ([`Error::HandshakeTimedOut`]). Put the deadline in the
    /// loop's timers; the crate never reads the clock.
    pub fn handshake_expired(&self, now: Instant) -> bool {
        self.stream.handshake().expired(now)
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// Gives the transport back, dropping any partial frame and queued bytes.
    pub fn into_stream(self) -> S {
        self.stream
    }

    /// Records what a readiness event for this connection said: call it for each event
    /// before [`read_frames`](Self::read_frames) or [`flush`](Self::flush).
    ///
    /// It enables the short-read stop on Linux (a read that does not fill the buffer ends
    /// the call, saving a `read` that would return `WouldBlock`), and remembers for good
    /// an event that was [`is_read_closed`](mio::event::Event::is_read_closed) or
    /// [`is_error`](mio::event::Event::is_error), after which reads go on to EOF. See the
    /// [module docs](self), "Short reads".
    pub fn on_event(&mut self, event: &mio::event::Event) {
        self.note_event(event.is_read_closed() || event.is_error());
    }

    /// [`on_event`](Self::on_event) for a caller that has already unpacked the event:
    /// `read_closed` is `event.is_read_closed() || event.is_error()`.
    pub fn note_event(&mut self, read_closed: bool) {
        self.flags |= EVENTS_SEEN;
        if read_closed {
            self.flags |= READ_CLOSED;
        }
    }

    /// True once an event reported read-closed or error (see [`on_event`](Self::on_event)).
    pub fn is_read_closed(&self) -> bool {
        self.flags & READ_CLOSED != 0
    }

    /// Reads and decodes frames until the socket would block, the peer closes, `on_frame`
    /// breaks, or about `budget` bytes have been read (at least one read is always made).
    /// On Linux, once the caller reports events with [`on_event`](Self::on_event), a read
    /// that does not fill the buffer also ends the call with [`ReadStatus::Drained`]
    /// (unless an event said read-closed): the next byte raises a new edge.
    ///
    /// `on_frame` gets each frame (a slice of `scratch`) and an [`Outbox`] to queue replies.
    /// Frames already complete in a previous call's leftovers are delivered before reading.
    ///
    /// Errors mean the connection is finished: a malformed or oversize frame
    /// ([`Error::FrameTooLong`]), the peer closing mid-frame ([`Error::TruncatedFrame`]), or an
    /// I/O error. Never `WouldBlock`.
    pub fn read_frames<F>(
        &mut self,
        scratch: &mut ReadBuf,
        budget: usize,
        mut on_frame: F,
    ) -> Result<ReadStatus, Error>
    where
        F: FnMut(&[u8], &mut Outbox<'_, C>) -> ControlFlow<()>,
    {
        let Connection {
            stream,
            codec,
            partial,
            out,
            write_cap,
            priority_cap,
            flags,
            ..
        } = self;
        // See the module docs, "Short reads": stop after a read that left room, unless the
        // caller does not report events or an event said the peer's FIN may be pending.
        let short_read_stops = SHORT_READS && *flags & (EVENTS_SEEN | READ_CLOSED) == EVENTS_SEEN;
        let max_buffered = codec.max_buffered_len();
        scratch.ensure(max_buffered + READ_ROOM);
        let buf = &mut scratch.buf[..];

        // Carry the partial frame over; the codec's resume hint still applies to it.
        let mut filled = partial.len();
        buf[..filled].copy_from_slice(partial);
        *partial = Vec::new();
        let mut start = 0;
        let mut read_total = 0;
        let mut first = true;
        let mut drained = false;
        let mut empty_reads = 0;

        let status = loop {
            // Deliver every complete frame in buf[start..filled].
            while let Some(d) = codec.decode_mut(&mut buf[start..filled])? {
                {
                    {
                        let frame = start + d.frame.start..start + d.frame.end;
                        start += d.consumed;
                        let mut outbox = Outbox {
                            queue: out,
                            codec,
                            write_cap: *write_cap as usize,
                            priority_cap: *priority_cap as usize,
                        };
                        if on_frame(&buf[frame], &mut outbox).is_break() {
                            save_partial(partial, &buf[start..filled]);
                            return Ok(ReadStatus::Stopped);
                        }
                    }
                }
            }
            // What is left is shorter than max_buffered (the codec guarantees it), so after
            // moving it to the front there are at least READ_ROOM bytes to read into.
            if start > 0 {
                buf.copy_within(start..filled, 0);
                filled -= start;
                start = 0;
            }
            if drained {
                break ReadStatus::Drained;
            }
            if !first && (read_total >= budget || empty_reads >= MAX_EMPTY_READS) {
                break ReadStatus::BudgetExhausted;
            }
            first = false;
            let room = buf.len() - filled;
            match stream.read(&mut buf[filled..]) {
                Ok(0) => {
                    if filled > 0 {
                        return Err(Error::TruncatedFrame { len: filled });
                    }
                    break ReadStatus::Closed;
                }
                Ok(n) => {
                    filled += n;
                    read_total += n;
                    // The receive queue was empty when the read returned: deliver these
                    // frames, then stop (the kernel raises a new edge for anything later).
                    drained = short_read_stops && stream.read_drained(n, room);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break ReadStatus::Drained,
                // Work without delivery (a TLS handshake record) or a signal: counted, so a
                // peer cannot keep the call going without sending data.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => empty_reads += 1,
                Err(e) => return Err(Error::Io(e)),
            }
        };
        save_partial(partial, &buf[..filled]);
        Ok(status)
    }

    /// Handles one readiness event (or a budget leftover) the usual way: [`read_frames`],
    /// then [`flush`], then [`sync_interest`]. Returns the read status; any error means the
    /// connection is finished. It always reads, so a writable-only event costs one `read`
    /// that returns `WouldBlock`; [`drive_event`](Self::drive_event) skips it.
    ///
    /// [`read_frames`]: Self::read_frames
    /// [`flush`]: Self::flush
    /// [`sync_interest`]: Self::sync_interest
    pub fn drive<F>(
        &mut self,
        registry: &Registry,
        token: Token,
        scratch: &mut ReadBuf,
        budget: usize,
        on_frame: F,
    ) -> Result<ReadStatus, Error>
    where
        F: FnMut(&[u8], &mut Outbox<'_, C>) -> ControlFlow<()>,
    {
        let status = self.read_frames(scratch, budget, on_frame)?;
        self.flush()?;
        self.sync_interest(registry, token)?;
        Ok(status)
    }

    /// Handles one readiness event: records it ([`on_event`](Self::on_event)), reads only if
    /// the event was readable, read-closed or an error, then flushes and syncs interest.
    /// A writable-only event makes no `read` and returns [`ReadStatus::Drained`] (nothing new
    /// to read: wait for the next event). For a budget leftover ([`ReadStatus::BudgetExhausted`]),
    /// where there is no event, call [`drive`](Self::drive).
    pub fn drive_event<F>(
        &mut self,
        registry: &Registry,
        token: Token,
        event: &mio::event::Event,
        scratch: &mut ReadBuf,
        budget: usize,
        on_frame: F,
    ) -> Result<ReadStatus, Error>
    where
        F: FnMut(&[u8], &mut Outbox<'_, C>) -> ControlFlow<()>,
    {
        self.on_event(event);
        let status = if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read_frames(scratch, budget, on_frame)?
        } else {
            ReadStatus::Drained
        };
        self.flush()?;
        self.sync_interest(registry, token)?;
        Ok(status)
    }

    /// Queues one frame on the data lane. Nothing is written until [`flush`](Self::flush).
    ///
    /// Fails, handing `msg` back, if the queue would pass its cap ([`Error::QueueFull`]:
    /// drop it, close the connection, or retry once flushing made room) or if the codec
    /// cannot frame it ([`Error::FrameTooLong`], [`Error::Unencodable`]).
    pub fn send<M: AsRef<[u8]>>(&mut self, msg: M) -> Result<(), SendError<M>> {
        send_data(&mut self.out, &self.codec, self.write_cap as usize, msg)
    }

    /// Queues one frame on the priority lane: it goes out at the next frame boundary, ahead of
    /// queued data but never splitting a data frame already partly written. For small control
    /// frames such as heartbeats. Capped separately (see [`set_priority_cap`](Self::set_priority_cap)).
    pub fn send_priority<M: AsRef<[u8]>>(&mut self, msg: M) -> Result<(), SendError<M>> {
        send_prio(&mut self.out, &self.codec, self.priority_cap as usize, msg)
    }

    /// Writes queued bytes, and the transport's own output (TLS records), until both are
    /// empty or the socket would block. An error means the connection is finished.
    pub fn flush(&mut self) -> Result<FlushStatus, Error> {
        // The transport's own output first: it is older than anything in the queue (a TLS
        // handshake flight, or records already encrypted from the queue).
        if self.stream.pending_output() > 0 && !self.stream.flush_output()? {
            return Ok(FlushStatus::Pending);
        }
        let status = self.out.flush(&mut AsWrite(&mut self.stream))?;
        if self.stream.pending_output() > 0 && !self.stream.flush_output()? {
            return Ok(FlushStatus::Pending);
        }
        Ok(status)
    }

    /// Closes the write half cleanly once the queue is written: flushes, then a FIN (plain
    /// sockets) or close_notify and a FIN (TLS). [`ShutdownStatus::Pending`] means output is
    /// still queued: keep `WRITABLE` interest ([`sync_interest`](Self::sync_interest)) and
    /// call again on the next writable event. Sends queued after this are not delivered.
    pub fn shutdown(&mut self) -> Result<ShutdownStatus, Error> {
        if self.flush()? == FlushStatus::Pending {
            return Ok(ShutdownStatus::Pending);
        }
        let status = self.stream.shutdown_write()?;
        if self.stream.pending_output() > 0 && !self.stream.flush_output()? {
            return Ok(ShutdownStatus::Pending);
        }
        Ok(status)
    }

    /// True while bytes wait to be written (queued frames or the transport's own output):
    /// the connection then wants `WRITABLE` interest.
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty() || self.stream.pending_output() > 0
    }

    /// Bytes queued on the data lane, frame bookkeeping included (what the cap limits).
    pub fn queued(&self) -> usize {
        self.out.queued()
    }

    /// Bytes queued on the priority lane.
    pub fn queued_priority(&self) -> usize {
        self.out.prio_queued()
    }

    /// Bytes received but not yet delivered, held between calls: an unfinished frame, or
    /// after [`ReadStatus::Stopped`] the rest of the last read.
    pub fn partial_len(&self) -> usize {
        self.partial.len()
    }

    /// Heap bytes this connection's buffers hold now (its own and the transport's, e.g. TLS
    /// ciphertext; rustls's internal state and the kernel socket excluded). Zero when idle.
    pub fn heap_bytes(&self) -> usize {
        self.partial.capacity() + self.out.heap_bytes() + self.stream.heap_bytes()
    }

    /// Registers the socket, or re-registers it if the wanted interest changed since the last
    /// call: always `READABLE`, plus `WRITABLE` while [`wants_write`](Self::wants_write).
    /// Does nothing (no syscall) when nothing changed.
    pub fn sync_interest(&mut self, registry: &Registry, token: Token) -> Result<(), Error> {
        let (want, interest) = if self.wants_write() {
            (REG_READ_WRITE, Interest::READABLE | Interest::WRITABLE)
        } else {
            (REG_READ, Interest::READABLE)
        };
        if want == self.registered {
            return Ok(());
        }
        if self.registered == REG_NONE {
            registry.register(&mut self.stream, token, interest)?;
        } else {
            registry.reregister(&mut self.stream, token, interest)?;
        }
        self.registered = want;
        Ok(())
    }

    /// Removes the socket from `registry` (dropping the connection closes the socket, which
    /// also removes it; this is for moving a connection to another loop).
    pub fn deregister(&mut self, registry: &Registry) -> Result<(), Error> {
        if self.registered != REG_NONE {
            registry.deregister(&mut self.stream)?;
            self.registered = REG_NONE;
        }
        Ok(())
    }
}

fn save_partial(partial: &mut Vec<u8>, rest: &[u8]) {
    if !rest.is_empty() {
        // Exactly sized: a long-lived partial frame should not carry doubling slack.
        let mut v = Vec::with_capacity(rest.len());
        v.extend_from_slice(rest);
        *partial = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::LengthCodec;

    /// Guards the documented idle-connection footprint (module docs and README).
    #[test]
    fn idle_connection_fits_the_documented_size() {
        let line = std::mem::size_of::<Connection<LineCodec>>();
        let length = std::mem::size_of::<Connection<LengthCodec>>();
        eprintln!("Connection<LineCodec> = {line} bytes, Connection<LengthCodec> = {length}");
        assert!(line <= 160, "{line}");
        assert!(length <= 160, "{length}");
    }
}
