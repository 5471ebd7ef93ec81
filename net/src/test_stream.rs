//! Test support (compiled for this crate's unit tests only): [`MemStream`], an in-memory
//! [`Transport`] that hands its input out at most `chunk` bytes per read, as a socket hands
//! out segments, and drops what is written. The turn's timelines and the TLS read path's
//! tests run the real `Connection` over it.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::transport::{PeerAddr, ShutdownStatus, Transport};

/// Bytes in memory behind a [`Transport`]: see the module docs.
#[derive(Debug, Default)]
pub(crate) struct MemStream {
    /// What is left to read.
    pub(crate) input: VecDeque<u8>,
    /// Most bytes one read hands out.
    pub(crate) chunk: usize,
    /// Once `input` is empty: end of stream (`Ok(0)`) rather than `WouldBlock`.
    pub(crate) eof: bool,
    /// Bytes read so far.
    pub(crate) taken: usize,
}

impl MemStream {
    /// `input`, handed out `chunk` bytes at a time, then `WouldBlock`.
    pub(crate) fn new(input: impl Into<VecDeque<u8>>, chunk: usize) -> Self {
        MemStream {
            input: input.into(),
            chunk,
            ..MemStream::default()
        }
    }
}

impl Source for MemStream {
    fn register(&mut self, _: &Registry, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }
    fn reregister(&mut self, _: &Registry, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }
    fn deregister(&mut self, _: &Registry) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for MemStream {
    // A short read proves nothing: reads go on until `WouldBlock`, as over a transport
    // without the short-read stop.
    const SHORT_READ_DRAINS: bool = false;

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk).min(self.input.len());
        if n == 0 {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        for (b, x) in buf.iter_mut().zip(self.input.drain(..n)) {
            *b = x;
        }
        self.taken += n;
        Ok(n)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(bufs.iter().map(|b| b.len()).sum())
    }
    fn shutdown_write(&mut self) -> io::Result<ShutdownStatus> {
        Ok(ShutdownStatus::Done)
    }
    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Tcp(([127, 0, 0, 1], 1).into()))
    }
    fn local_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Tcp(([127, 0, 0, 1], 2).into()))
    }
}
