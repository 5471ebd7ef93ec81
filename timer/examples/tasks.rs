//! `cargo run --release -p wheelbeat-timer --example tasks`
//!
//! gtimer-style once / times / forever tasks firing on the real clock, with the time each run
//! was due and how late it started. Exits by itself after about 2.5 s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use wheelbeat_timer::service::{JobContext, Timer};

fn main() {
    // The timer logs a caught panic through `log`; show it, and keep the panic hook to one line.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    std::panic::set_hook(Box::new(|info| eprintln!("(panic hook) {info}")));

    let timer = Timer::builder()
        .workers(2)
        .build()
        .expect("spawn timer threads");
    let t0 = Instant::now();
    let report = Arc::new(move |name: &str, ctx: &JobContext<'_>| {
        let due = ctx.due() - t0;
        let late = ctx.started() - ctx.due();
        println!(
            "{:>9.3?}  {name:<8} run {:<2} (due {due:>9.3?}, late {late:>9.3?})",
            ctx.started() - t0,
            ctx.entry().runs(),
        );
    });

    let r = report.clone();
    timer.add_once(Duration::from_millis(700), move |ctx| r("once", ctx));

    let r = report.clone();
    timer.add_times(Duration::from_millis(300), 5, move |ctx| r("times(5)", ctx));

    let r = report.clone();
    let forever = timer.add(Duration::from_millis(500), move |ctx| r("forever", ctx));

    // A job that ends its own entry from inside (gtimer's `Exit`), after 3 runs.
    let r = report.clone();
    timer.add(Duration::from_millis(400), move |ctx| {
        r("exit@3", ctx);
        if ctx.entry().runs() == 3 {
            ctx.exit();
        }
    });

    // A panicking job is caught and counted; nothing else is affected.
    timer.add_once(Duration::from_millis(1_000), |_| {
        panic!("caught by the timer")
    });

    let (done_tx, done_rx) = bounded(1);
    timer.add_once(Duration::from_millis(2_500), move |_| {
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the last task fires");

    println!(
        "forever entry: {:?} after {} runs; timer: {:?}",
        forever.status(),
        forever.runs(),
        timer.stats()
    );
    timer.close();
}
