//! The heartbeat loop against its floor (bare mio) and a tokio peer, in one run.
//!
//! Run: `cargo run --release -p wheelbeat-benches --bin loopbench -- --quick` (under a minute)
//! or without `--quick` for 4,000 pairs, longer windows and 3 rounds.
//!
//! Each mode runs in a child process of this binary (`--child MODE`), one after the other,
//! rotated each round; the table shows medians over rounds: round trips per second, CPU
//! nanoseconds per round trip (whole process, user + system), and resident / heap bytes per
//! connection pair (both ends), with ratios to the floor and to tokio. See
//! `wheelbeat_benches::loopbench` for what each mode does.

use clap::Parser;
use std::process::Command;
use std::time::Duration;
use wheelbeat_benches::alloc::Counting;
use wheelbeat_benches::loopbench::{
    self, MODES, Plan, Report, Running, floor, proc::Sample, tokio_peer, wheelbeat,
};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heartbeat round trips, CPU and memory: wheelbeat vs bare mio vs tokio.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// 2,000 pairs, 1 round, short windows: under a minute.
    #[arg(long)]
    quick: bool,
    /// Connection pairs per mode (two descriptors each; default 4,000, 2,000 with --quick).
    #[arg(long)]
    conns: Option<usize>,
    /// Rounds (each runs every mode once; default 3, 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Measurement window per mode (default 8s, 4s with --quick).
    #[arg(long, value_parser = wheelbeat_benches::parse_seconds)]
    window: Option<Duration>,
    /// Heartbeating before the window opens (default 2s, 1s with --quick).
    #[arg(long, value_parser = wheelbeat_benches::parse_seconds)]
    warmup: Option<Duration>,
    /// Heartbeat interval of the wheelbeat and tokio modes (default 1ms: flat out).
    #[arg(long, value_parser = wheelbeat_benches::parse_seconds)]
    interval: Option<Duration>,
    /// Print each mode's diagnostic counters.
    #[arg(long)]
    verbose: bool,
    /// Write SVG bar charts of the figures into this directory (e.g. `docs`).
    #[arg(long)]
    svg_dir: Option<std::path::PathBuf>,
    /// Run only the modes whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Internal: run one mode in this process and print its report as JSON.
    #[arg(long, hide = true)]
    child: Option<String>,
}

fn main() {
    let args = Args::parse();
    let plan = Plan {
        conns: args.conns.unwrap_or(if args.quick { 2_000 } else { 4_000 }),
        warmup: args
            .warmup
            .unwrap_or(Duration::from_secs(if args.quick { 1 } else { 2 })),
        window: args
            .window
            .unwrap_or(Duration::from_secs(if args.quick { 4 } else { 8 })),
        interval: args.interval.unwrap_or(Duration::from_millis(1)),
    };
    if let Some(mode) = &args.child {
        match child(mode, plan) {
            Ok(report) => println!("{}", serde_json::to_string(&report).expect("a report")),
            Err(e) => {
                eprintln!("loopbench child {mode}: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
    let modes: Vec<&str> = MODES
        .iter()
        .copied()
        .filter(|m| args.only.as_deref().is_none_or(|o| m.contains(o)))
        .collect();
    println!(
        "# loopbench: {} pairs, interval {:?}, warm-up {:?}, window {:?}, {rounds} round(s)",
        plan.conns, plan.interval, plan.warmup, plan.window
    );
    let mut reports: Vec<Vec<Report>> = vec![Vec::new(); MODES.len()];
    for round in 0..rounds {
        for k in 0..modes.len() {
            let mode = modes[(k + round) % modes.len()];
            match spawn_child(mode, plan) {
                Ok(r) => {
                    println!(
                        "round {round} {mode:>9}: {:>9.0} rt/s  {:>6.0} ns cpu/rt  {:>6.0} B rss/pair  {:>6.0} B heap/pair  failures {}",
                        r.rate(),
                        r.cpu_per_rt(),
                        r.rss_per_conn(),
                        r.heap_per_conn(),
                        r.failures
                    );
                    if args.verbose && !r.detail.is_empty() {
                        println!("    {}", r.detail);
                    }
                    let i = MODES.iter().position(|m| *m == mode).expect("a mode");
                    reports[i].push(r);
                }
                Err(e) => println!("round {round} {mode:>9}: FAILED: {e}"),
            }
        }
    }
    summary(&reports, plan, args.svg_dir.as_deref());
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

fn summary(reports: &[Vec<Report>], plan: Plan, svg_dir: Option<&std::path::Path>) {
    let col = |i: usize, f: fn(&Report) -> f64| median(reports[i].iter().map(f).collect());
    let (floor, wb, tokio) = (0, 1, 2);
    println!(
        "\n| mode | round trips/s | x floor | CPU ns per heartbeat | x tokio | RSS B per pair | x tokio | heap B per pair | x tokio | failures |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, mode) in MODES.iter().enumerate() {
        let rate = col(i, Report::rate);
        let cpu = col(i, Report::cpu_per_rt);
        let rss = col(i, Report::rss_per_conn);
        let heap = col(i, Report::heap_per_conn);
        let failures: u64 = reports[i].iter().map(|r| r.failures).sum();
        println!(
            "| {mode} | {rate:.0} | {:.2} | {cpu:.0} | {:.2} | {rss:.0} | {:.2} | {heap:.0} | {:.2} | {failures} |",
            rate / col(floor, Report::rate),
            cpu / col(tokio, Report::cpu_per_rt),
            rss / col(tokio, Report::rss_per_conn),
            heap / col(tokio, Report::heap_per_conn),
        );
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let r = col(wb, Report::rate) / col(floor, Report::rate);
    let c = col(wb, Report::cpu_per_rt) / col(tokio, Report::cpu_per_rt);
    let m = col(wb, Report::rss_per_conn) / col(tokio, Report::rss_per_conn);
    println!("\n### targets (issue 5)\n");
    println!(
        "- wheelbeat round trips/s = {r:.2}x the floor (target >= 0.9): {}",
        verdict(r >= 0.9)
    );
    println!(
        "- wheelbeat CPU per heartbeat = {c:.2}x tokio (target <= 0.7): {}",
        verdict(c <= 0.7)
    );
    println!(
        "- wheelbeat RSS per connection = {m:.2}x tokio (target <= 0.5): {}",
        verdict(m <= 0.5)
    );
    if let Some(dir) = svg_dir {
        let ms = plan.interval.as_secs_f64() * 1e3;
        type Column = fn(&Report) -> f64;
        let charts: [(String, &str, &str, Column); 3] = [
            (
                format!("loop-rate-{ms}ms.svg"),
                "heartbeat round trips per second (higher is better)",
                "rt/s",
                Report::rate,
            ),
            (
                format!("loop-cpu-{ms}ms.svg"),
                "CPU ns per heartbeat round trip (lower is better)",
                "ns",
                Report::cpu_per_rt,
            ),
            (
                format!("loop-rss-{ms}ms.svg"),
                "resident bytes per connection pair (lower is better)",
                "B",
                Report::rss_per_conn,
            ),
        ];
        for (file, title, unit, f) in charts {
            let title = format!("{title}, {} pairs, interval {ms} ms", plan.conns);
            let data: Vec<(&str, f64)> = MODES
                .iter()
                .enumerate()
                .map(|(i, m)| (*m, col(i, f)))
                .collect();
            let path = dir.join(file);
            let svg = wheelbeat_benches::svg::bar_chart(&title, unit, &data);
            match std::fs::write(&path, svg) {
                Ok(()) => println!("wrote {}", path.display()),
                Err(e) => eprintln!("cannot write {}: {e}", path.display()),
            }
        }
    }
}

fn spawn_child(mode: &str, plan: Plan) -> Result<Report, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(["--child", mode, "--conns", &plan.conns.to_string()])
        .args(["--warmup", &format!("{}s", plan.warmup.as_secs_f64())])
        .args(["--window", &format!("{}s", plan.window.as_secs_f64())])
        .args(["--interval", &format!("{}s", plan.interval.as_secs_f64())])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().ok_or("no report")?;
    serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))
}

/// Runs one mode in this process.
fn child(mode: &str, plan: Plan) -> Result<Report, String> {
    // Two descriptors per pair plus a few; the hard limit is what we may use.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let ready_limit = Duration::from_secs(60);
    let before = Sample::now();
    let n = plan.conns;
    let run = |r: &dyn Running, ready: &dyn Fn() -> bool| -> Result<Report, String> {
        if !loopbench::wait_until(ready_limit, ready) {
            return Err(format!(
                "{mode}: connections not all up within {ready_limit:?}"
            ));
        }
        Ok(loopbench::measure(mode, plan, before, r))
    };
    match mode {
        "floor" => {
            let f = floor::start(n).map_err(|e| e.to_string())?;
            run(&f, &|| f.round_trips() >= n as u64)
        }
        "wheelbeat" => {
            let w = wheelbeat::start(n, plan.interval).map_err(|e| e.to_string())?;
            run(&w, &|| w.connected() >= n)
        }
        "tokio" => {
            let t = tokio_peer::start(n, plan.interval).map_err(|e| e.to_string())?;
            run(&t, &|| t.connected() >= n)
        }
        other => Err(format!("unknown mode {other}")),
    }
}
