//! A large valid history, checked the way `faultline check` would: 10,000,000 operations over
//! 10,000 keys by 20 processes, 1% of them `info`, generated from a real sequential run of a
//! compare-and-set register per key. Prints the time to read and to check it, and the peak
//! memory of the checking process (a child, so that generating does not count), beside the
//! targets: under 30 s and under 4 GiB on a 2-core machine.
//!
//! `cargo bench -p faultline-checker --bench large_history` (size: `BENCH_OPERATIONS`,
//! `BENCH_KEYS`)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use faultline_checker::generate::{Workload, cas_register_history};
use faultline_checker::{CheckOptions, Format, ModelKind, Verdict, check_history, read_history};

/// Set in the child process: the history file to check.
const CHILD: &str = "FAULTLINE_BENCH_CHECK";

fn main() {
    match std::env::var_os(CHILD) {
        Some(path) => check(Path::new(&path)),
        None => generate_then_check(),
    }
}

fn generate_then_check() {
    let operations = env_number("BENCH_OPERATIONS").unwrap_or(10_000_000);
    let workload = Workload {
        operations,
        keys: env_number("BENCH_KEYS").unwrap_or(10_000),
        processes: 20,
        info_rate: 0.01,
        fail_rate: 0.01,
        seed: 1,
        ..Workload::default()
    };
    let started = Instant::now();
    let history = cas_register_history(&workload);
    let path: PathBuf =
        std::env::temp_dir().join(format!("faultline-large-{}.jsonl", std::process::id()));
    let file = std::fs::File::create(&path).expect("a temporary file");
    history
        .write_jsonl(std::io::BufWriter::new(file))
        .expect("writing the history");
    drop(history);
    println!(
        "generated {operations} operations over {} keys by {} processes ({:.0}% info) in {:.2} s: {}",
        workload.keys,
        workload.processes,
        workload.info_rate * 100.0,
        started.elapsed().as_secs_f64(),
        path.display()
    );

    let status = Command::new(std::env::current_exe().expect("this benchmark's path"))
        .env(CHILD, &path)
        .status()
        .expect("running the check");
    let _ = std::fs::remove_file(&path);
    assert!(status.success(), "the check failed: {status}");
}

/// A whole number from the environment variable `name`, if set.
fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a whole number")),
    )
}

/// Reads and checks the history, then prints the times and the peak memory of this process.
fn check(path: &Path) {
    let started = Instant::now();
    let (history, _) = read_history(path, Some(Format::Jsonl)).expect("reading the history");
    let read = started.elapsed();
    let result = check_history(&history, ModelKind::CasRegister, &CheckOptions::default())
        .expect("checking the history");
    let total = started.elapsed();
    assert_eq!(result.valid, Verdict::Valid, "a generated history is valid");
    println!(
        "read {:.2} s + check {:.2} s = {:.2} s for {} operations, {} keys: {}",
        read.as_secs_f64(),
        (total - read).as_secs_f64(),
        total.as_secs_f64(),
        result.operations,
        result.keys.len(),
        result.valid
    );
    println!(
        "peak memory (VmHWM) of the checking process: {} (targets: under 30 s, under 4096 MiB)",
        peak_memory()
    );
}

/// The high-water mark of this process's resident memory, from /proc/self/status.
fn peak_memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .map(|kib| {
            let kib: f64 = kib
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0.0);
            format!("{:.0} MiB", kib / 1024.0)
        })
        .unwrap_or_else(|| "unknown (no /proc/self/status)".into())
}
