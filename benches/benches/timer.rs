//! Criterion benches: wheelbeat's `Wheel` beside every other contender, one group per workload.
//!
//! Run: `cargo bench -p wheelbeat-benches --bench timer` (about 9 minutes on 2 shared cores;
//! add a group name such as `-- mixed_10k` to run one group). Groups: `mixed_10k` and
//! `mixed_1M` (N uniform deadlines in [1, 60000] ms, a random half cancelled, 1 ms steps until
//! empty), `rearm_100k_x100` (the heartbeat pattern: 100k timers each pushed later 100 times,
//! then all fire), and `per_op_1M_{insert,cancel,expire}` (1M timers per iteration). Every
//! iteration checks its expiry count (see `wheelbeat_benches::workloads`). For one table with
//! ratios, measured interleaved, run the `compare` binary instead.

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main,
};
use std::time::Duration;
use wheelbeat_benches::contenders::*;
use wheelbeat_benches::workloads::{self, Mixed, PerOp, ReArm, SPAN_MS};

const SEED: u64 = 0x77_6865_656c;

fn mixed<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, w: &Mixed) {
    group.bench_function(C::NAME, |b| {
        b.iter_batched(
            || C::new(w.len()),
            |mut c| {
                w.run(&mut c);
                c // dropped outside the timed region
            },
            BatchSize::PerIteration,
        )
    });
}

fn rearm<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, w: &ReArm, n: usize) {
    group.bench_function(C::NAME, |b| {
        b.iter_batched(
            || C::new(n),
            |mut c| {
                w.run(&mut c);
                c
            },
            BatchSize::PerIteration,
        )
    });
}

fn insert<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, w: &PerOp) {
    let n = w.deadlines().len();
    group.bench_function(C::NAME, |b| {
        b.iter_batched(
            || C::new(n),
            |mut c| {
                let keys = workloads::insert_all(&mut c, w.deadlines());
                (c, keys)
            },
            BatchSize::PerIteration,
        )
    });
}

fn cancel<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, w: &PerOp) {
    let n = w.deadlines().len();
    group.bench_function(C::NAME, |b| {
        b.iter_batched(
            || {
                let mut c = C::new(n);
                let mut keys = workloads::insert_all(&mut c, w.deadlines());
                // Random order, as connections close; shuffled outside the timed part.
                fastrand::Rng::with_seed(SEED ^ 0xca9c).shuffle(&mut keys);
                (c, keys)
            },
            |(mut c, keys)| {
                workloads::cancel_all_in_order(&mut c, keys);
                c
            },
            BatchSize::PerIteration,
        )
    });
}

fn expire<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, w: &PerOp) {
    let n = w.deadlines().len();
    group.bench_function(C::NAME, |b| {
        b.iter_batched(
            || {
                let mut c = C::new(n);
                let keys = workloads::insert_all(&mut c, w.deadlines());
                workloads::release_all(&mut c, keys);
                c
            },
            |mut c| {
                workloads::step_until(&mut c, 0, SPAN_MS, n);
                c
            },
            BatchSize::PerIteration,
        )
    });
}

/// Settings for groups whose iterations take up to seconds: few samples, short windows, and
/// flat sampling (one iteration per sample instead of criterion's linear 1..=10, which made
/// each of these benchmarks run 55 iterations), so the whole file finishes in minutes.
fn one_million(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
}

fn bench_mixed(c: &mut Criterion) {
    let w = Mixed::new(10_000, SEED);
    let mut group = c.benchmark_group("mixed_10k");
    group.measurement_time(Duration::from_secs(3));
    mixed::<WheelbeatContender>(&mut group, &w);
    mixed::<HeapContender>(&mut group, &w);
    mixed::<PackedHeapContender>(&mut group, &w);
    mixed::<DelayQueueContender>(&mut group, &w);
    mixed::<SleepContender>(&mut group, &w);
    mixed::<NexusContender>(&mut group, &w);
    mixed::<HashWheelContender>(&mut group, &w);
    group.finish();

    let w = Mixed::new(1_000_000, SEED);
    let mut group = c.benchmark_group("mixed_1M");
    one_million(&mut group);
    mixed::<WheelbeatContender>(&mut group, &w);
    mixed::<HeapContender>(&mut group, &w);
    mixed::<PackedHeapContender>(&mut group, &w);
    mixed::<DelayQueueContender>(&mut group, &w);
    mixed::<SleepContender>(&mut group, &w);
    mixed::<NexusContender>(&mut group, &w);
    mixed::<HashWheelContender>(&mut group, &w);
    group.finish();
}

fn bench_rearm(c: &mut Criterion) {
    let n = 100_000;
    let w = ReArm::new(n, 100, SEED);
    let mut group = c.benchmark_group("rearm_100k_x100");
    one_million(&mut group);
    rearm::<WheelbeatContender>(&mut group, &w, n);
    rearm::<HeapContender>(&mut group, &w, n);
    rearm::<PackedHeapContender>(&mut group, &w, n);
    rearm::<DelayQueueContender>(&mut group, &w, n);
    rearm::<SleepContender>(&mut group, &w, n);
    rearm::<NexusContender>(&mut group, &w, n);
    rearm::<HashWheelContender>(&mut group, &w, n);
    group.finish();
}

fn bench_per_op(c: &mut Criterion) {
    let w = PerOp::new(1_000_000, SEED);
    type Phase = fn(&mut BenchmarkGroup<'_, WallTime>, &PerOp);
    let phases: [(&str, [Phase; 7]); 3] = [
        (
            "per_op_1M_insert",
            [
                insert::<WheelbeatContender>,
                insert::<HeapContender>,
                insert::<PackedHeapContender>,
                insert::<DelayQueueContender>,
                insert::<SleepContender>,
                insert::<NexusContender>,
                insert::<HashWheelContender>,
            ],
        ),
        (
            "per_op_1M_cancel",
            [
                cancel::<WheelbeatContender>,
                cancel::<HeapContender>,
                cancel::<PackedHeapContender>,
                cancel::<DelayQueueContender>,
                cancel::<SleepContender>,
                cancel::<NexusContender>,
                cancel::<HashWheelContender>,
            ],
        ),
        (
            "per_op_1M_expire",
            [
                expire::<WheelbeatContender>,
                expire::<HeapContender>,
                expire::<PackedHeapContender>,
                expire::<DelayQueueContender>,
                expire::<SleepContender>,
                expire::<NexusContender>,
                expire::<HashWheelContender>,
            ],
        ),
    ];
    for (name, contenders) in phases {
        let mut group = c.benchmark_group(name);
        one_million(&mut group);
        for bench in contenders {
            bench(&mut group, &w);
        }
        group.finish();
    }
}

criterion_group!(benches, bench_mixed, bench_rearm, bench_per_op);
criterion_main!(benches);
