//! [`Crowd`]: one monitor and very many simulated peers, in virtual time.
//!
//! Every peer answers each ping after a simulated round trip (uniform in 0.5× to 1.5× the
//! configured RTT), except a fraction that go silent at a random time, chosen early enough
//! that their verdict is due inside the run. The crowd checks the monitor's promise for every
//! peer: each silent one is convicted neither before `interval × (1 − jitter) + max_missed ×
//! timeout` nor after `interval × (1 + jitter) + max_missed × timeout + one tick` of silence
//! (counted from its last frame that reached the monitor), and no live one is convicted.
//!
//! The loop can be made to wake up late, as a real one does ([`CrowdSettings::late`]): each
//! timer wake-up then comes up to `late` after the timer is due (uniform at random; a frame
//! arriving in between wakes it earlier), and the allowed silence grows by the documented
//! `late + ceil_tick(late)`, once, whatever `max_missed` is.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::monitor::{Action, Config, Event, Monitor, PeerId, Stats};
use crate::protocol::Message;

/// What to simulate around the monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct CrowdSettings {
    /// Number of simulated connections, all added at time 0.
    pub conns: u32,
    /// Virtual time to run.
    pub duration: Duration,
    /// Mean round-trip time of a live peer.
    pub rtt: Duration,
    /// Fraction of peers that go silent at a random time.
    pub silent: f64,
    /// Seed of the crowd's random choices (the monitor has its own in its config).
    pub seed: u64,
    /// How late the simulated loop may wake up for a timer (uniform in `0..=late`); zero for a
    /// prompt loop. Keep it under `timeout`, or the local-pause guard fires.
    pub late: Duration,
}

/// The outcome of a [`Crowd`] run.
#[derive(Debug, Clone, PartialEq)]
pub struct CrowdReport {
    /// Pings the monitor sent.
    pub pings: u64,
    /// Pongs delivered to the monitor.
    pub pongs: u64,
    /// Peers that went silent.
    pub silent: u64,
    /// Silent peers convicted inside the allowed silence.
    pub caught: u64,
    /// Silent peers convicted after the allowed silence.
    pub late: u64,
    /// Silent peers convicted after the on-time bound (allowed when the loop wakes up late).
    pub beyond_bound: u64,
    /// Silent peers convicted before the minimum silence (too early: a bug).
    pub early: u64,
    /// Silent peers whose verdict was due before the end of the run but never came.
    pub missed: u64,
    /// Live peers convicted.
    pub false_positives: u64,
    /// The longest silence at a conviction.
    pub worst_detection: Duration,
    /// The bound on the silence at a conviction, for an on-time loop.
    pub bound: Duration,
    /// The longest silence allowed at a conviction: `bound`, plus `late + ceil_tick(late)`
    /// when the loop wakes up late.
    pub allowed: Duration,
    /// The monitor's counters at the end.
    pub stats: Stats,
    /// Bytes the monitor held at the end ([`Monitor::memory_bytes`]).
    pub memory_bytes: usize,
    /// Wall time spent inside monitor calls.
    pub monitor_wall: Duration,
}

impl CrowdReport {
    /// Whether the promise held: every silent peer caught in time, no live one convicted, no
    /// local pause in virtual time.
    pub fn ok(&self) -> bool {
        self.late == 0
            && self.early == 0
            && self.missed == 0
            && self.false_positives == 0
            && self.stats.local_pauses == 0
    }
}

/// One simulated peer.
#[derive(Debug, Clone, Copy)]
struct SimPeer {
    id: PeerId,
    /// When it goes silent (ns since the start), `u64::MAX` if never.
    silent_at: u64,
    /// When its last frame reached the monitor (ns since the start).
    last_delivered: u64,
    /// When the monitor convicted it.
    dead_at: Option<u64>,
}

/// A monitor with many simulated peers. Build it with [`Crowd::new`] (the crowd's own tables),
/// then [`Crowd::populate`] (creates the monitor and adds every peer), then [`Crowd::run`]; the
/// split lets a caller measure the monitor's memory between the steps.
///
/// ```
/// use std::time::Duration;
/// use wheelbeat_heartbeat::monitor::Config;
/// use wheelbeat_heartbeat::sim::{Crowd, CrowdSettings};
///
/// let settings = CrowdSettings {
///     conns: 1_000,
///     duration: Duration::from_secs(300),
///     rtt: Duration::from_millis(20),
///     silent: 0.05,
///     seed: 1,
///     late: Duration::from_millis(4),
/// };
/// let mut crowd = Crowd::new(settings);
/// crowd.populate(Config::default());
/// let report = crowd.run();
/// assert!(report.ok(), "{report:?}");
/// assert!(report.silent > 0 && report.caught == report.silent);
/// ```
#[derive(Debug)]
pub struct Crowd {
    settings: CrowdSettings,
    peers: Vec<SimPeer>,
    in_flight: BinaryHeap<Reverse<(u64, u32, u64)>>,
    rng: fastrand::Rng,
    monitor: Option<Monitor<u32>>,
    t0: Instant,
    min_silence: u64,
    /// The floor for a peer never heard from: its first silence window may be as short as one
    /// tick (first pings are spread over `(0, interval × (1 + jitter)]`), so only the
    /// `max_missed × timeout` of pings is certain.
    min_first_silence: u64,
    bound: u64,
    allowed: u64,
}

impl Crowd {
    /// The crowd's tables, sized for `settings.conns` peers; no monitor yet.
    pub fn new(settings: CrowdSettings) -> Self {
        let n = settings.conns as usize;
        Crowd {
            peers: Vec::with_capacity(n),
            in_flight: BinaryHeap::with_capacity(n / 4 + 16),
            rng: fastrand::Rng::with_seed(settings.seed),
            settings,
            monitor: None,
            t0: Instant::now(),
            min_silence: 0,
            min_first_silence: 0,
            bound: 0,
            allowed: 0,
        }
    }

    /// Creates the monitor with `config` and adds every peer at time 0.
    ///
    /// # Panics
    /// If `config` is invalid.
    pub fn populate(&mut self, config: Config) {
        let ns = |d: Duration| d.as_nanos() as u64;
        let tick = ns(config.tick);
        let timeout = ns(config.timeout).div_ceil(tick) * tick;
        let interval = ns(config.interval);
        let jitter = (interval as f64 * config.jitter) as u64;
        let window = u64::from(config.max_missed) * timeout;
        self.min_silence = interval - jitter + window;
        self.min_first_silence = if jitter == 0 {
            self.min_silence
        } else {
            window
        };
        // `jitter` is computed exactly as the monitor does, so this is the bound to the ns.
        self.bound = interval + jitter + window + tick;
        // A late loop adds the lateness of the verdict's wake-up, and that of the last ping's
        // send rounded up to a tick (its full window is measured from the real send).
        let late = ns(self.settings.late);
        self.allowed = self.bound + late + late.div_ceil(tick) * tick;
        let end = ns(self.settings.duration);
        let mut monitor = Monitor::with_capacity(config, self.t0, self.settings.conns as usize);
        for conn in 0..self.settings.conns {
            let id = monitor.add(self.t0, conn);
            // Silent peers stop early enough that their verdict falls inside the run.
            let silent_at = if self.rng.f64() < self.settings.silent && end > self.bound {
                self.rng.u64(0..end - self.bound)
            } else {
                u64::MAX
            };
            self.peers.push(SimPeer {
                id,
                silent_at,
                last_delivered: 0,
                dead_at: None,
            });
        }
        self.monitor = Some(monitor);
    }

    /// Runs the simulation to its end and checks every peer.
    ///
    /// # Panics
    /// If [`populate`](Self::populate) was not called.
    pub fn run(&mut self) -> CrowdReport {
        let mut monitor = self.monitor.take().expect("populate() before run()");
        let t0 = self.t0;
        let ns = |t: Instant| t.saturating_duration_since(t0).as_nanos() as u64;
        let at = |t: u64| t0 + Duration::from_nanos(t);
        let end = self.settings.duration.as_nanos() as u64;
        let rtt = self.settings.rtt.as_nanos() as u64;
        let late = self.settings.late.as_nanos() as u64;
        let (mut pings, mut pongs, mut false_positives) = (0, 0, 0);
        let mut monitor_wall = Duration::ZERO;
        let mut now = 0u64;
        loop {
            let timer = monitor.poll_timeout().map(ns);
            let pong = self.in_flight.peek().map(|Reverse((t, ..))| *t);
            // A late loop wakes up to `late` after its timer, unless a frame wakes it first.
            let wake = timer.map(|t| t + if late > 0 { self.rng.u64(0..=late) } else { 0 });
            let Some(next) = [wake, pong].into_iter().flatten().min() else {
                break;
            };
            if next > end {
                break;
            }
            now = now.max(next);
            let started = Instant::now();
            // The shell's order: frames first, then timers, then the outputs.
            while let Some(&Reverse((t, conn, seq))) = self.in_flight.peek() {
                if t > now {
                    break;
                }
                self.in_flight.pop();
                let p = &mut self.peers[conn as usize];
                if p.dead_at.is_some() {
                    continue; // Its connection was closed at the conviction.
                }
                monitor.handle_message(p.id, at(now), &Message::Pong(seq));
                p.last_delivered = now;
                pongs += 1;
            }
            if timer.is_some_and(|t| t <= now) {
                monitor.handle_timeout(at(now));
            }
            while let Some(action) = monitor.poll_action() {
                // Close needs nothing here (its Dead event is checked below), and simulated
                // peers never ping, so no pongs are queued.
                if let Action::SendPing { conn, seq, .. } = action {
                    pings += 1;
                    let one_way = rtt / 2;
                    let answer_at = now + one_way + self.rng.u64(0..=rtt);
                    // A peer that goes silent before its answer would leave never answers.
                    if answer_at - one_way < self.peers[conn as usize].silent_at {
                        self.in_flight.push(Reverse((answer_at, conn, seq)));
                    }
                }
            }
            while let Some(event) = monitor.poll_event() {
                if let Event::Dead { conn, .. } = event {
                    let p = &mut self.peers[conn as usize];
                    p.dead_at = Some(now);
                    if p.silent_at == u64::MAX || now < p.silent_at {
                        false_positives += 1;
                    }
                }
            }
            monitor_wall += started.elapsed();
        }
        let mut report = CrowdReport {
            pings,
            pongs,
            silent: 0,
            caught: 0,
            late: 0,
            beyond_bound: 0,
            early: 0,
            missed: 0,
            false_positives,
            worst_detection: Duration::ZERO,
            bound: Duration::from_nanos(self.bound),
            allowed: Duration::from_nanos(self.allowed),
            stats: monitor.stats(),
            memory_bytes: monitor.memory_bytes(),
            monitor_wall,
        };
        for p in self.peers.iter().filter(|p| p.silent_at != u64::MAX) {
            report.silent += 1;
            match p.dead_at {
                Some(d) => {
                    let silence = d.saturating_sub(p.last_delivered);
                    report.worst_detection =
                        report.worst_detection.max(Duration::from_nanos(silence));
                    report.beyond_bound += u64::from(silence > self.bound);
                    if silence > self.allowed {
                        report.late += 1;
                    } else if silence
                        < if p.last_delivered == 0 {
                            self.min_first_silence
                        } else {
                            self.min_silence
                        }
                    {
                        report.early += 1;
                    } else {
                        report.caught += 1;
                    }
                }
                None if p.last_delivered + self.allowed <= end => report.missed += 1,
                None => {}
            }
        }
        self.monitor = Some(monitor);
        report
    }
}
