//! List-append histories shaped like the harness's (20 clients, about 100 operations a key,
//! half of them appends, with many overlapping and many `info`), generated from a real
//! sequential run, so every one is valid. Prints, per shape, the median of the most appends
//! in flight at once, how many histories the check decided within the budget, and the median
//! and slowest check times.
//!
//! `cargo bench -p faultline-checker --bench list_append` (histories per shape:
//! `BENCH_SEEDS`, default 20; budget per history in seconds: `BENCH_TIMEOUT`, default 10)

use std::time::Duration;

use faultline_checker::generate::{Workload, list_append_history};
use faultline_checker::{
    Budget, CheckOptions, EventType, History, ModelKind, Process, Verdict, check_history,
};

fn main() {
    let seeds: u64 = env_number("BENCH_SEEDS").unwrap_or(20);
    let timeout = Duration::from_secs(env_number("BENCH_TIMEOUT").unwrap_or(10));
    let harness_like = Workload {
        operations: 100,
        keys: 1,
        processes: 20,
        info_rate: 0.2,
        fail_rate: 0.05,
        stretch: 100,
        ..Workload::default()
    };
    let shapes = [
        ("1 key, 100 ops, 20% info", harness_like.clone()),
        (
            "1 key, 100 ops, 40% info, longer intervals",
            Workload {
                info_rate: 0.4,
                stretch: 300,
                ..harness_like.clone()
            },
        ),
        (
            "10 keys, 1000 ops, 20% info",
            Workload {
                operations: 1000,
                keys: 10,
                ..harness_like
            },
        ),
    ];
    let options = CheckOptions {
        budget: Budget {
            timeout: Some(timeout),
            ..Budget::default()
        },
        ..CheckOptions::default()
    };
    // Starting the thread pool is not part of any check.
    check_history(
        &list_append_history(&shapes[0].1),
        ModelKind::ListAppend,
        &options,
    )
    .expect("a generated history reads");
    println!(
        "{:<44} {:>8} {:>9} {:>12} {:>12}",
        "shape", "overlap", "decided", "median", "slowest"
    );
    for (name, shape) in shapes {
        let mut times = Vec::new();
        let mut overlaps = Vec::new();
        let mut decided = 0;
        for seed in 0..seeds {
            let history = list_append_history(&Workload {
                seed,
                ..shape.clone()
            });
            overlaps.push(most_appends_in_flight(&history));
            let result = check_history(&history, ModelKind::ListAppend, &options)
                .expect("a generated history reads");
            assert_ne!(
                result.valid,
                Verdict::Invalid,
                "a generated history is valid"
            );
            decided += usize::from(result.valid == Verdict::Valid);
            times.push(result.seconds);
        }
        times.sort_by(f64::total_cmp);
        overlaps.sort();
        println!(
            "{name:<44} {:>8} {:>5}/{seeds:<3} {:>9.2} ms {:>9.2} ms",
            overlaps[overlaps.len() / 2],
            decided,
            times[times.len() / 2] * 1000.0,
            times[times.len() - 1] * 1000.0,
        );
    }
}

/// The most appends in flight at one instant (an `info` one until its completion event).
fn most_appends_in_flight(history: &History) -> usize {
    let mut in_flight: Vec<Process> = Vec::new();
    let mut most = 0;
    for event in history.events().iter().filter(|event| event.f == "append") {
        if event.kind == EventType::Invoke {
            in_flight.push(event.process);
            most = most.max(in_flight.len());
        } else {
            in_flight.retain(|process| *process != event.process);
        }
    }
    most
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
}
