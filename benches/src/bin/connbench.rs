//! Server-side cost per connection over TLS and WebSocket: wheelbeat beside tokio-rustls and
//! tokio-tungstenite, in one run.
//!
//! Run: `cargo run --release -p wheelbeat-benches --bin connbench -- --quick` (under a minute)
//! or without `--quick` for 10,000 connections, longer windows and 3 rounds.
//!
//! Each server mode runs in a child process of this binary (`--child MODE`), one after the
//! other, rotated each round; this process runs the clients (the same client for every mode of
//! a family), and the handshake phase runs the modes of a family interleaved, in slices.
//! Per mode: resident and heap bytes per idle connection (after its handshake and one round
//! trip), server CPU per heartbeat at the same offered load, and full handshakes per
//! second (connect, handshake, one round trip, close). The table shows medians over rounds and
//! the ratios of each wheelbeat mode to its tokio peers against the issues' targets. Modes:
//! `tokio-rustls`, `wheelbeat-tls`, `tungstenite-default`, `tungstenite-4k`, `wheelbeat-ws`
//! (`--only tls` or `--only tungsten,wheelbeat-ws` for one family). See
//! `wheelbeat_benches::connbench` for the ground rules.

use clap::Parser;
use std::process::Command;
use std::time::{Duration, Instant};
use wheelbeat_benches::alloc::Counting;
use wheelbeat_benches::connbench::{
    self, Family, MODES, Mode, Plan, Report, certs, client::Client, control,
};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// TLS and WebSocket cost per connection: wheelbeat vs tokio-rustls vs tokio-tungstenite.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// 2,000 connections, 1 round, short windows: under a minute.
    #[arg(long)]
    quick: bool,
    /// Connections held per mode (default 10,000; 2,000 with --quick).
    #[arg(long)]
    conns: Option<usize>,
    /// Rounds (each runs every mode once; default 3, 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// The servers' heartbeat interval (default 2s; 1s with --quick).
    #[arg(long, value_parser = wheelbeat_benches::parse_seconds)]
    interval: Option<Duration>,
    /// Heartbeating before the CPU window opens (default 2s; 1s with --quick).
    #[arg(long, value_parser = wheelbeat_benches::parse_seconds)]
    warmup: Option<Duration>,
    /// CPU-per-heartbeat window (default 10s; 3s with --quick).
    #[arg(long, value_parser = wheelbeat_benches::parse_seconds)]
    window: Option<Duration>,
    /// Handshake window per mode, taken in 5 interleaved slices (default 8s; 3s with --quick).
    #[arg(long, value_parser = wheelbeat_benches::parse_seconds)]
    handshake_window: Option<Duration>,
    /// Client tasks repeating handshakes (default 16).
    #[arg(long, default_value_t = 16)]
    handshakers: usize,
    /// Run only the modes whose name contains this (or any of these, comma-separated).
    #[arg(long)]
    only: Option<String>,
    /// Print what each server is built from.
    #[arg(long)]
    verbose: bool,
    /// Internal: run one server mode in this process, driven over stdin/stdout.
    #[arg(long, hide = true)]
    child: Option<String>,
}

fn main() {
    let args = Args::parse();
    let q = args.quick;
    let plan = Plan {
        conns: args.conns.unwrap_or(if q { 2_000 } else { 10_000 }),
        interval: args
            .interval
            .unwrap_or(Duration::from_secs(if q { 1 } else { 2 })),
        warmup: args
            .warmup
            .unwrap_or(Duration::from_secs(if q { 1 } else { 2 })),
        window: args
            .window
            .unwrap_or(Duration::from_secs(if q { 3 } else { 10 })),
        handshake_window: args.handshake_window.unwrap_or(Duration::from_secs(if q {
            3
        } else {
            8
        })),
        handshakers: args.handshakers,
        connect_concurrency: 64,
    };
    // Every held connection is a descriptor here and one in the child.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    if let Some(mode) = &args.child {
        if let Err(e) = child(mode, plan) {
            eprintln!("connbench child {mode}: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = parent(&args, plan) {
        eprintln!("connbench: {e}");
        std::process::exit(1);
    }
}

fn parent(args: &Args, plan: Plan) -> Result<(), String> {
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
    let modes: Vec<Mode> = MODES
        .iter()
        .copied()
        .filter(|m| {
            args.only
                .as_deref()
                .is_none_or(|o| o.split(',').any(|o| m.name.contains(o)))
        })
        .collect();
    println!(
        "# connbench: {} connections, heartbeat interval {:?} ({:.0} offered heartbeats/s), \
         warm-up {:?}, CPU window {:?}, handshake window {:?} x {} client tasks, {rounds} round(s)",
        plan.conns,
        plan.interval,
        plan.conns as f64 / plan.interval.as_secs_f64(),
        plan.warmup,
        plan.window,
        plan.handshake_window,
        plan.handshakers,
    );
    let pem = certs::Pem::generate()?;
    let tls = Client::new(Family::Tls, &pem)?;
    let ws = Client::new(Family::Ws, &pem)?;
    let mut reports: Vec<Vec<Report>> = vec![Vec::new(); MODES.len()];
    for round in 0..rounds {
        let order: Vec<Mode> = (0..modes.len())
            .map(|k| modes[(k + round) % modes.len()])
            .collect();
        let mut this_round: Vec<(Mode, Report)> = Vec::new();
        for &mode in &order {
            let client = match mode.family {
                Family::Tls => &tls,
                Family::Ws => &ws,
            };
            match run_mode(mode, plan, &pem, client) {
                Ok(r) => {
                    println!(
                        "round {round} {:>19}: {:>6.0} B rss/conn {:>6.0} B heap/conn  \
                         {:>6.0} ns cpu/hb ({:.0} hb/s)  failures {}",
                        mode.name,
                        r.rss_per_conn(),
                        r.heap_per_conn(),
                        r.cpu_per_hb(),
                        r.hb_rate(),
                        r.failures,
                    );
                    if args.verbose && !r.detail.is_empty() {
                        println!("    {}", r.detail);
                    }
                    this_round.push((mode, r));
                }
                Err(e) => println!("round {round} {:>19}: FAILED: {e}", mode.name),
            }
        }
        // Phase 3, the modes of a family interleaved (see `handshakes`).
        for (family, client) in [(Family::Tls, &tls), (Family::Ws, &ws)] {
            let family_modes: Vec<Mode> = this_round
                .iter()
                .map(|(m, _)| *m)
                .filter(|m| m.family == family)
                .collect();
            if family_modes.is_empty() {
                continue;
            }
            match handshakes(&family_modes, plan, &pem, client) {
                Ok(results) => {
                    for (mode, hs) in results {
                        let Some((_, r)) = this_round.iter_mut().find(|(m, _)| *m == mode) else {
                            continue;
                        };
                        (r.handshakes, r.hs_secs, r.hs_cpu_ns, r.hs_total) =
                            (hs.completed, hs.secs, hs.cpu_ns, hs.total);
                        r.failures += hs.failures;
                        println!(
                            "round {round} {:>19}: {:>6.0} handshakes/s {:>5.0} us cpu/hs  failures {}",
                            mode.name,
                            r.hs_rate(),
                            r.cpu_per_hs_us(),
                            hs.failures,
                        );
                    }
                }
                Err(e) => println!("round {round} handshakes: FAILED: {e}"),
            }
        }
        for (mode, r) in this_round {
            let i = MODES.iter().position(|m| *m == mode).expect("a mode");
            reports[i].push(r);
        }
    }
    summary(&reports);
    Ok(())
}

/// Starts a child serving `mode`.
fn spawn_child(mode: Mode, plan: Plan, pem: &certs::Pem) -> Result<control::Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.args(["--child", mode.name])
        .args(["--interval", &format!("{}s", plan.interval.as_secs_f64())])
        .env(certs::CERT_ENV, &pem.cert)
        .env(certs::KEY_ENV, &pem.key);
    control::Child::spawn(cmd).map_err(|e| format!("spawn {}: {e}", mode.name))
}

/// Handshake slices per mode in phase 3.
const SLICES: u32 = 5;

/// What phase 3 measured for one mode.
struct Handshakes {
    completed: u64,
    total: u64,
    failures: u64,
    secs: f64,
    cpu_ns: u64,
}

/// Phase 3 for the modes of one family, interleaved: a fresh child per mode, all running at
/// once, and the handshake window cut into [`SLICES`] slices per mode, taken in turn (the
/// order rotated each slice). A change in the machine's other load during the phase then
/// falls on every mode alike instead of on whichever mode ran at that moment.
fn handshakes(
    modes: &[Mode],
    plan: Plan,
    pem: &certs::Pem,
    client: &Client,
) -> Result<Vec<(Mode, Handshakes)>, String> {
    let mut children = modes
        .iter()
        .map(|&m| spawn_child(m, plan, pem))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out: Vec<Handshakes> = modes
        .iter()
        .map(|_| Handshakes {
            completed: 0,
            total: 0,
            failures: 0,
            secs: 0.0,
            cpu_ns: 0,
        })
        .collect();
    let slice = plan.handshake_window / SLICES;
    let io = |e: std::io::Error| format!("child: {e}");
    for s in 0..SLICES as usize {
        for k in 0..modes.len() {
            let i = (k + s) % modes.len();
            let child = &mut children[i];
            let before = child.sample().map_err(io)?;
            let cycles = client.cycles(child.addr(), plan.handshakers, slice);
            let after = child.sample().map_err(io)?;
            let h = &mut out[i];
            h.completed += cycles.completed;
            h.total += cycles.total;
            h.failures += cycles.failures;
            h.secs += slice.as_secs_f64();
            h.cpu_ns += after.cpu_ns.saturating_sub(before.cpu_ns);
        }
    }
    Ok(modes.iter().copied().zip(out).collect())
}

/// Runs phases 1 and 2 against a fresh child of `mode`.
fn run_mode(mode: Mode, plan: Plan, pem: &certs::Pem, client: &Client) -> Result<Report, String> {
    let mut child = spawn_child(mode, plan, pem)?;
    let io = |e: std::io::Error| format!("child: {e}");
    let addr = child.addr();
    let base = child.sample().map_err(io)?;

    // Phase 1: idle memory.
    let held = client.hold(
        addr,
        plan.conns,
        plan.connect_concurrency,
        Duration::from_secs(120),
    )?;
    let idle = child.sample().map_err(io)?;

    // Phase 2: CPU per heartbeat.
    std::thread::sleep(plan.warmup);
    let (p0, s0, t0) = (held.pings(), child.sample().map_err(io)?, Instant::now());
    std::thread::sleep(plan.window);
    let (p1, s1, hb_secs) = (held.pings(), child.sample().map_err(io)?, t0.elapsed());
    let held_failures = held.failures();
    client.close(held);

    Ok(Report {
        mode: mode.name.to_string(),
        conns: plan.conns,
        idle_rss_bytes: idle.rss_bytes.saturating_sub(base.rss_bytes),
        idle_heap_bytes: idle.heap_bytes.saturating_sub(base.heap_bytes),
        heartbeats: p1 - p0,
        hb_secs: hb_secs.as_secs_f64(),
        hb_cpu_ns: s1.cpu_ns.saturating_sub(s0.cpu_ns),
        // Filled in by `handshakes`.
        handshakes: 0,
        hs_secs: 0.0,
        hs_cpu_ns: 0,
        hs_total: 0,
        failures: held_failures,
        detail: connbench::describe(mode.name).to_string(),
    })
}

/// Runs one server mode in this process until the parent closes our stdin.
fn child(mode: &str, plan: Plan) -> Result<(), String> {
    let pem = certs::Pem::from_env()?;
    let addr = connbench::start_server(mode, plan.interval, &pem)?;
    control::serve(addr).map_err(|e| e.to_string())?;
    // The servers' threads never end by themselves: leave without waiting for them.
    std::process::exit(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn summary(reports: &[Vec<Report>]) {
    let col = |i: usize, f: fn(&Report) -> f64| median(reports[i].iter().map(f).collect());
    println!(
        "\n| mode | RSS B per idle conn | heap B per idle conn | CPU ns per heartbeat | heartbeats/s | handshakes/s | CPU us per handshake | failures |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, mode) in MODES.iter().enumerate() {
        if reports[i].is_empty() {
            continue;
        }
        let failures: u64 = reports[i].iter().map(|r| r.failures).sum();
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {failures} |",
            mode.name,
            col(i, Report::rss_per_conn),
            col(i, Report::heap_per_conn),
            col(i, Report::cpu_per_hb),
            col(i, Report::hb_rate),
            col(i, Report::hs_rate),
            col(i, Report::cpu_per_hs_us),
        );
    }
    let index = |name: &str| MODES.iter().position(|m| m.name == name);
    let mut lines = Vec::new();
    for (i, mode) in MODES.iter().enumerate() {
        for peer in mode.peers {
            let Some(j) = index(peer) else { continue };
            if reports[i].is_empty() || reports[j].is_empty() {
                continue;
            }
            for t in connbench::targets(mode.name, peer) {
                let ratio = col(i, t.metric.column()) / col(j, t.metric.column());
                lines.push(format!(
                    "| {} | {peer} | {} | {ratio:.3}x | {} {:.1}x | {} |",
                    mode.name,
                    t.metric.label(),
                    if t.at_most { "<=" } else { ">=" },
                    t.bound,
                    if t.met(ratio) { "met" } else { "MISSED" },
                ));
            }
        }
    }
    if lines.is_empty() {
        println!("\n(no wheelbeat mode ran: no ratios to show)");
        return;
    }
    println!("\n### ratios to the tokio peers (issues 10 and 11)\n");
    println!("| wheelbeat mode | peer | figure | ratio | target | verdict |");
    println!("|---|---|---|---:|---:|---|");
    for l in lines {
        println!("{l}");
    }
    // Handshakes per second depend on the client and on whatever else the machine runs; the
    // server's CPU per handshake does not, so it is shown beside them (no target).
    println!();
    for (i, mode) in MODES.iter().enumerate() {
        for peer in mode.peers {
            let Some(j) = index(peer) else { continue };
            if reports[i].is_empty() || reports[j].is_empty() {
                continue;
            }
            let f = Report::cpu_per_hs_us;
            println!(
                "- {}: server CPU per handshake cycle = {:.2}x {peer}'s (no target; handshakes/s \
                 also depends on the client and the machine's other load)",
                mode.name,
                col(i, f) / col(j, f),
            );
        }
    }
}
