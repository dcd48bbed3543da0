//! What the end-to-end tests share: running `faultline test` as a user does, and checking
//! that a run left nothing behind and what its run directory holds.

#![allow(dead_code, reason = "each test file uses part of it")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The harness binary under test.
pub fn faultline() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
}

/// `faultline-node`, built next to `faultline` by `cargo test --workspace` (or `cargo build`).
pub fn node_binary() -> PathBuf {
    let path = faultline().with_file_name("faultline-node");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build --release -p faultline-node` (cargo test \
         --workspace does)",
        path.display()
    );
    path
}

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// `faultline test --store STORE ARGS...` with its output captured, not yet waited for.
pub fn start(store: &Path, args: &[&str]) -> Child {
    Command::new(faultline())
        .arg("test")
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `faultline test --store STORE ARGS...` to the end and checks that it left nothing
/// behind (see [`leftovers`]).
pub fn run(store: &Path, args: &[&str]) -> Output {
    let child = start(store, args);
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        leftovers(pid, store),
        Vec::<String>::new(),
        "left behind; {}",
        describe(&output)
    );
    output
}

/// Whatever the harness process `pid`, whose store is `store`, could have left: processes
/// and mounts that mention the store (its nodes, their sidecars, their power-loss disks),
/// its iptables chains (`FAULTLINE-<pid>-*`), its namespaces (`/run/netns/faultline-<pid>-*`)
/// and its link in the root namespace (`fl<pid>-*`). Only what is the run's own: other runs
/// on the machine may hold theirs.
pub fn leftovers(pid: u32, store: &Path) -> Vec<String> {
    let store = store.to_string_lossy();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(store.as_ref()) {
            found.push(format!(
                "process {}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    found.extend(
        mounts
            .lines()
            .filter(|line| line.contains(store.as_ref()))
            .map(|line| format!("mount: {line}")),
    );
    let names = |dir: &str, prefix: &str, what: &str| -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(prefix))
            .map(|name| format!("{what} {name}"))
            .collect()
    };
    if let Ok(out) = Command::new("iptables").args(["-w", "-S"]).output() {
        let chain = format!("FAULTLINE-{pid}-");
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|line| line.contains(&chain))
                .map(|line| format!("iptables: {line}")),
        );
    }
    found.extend(names(
        "/run/netns",
        &format!("faultline-{pid}-"),
        "namespace",
    ));
    found.extend(names("/sys/class/net", &format!("fl{pid}-"), "link"));
    found
}

/// A run's exit code and output, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn read_json(path: PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The nemesis events of the latest run in `store`, as `(f, value)`.
pub fn nemesis_events(store: &Path) -> Vec<(String, Value)> {
    std::fs::read_to_string(store.join("latest/history.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| event["process"] == "nemesis")
        .map(|event| {
            (
                event["f"].as_str().unwrap().to_owned(),
                event["value"].clone(),
            )
        })
        .collect()
}

/// libfaketime's files in /dev/shm, by name: what a node under it leaves there if it is killed
/// and nothing cleans up after it (hosts in namespaces share this machine's).
pub fn faketime_leftovers() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains("faketime"))
                .collect()
        })
        .unwrap_or_default()
}
