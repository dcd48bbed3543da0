//! Checks each group of Porcupine's test histories (`checker/testdata/porcupine`) several
//! times and prints the median wall time per group beside Porcupine's own time on this machine
//! (from the README there). Parsing is timed apart: Porcupine's figures are for checking.
//!
//! `cargo bench -p faultline-checker --bench porcupine` (runs: `BENCH_RUNS`, default 7)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_checker::{
    Budget, CheckOptions, History, ModelKind, Verdict, check_history, read_history,
};

/// Histories checked one after another, and the time Porcupine takes for them.
struct Group {
    name: &'static str,
    porcupine: Duration,
    histories: Vec<(History, Verdict)>,
    model: ModelKind,
    options: CheckOptions,
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/porcupine");
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).unwrap_or_else(|error| {
        panic!(
            "the Porcupine test data is missing: cannot read {}: {error}",
            dir.join("EXPECTED.tsv").display()
        )
    });
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(7);

    let parse_started = Instant::now();
    let etcd: Vec<(History, Verdict)> = expected
        .lines()
        .filter(|line| line.starts_with("jepsen/"))
        .map(|line| {
            let mut fields = line.split('\t');
            let file = fields.next().unwrap_or_default();
            let verdict = match fields.nth(1) {
                Some("true") => Verdict::Valid,
                _ => Verdict::Invalid,
            };
            (read(&dir, file), verdict)
        })
        .collect();
    let parse_time = parse_started.elapsed();

    let per_key = CheckOptions::default();
    let groups = [
        Group {
            name: "102 etcd logs, one after another",
            porcupine: Duration::from_millis(310),
            histories: etcd,
            model: ModelKind::CasRegister,
            options: per_key.clone(),
        },
        Group {
            name: "kv/c50-ok.txt, per key",
            porcupine: Duration::from_millis(148),
            histories: vec![(read(&dir, "kv/c50-ok.txt"), Verdict::Valid)],
            model: ModelKind::Kv,
            options: per_key.clone(),
        },
        Group {
            name: "kv/c50-bad.txt, per key, stop at the first invalid key",
            porcupine: Duration::from_millis(40),
            histories: vec![(read(&dir, "kv/c50-bad.txt"), Verdict::Invalid)],
            model: ModelKind::Kv,
            options: CheckOptions {
                budget: Budget {
                    after_invalid: Some(Duration::ZERO),
                    ..Budget::default()
                },
                ..per_key.clone()
            },
        },
        Group {
            name: "kv/c10-ok.txt, as one partition",
            porcupine: Duration::from_millis(1580),
            histories: vec![(read(&dir, "kv/c10-ok.txt"), Verdict::Valid)],
            model: ModelKind::Kv,
            options: CheckOptions {
                whole: true,
                ..per_key
            },
        },
    ];

    println!(
        "parsing the 102 etcd logs: {:.1} ms (not included below)",
        millis(parse_time)
    );
    println!(
        "{:<56} {:>10} {:>21} {:>10} {:>7}",
        "group", "median", "min .. max", "Porcupine", "ratio"
    );
    for group in &groups {
        let mut times: Vec<Duration> = (0..runs).map(|_| time(group)).collect();
        times.sort();
        let median = times[times.len() / 2];
        println!(
            "{:<56} {:>7.1} ms {:>7.1} .. {:>7.1} ms {:>7.0} ms {:>6.2}x",
            group.name,
            millis(median),
            millis(times[0]),
            millis(times[times.len() - 1]),
            millis(group.porcupine),
            median.as_secs_f64() / group.porcupine.as_secs_f64(),
        );
    }
}

fn read(dir: &Path, file: &str) -> History {
    match read_history(&dir.join(file), None) {
        Ok((history, _)) => history,
        Err(error) => panic!("{file}: {error}"),
    }
}

/// One run over the group's histories, checking each verdict.
fn time(group: &Group) -> Duration {
    let started = Instant::now();
    for (history, expected) in &group.histories {
        let result = check_history(history, group.model, &group.options)
            .unwrap_or_else(|error| panic!("{}: {error}", group.name));
        assert_eq!(result.valid, *expected, "{}: wrong verdict", group.name);
    }
    started.elapsed()
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
