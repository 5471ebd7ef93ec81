//! Side-by-side timer comparison: every contender, every workload, one process.
//!
//! Run: `cargo run --release -p wheelbeat-benches --bin compare -- --quick` (under a minute)
//! or without `--quick` for the full sizes and more rounds.
//!
//! The machines this runs on are shared and noisy, so a figure only counts beside its
//! alternative measured in the same run: every round runs each contender once, in an order
//! rotated each round, and the table shows each contender's median over the rounds and its
//! ratio to wheelbeat's median (`x wheelbeat` > 1 means slower than wheelbeat). Bytes per
//! pending timer come from a counting global allocator. The last lines check issue 5's
//! targets.

use clap::Parser;
use std::time::{Duration, Instant};
use wheelbeat_benches::alloc::Counting;
use wheelbeat_benches::contenders::*;
use wheelbeat_benches::workloads::{self, Mixed, PerOp, ReArm};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Compare wheelbeat's timer wheel with the timers users would otherwise pick.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Fewer rounds and a smaller re-arm workload (20k x 100): finishes in under a minute.
    #[arg(long)]
    quick: bool,
    /// Rounds per workload (default 3 with --quick, 5 otherwise).
    #[arg(long)]
    rounds: Option<usize>,
    /// Timers in the large mixed and per-operation workloads (default 1,000,000).
    #[arg(long)]
    big: Option<usize>,
    /// Run only the contenders whose name contains one of these (case-insensitive,
    /// comma-separated: `--only wheel,heap`), e.g. for `perf record`; the others show as NaN.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Run only the workloads whose name contains this: `mixed`, `rearm`, `per-op`, `bytes`.
    #[arg(long)]
    workload: Option<String>,
    /// Write SVG bar charts of the main figures into this directory (e.g. `docs`).
    #[arg(long)]
    svg_dir: Option<std::path::PathBuf>,
    /// Seed of the generated deadlines.
    #[arg(long, default_value_t = 0x77_6865_656c)]
    seed: u64,
}

/// One measured quantity per contender, in [`NAMES`] order, over rounds.
struct Samples {
    per_contender: Vec<Vec<f64>>,
}

impl Samples {
    fn new() -> Self {
        Samples {
            per_contender: vec![Vec::new(); NAMES.len()],
        }
    }

    fn median(&self, i: usize) -> f64 {
        let mut v = self.per_contender[i].clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        let mid = v.len() / 2;
        if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        }
    }
}

/// Runs `run(i)` for every contender index `i`, `rounds` times, rotating the start each
/// round so no contender always runs first (warm caches) or last.
fn interleave(
    rounds: usize,
    only: &[String],
    mut run: impl FnMut(usize) -> Vec<f64>,
) -> Vec<Samples> {
    let mut out: Vec<Samples> = Vec::new();
    for round in 0..rounds {
        for k in 0..NAMES.len() {
            let i = (k + round) % NAMES.len();
            let name = NAMES[i].to_lowercase();
            if !only.is_empty() && !only.iter().any(|o| name.contains(&o.to_lowercase())) {
                continue;
            }
            let values = run(i);
            if out.len() < values.len() {
                out.resize_with(values.len(), Samples::new);
            }
            for (samples, v) in out.iter_mut().zip(values) {
                samples.per_contender[i].push(v);
            }
        }
    }
    out
}

/// Dispatches contender index `i` (in [`NAMES`] order) to a generic function.
macro_rules! dispatch {
    ($i:expr, $f:ident ( $($arg:expr),* )) => {
        match $i {
            0 => $f::<WheelbeatContender>($($arg),*),
            1 => $f::<HeapContender>($($arg),*),
            2 => $f::<PackedHeapContender>($($arg),*),
            3 => $f::<DelayQueueContender>($($arg),*),
            4 => $f::<SleepContender>($($arg),*),
            5 => $f::<NexusContender>($($arg),*),
            _ => $f::<HashWheelContender>($($arg),*),
        }
    };
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn run_mixed<C: Contender>(w: &Mixed) -> Vec<f64> {
    let mut c = C::new(w.len());
    let t = Instant::now();
    w.run(&mut c);
    let total = t.elapsed();
    drop(c);
    vec![ms(total)]
}

fn run_rearm<C: Contender>(w: &ReArm, n: usize) -> Vec<f64> {
    let mut c = C::new(n);
    let (rounds, total) = w.run(&mut c);
    drop(c);
    vec![rounds.as_secs_f64() * 1e9 / w.resets() as f64, ms(total)]
}

fn run_per_op<C: Contender>(w: &PerOp, n: usize) -> Vec<f64> {
    let mut c = C::new(n);
    let t = w.run(&mut c);
    drop(c);
    let per = |d: Duration| d.as_secs_f64() * 1e9 / n as f64;
    vec![per(t.insert), per(t.cancel), per(t.expire)]
}

fn bytes<C: Contender>(n: usize, seed: u64) -> Vec<f64> {
    vec![workloads::bytes_per_timer::<C>(n, seed)]
}

/// Prints one markdown table: a row per contender, per column the median and the ratio
/// to wheelbeat's median.
fn table(title: &str, columns: &[&str], samples: &[Samples]) {
    println!("\n### {title}\n");
    let mut header = String::from("| contender |");
    let mut rule = String::from("|---|");
    for c in columns {
        header.push_str(&format!(" {c} | x wheelbeat |"));
        rule.push_str("---:|---:|");
    }
    println!("{header}\n{rule}");
    for (i, name) in NAMES.iter().enumerate() {
        let mut row = format!("| {name} |");
        for s in samples {
            let m = s.median(i);
            let base = s.median(0);
            row.push_str(&format!(" {} | {:.2} |", fmt(m), m / base));
        }
        println!("{row}");
    }
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn main() {
    let args = Args::parse();
    let rounds = args.rounds.unwrap_or(if args.quick { 3 } else { 5 });
    let big = args.big.unwrap_or(1_000_000);
    let only = args.only.as_slice();
    let rearm_n = if args.quick { 20_000 } else { 100_000 };
    let rearm_rounds = 100;
    let seed = args.seed;
    let started = Instant::now();

    println!(
        "# compare: {} rounds, big N = {big}, re-arm {rearm_n} x {rearm_rounds}, seed {seed:#x}",
        rounds
    );
    println!("(medians over rounds; `x wheelbeat` = contender / wheelbeat, > 1 is slower)");

    let wants = |name: &str| args.workload.as_deref().is_none_or(|w| name.contains(w));
    if !wants("mixed") || !wants("rearm") || !wants("per-op") || !wants("bytes") {
        return run_some(&args, rounds, big, rearm_n, rearm_rounds);
    }

    let small = Mixed::new(10_000, seed);
    let mixed_small = interleave(rounds, only, |i| dispatch!(i, run_mixed(&small)));
    table("mixed, N = 10,000 (ms total)", &["ms"], &mixed_small);

    let large = Mixed::new(big, seed);
    let mixed_large = interleave(rounds, only, |i| dispatch!(i, run_mixed(&large)));
    table(
        &format!("mixed, N = {big} (ms total)"),
        &["ms"],
        &mixed_large,
    );

    let rearm = ReArm::new(rearm_n, rearm_rounds, seed);
    let rearm_s = interleave(rounds, only, |i| dispatch!(i, run_rearm(&rearm, rearm_n)));
    table(
        &format!("re-arm heavy: {rearm_n} timers x {rearm_rounds} later-resets"),
        &["ns per reset", "ms total"],
        &rearm_s,
    );

    let per_op = PerOp::new(big, seed);
    let per_op_s = interleave(rounds, only, |i| dispatch!(i, run_per_op(&per_op, big)));
    table(
        &format!("per operation, N = {big} (ns per timer)"),
        &["insert", "cancel", "expire"],
        &per_op_s,
    );

    let mem = interleave(1, only, |i| dispatch!(i, bytes(big, seed)));
    table(
        &format!("heap bytes per pending timer (8-byte payload), N = {big}"),
        &["bytes"],
        &mem,
    );
    let unit = wheel_unit_bytes(big, seed);
    println!("\nwheelbeat `Wheel<()>` (no payload): {unit:.1} bytes per pending timer");

    let idle = workloads::tokio_idle_steps(workloads::SPAN_MS);
    println!(
        "tokio idle step (block_on of advance(1 ms) on an empty paused runtime): {:.1} ms per {} steps, included in both tokio rows",
        ms(idle),
        workloads::SPAN_MS
    );

    println!("\n### targets (issues 5 and 13; cancels in random order)\n");
    let w = mixed_large[0].median(0);
    let heap = mixed_large[0].median(1);
    let packed = mixed_large[0].median(2);
    let dq = mixed_large[0].median(3);
    println!(
        "- mixed {big}: wheelbeat / BinaryHeap = {:.3} (issue 5 target <= 0.5): {}",
        w / heap,
        verdict(w / heap <= 0.5)
    );
    println!(
        "- mixed {big}: wheelbeat / packed heap = {:.3} (issue 13 target <= 0.5): {}",
        w / packed,
        verdict(w / packed <= 0.5)
    );
    println!(
        "- mixed {big}: wheelbeat / DelayQueue = {:.3} (issue 13 target <= 0.1): {}",
        w / dq,
        verdict(w / dq <= 0.1)
    );
    let reset_speedup = rearm_s[0].median(3) / rearm_s[0].median(0);
    println!(
        "- re-arm: DelayQueue::reset / wheelbeat reset = {reset_speedup:.1}x (target >= 10x): {}",
        verdict(reset_speedup >= 10.0)
    );
    let wb_bytes = mem[0].median(0);
    println!(
        "- bytes per pending timer: {wb_bytes:.1} with a u64 payload, {unit:.1} without (target <= 32 excluding T): {}",
        verdict(unit <= 32.0)
    );
    if let Some(dir) = &args.svg_dir {
        let bars = |s: &Samples| -> Vec<(&str, f64)> {
            NAMES
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, s.median(i)))
                .collect()
        };
        let charts = [
            (
                "timer-mixed-1m.svg",
                format!("mixed workload, N = {big}: total time (lower is better)"),
                "ms",
                bars(&mixed_large[0]),
            ),
            (
                "timer-rearm.svg",
                format!("re-arm heavy, {rearm_n} x {rearm_rounds}: time per later-reset"),
                "ns",
                bars(&rearm_s[0]),
            ),
            (
                "timer-bytes.svg",
                format!("heap bytes per pending timer (u64 payload), N = {big}"),
                "B",
                bars(&mem[0]),
            ),
        ];
        for (file, title, unit, data) in charts {
            let path = dir.join(file);
            match std::fs::write(
                &path,
                wheelbeat_benches::svg::bar_chart(&title, unit, &data),
            ) {
                Ok(()) => println!("wrote {}", path.display()),
                Err(e) => eprintln!("cannot write {}: {e}", path.display()),
            }
        }
    }
    println!("\n(finished in {:.1} s)", started.elapsed().as_secs_f64());
}

/// `--workload`: run one workload's table only (for profiling), no target summary.
fn run_some(args: &Args, rounds: usize, big: usize, rearm_n: usize, rearm_rounds: u64) {
    let only = args.only.as_slice();
    let seed = args.seed;
    let w = args.workload.as_deref().unwrap_or_default();
    if "mixed".contains(w) {
        let large = Mixed::new(big, seed);
        let s = interleave(rounds, only, |i| dispatch!(i, run_mixed(&large)));
        table(&format!("mixed, N = {big} (ms total)"), &["ms"], &s);
    }
    if "rearm".contains(w) {
        let rearm = ReArm::new(rearm_n, rearm_rounds, seed);
        let s = interleave(rounds, only, |i| dispatch!(i, run_rearm(&rearm, rearm_n)));
        table("re-arm heavy", &["ns per reset", "ms total"], &s);
    }
    if "per-op".contains(w) {
        let per_op = PerOp::new(big, seed);
        let s = interleave(rounds, only, |i| dispatch!(i, run_per_op(&per_op, big)));
        table(
            "per operation (ns per timer)",
            &["insert", "cancel", "expire"],
            &s,
        );
    }
    if "bytes".contains(w) {
        let s = interleave(1, only, |i| dispatch!(i, bytes(big, seed)));
        table("heap bytes per pending timer", &["bytes"], &s);
    }
}

/// Bytes per pending timer of a `Wheel<()>`, the figure the crate documents.
fn wheel_unit_bytes(n: usize, seed: u64) -> f64 {
    let deadlines = workloads::uniform_deadlines(n, seed);
    let mut keys = Vec::with_capacity(n);
    let before = wheelbeat_benches::alloc::live_bytes();
    let mut wheel = wheelbeat_timer::Wheel::<()>::with_capacity(n);
    for &d in &deadlines {
        keys.push(wheel.insert(d, ()));
    }
    let after = wheelbeat_benches::alloc::live_bytes();
    drop(wheel);
    (after.saturating_sub(before)) as f64 / n as f64
}
