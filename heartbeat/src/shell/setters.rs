//! The settings [`ServerBuilder`](super::ServerBuilder) and [`PoolBuilder`](super::PoolBuilder)
//! share, written once: both hold an [`Options`](super::Options) in `opts`, and a setter here
//! only writes a field of it. Settings that mean something on one side only (the listener,
//! the backoff, the connect pacing) stay with their builder.
//!
//! A macro rather than a trait: the setters are inherent methods, so they show in each
//! builder's docs and need no import.

/// Expands, inside an `impl` block of a builder with an `opts: Options` field, to the setters
/// both builders share.
macro_rules! shared_setters {
    () => {
        /// Heartbeat settings (interval, timeout, max missed, jitter...).
        pub fn heartbeat(mut self, config: $crate::monitor::Config) -> Self {
            self.opts.heartbeat = config;
            self
        }

        /// All shell settings at once.
        pub fn options(mut self, opts: $crate::Options) -> Self {
            self.opts = opts;
            self
        }

        /// Largest frame accepted or sent (default 64 KiB).
        pub fn max_frame_len(mut self, n: usize) -> Self {
            self.opts.max_frame_len = n;
            self
        }

        /// Cap on bytes queued per connection (default 1 MiB).
        pub fn write_cap(mut self, n: usize) -> Self {
            self.opts.write_cap = n;
            self
        }

        /// How frames are delimited (default [`Framing::Line`](crate::Framing::Line)); both
        /// ends must agree. A protocol with its own framing brings it with
        /// [`Framing::custom`](crate::Framing::custom).
        pub fn framing(mut self, framing: $crate::Framing) -> Self {
            self.opts.framing = framing;
            self
        }

        /// Speaks WebSocket ([`Framing::WebSocket`](crate::Framing::WebSocket)) with these
        /// settings: see [`crate::shell::websocket`].
        pub fn websocket(mut self, settings: $crate::WsSettings) -> Self {
            self.opts.framing = $crate::Framing::WebSocket;
            self.opts.websocket = settings;
            self
        }

        /// `SO_SNDBUF` of every socket (default: the kernel's autotuning). See
        /// [`SocketOptions::send_buffer`](wheelbeat_net::SocketOptions::send_buffer).
        pub fn send_buffer(mut self, bytes: Option<usize>) -> Self {
            self.opts.socket = self.opts.socket.send_buffer(bytes);
            self
        }

        /// `TCP_NOTSENT_LOWAT` of every socket (Linux; default none), so a heartbeat does not
        /// wait behind megabytes already in the kernel. See
        /// [`SocketOptions::notsent_lowat`](wheelbeat_net::SocketOptions::notsent_lowat).
        pub fn notsent_lowat(mut self, bytes: Option<u32>) -> Self {
            self.opts.socket = self.opts.socket.notsent_lowat(bytes);
            self
        }

        /// The heartbeat wire format (default [`JsonLines`](crate::format::JsonLines)); see
        /// [`crate::format`].
        pub fn format(mut self, format: impl $crate::format::Format) -> Self {
            self.opts.format = std::sync::Arc::new(format);
            self
        }
    };
}

pub(crate) use shared_setters;
