//! Micro-benchmarks of the reactor: cross-thread `run_in_loop` round trip
//! and timer insert/cancel with 100,000 timers.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use muduo::{EventLoop, EventLoopThread};
use std::sync::mpsc;
use std::time::Duration;

fn run_in_loop_round_trip(c: &mut Criterion) {
    let t = EventLoopThread::start("bench-loop", None).unwrap();
    let h = t.handle().clone();
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    c.bench_function("run_in_loop_round_trip", |b| {
        b.iter(|| {
            let tx = tx.clone();
            h.run_in_loop(move || tx.send(()).unwrap());
            rx.recv().unwrap();
        })
    });
}

fn timers_100k(c: &mut Criterion) {
    let lp = EventLoop::new().unwrap();
    c.bench_function("timer_insert_cancel_100k", |b| {
        b.iter_batched(
            || (),
            |()| {
                let ids: Vec<_> = (0..100_000u64)
                    .map(|i| lp.run_after_local(Duration::from_millis(1000 + i % 5000), || {}))
                    .collect();
                for id in ids {
                    lp.cancel(id);
                }
            },
            BatchSize::PerIteration,
        )
    });
    c.bench_function("timer_insert_100k_then_fire", |b| {
        b.iter(|| {
            for _ in 0..100_000 {
                lp.run_after_local(Duration::ZERO, || {});
            }
            let h = lp.handle();
            lp.run_after(Duration::ZERO, move || h.quit());
            lp.run().unwrap();
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = run_in_loop_round_trip, timers_100k
}
criterion_main!(benches);
