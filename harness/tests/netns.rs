//! End-to-end: nodes in network namespaces of their own (`--netns`, and by default for a
//! system that needs them). Partitions cut links inside the namespaces while the harness
//! reaches every node from the root namespace; the run is valid; and whatever happens
//! (normal end, Ctrl-C) no namespace, link or node process of the run is left; a run that
//! was SIGKILLed loses its nodes at once and its namespaces at the next run. Without root,
//! `--netns` is refused naming root.
//!
//! Skipped, saying why, where namespaces cannot be made (not root, no `ip netns`). Runs are
//! serialized: each one starts a cluster on the same two cores.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{describe, faultline, leftovers, nemesis_events, node_binary, read_json, run, start};

static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Why network namespaces cannot be made here, if they cannot.
fn namespaces_missing() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("network namespaces need root".to_string());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run `ip` ({e}): install iproute2")),
    }
}

fn etcd_missing() -> Option<String> {
    match Command::new("etcd").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("etcd is not installed (apt-get install -y etcd-server)".to_string()),
    }
}

/// Checks that every node of the latest run lived in a namespace of its own, at an address
/// of the nodes' subnet, and that links were cut inside the namespaces.
fn assert_nodes_ran_in_namespaces(store: &Path) {
    let test = read_json(store.join("latest/test.json"));
    assert_eq!(test["options"]["netns"], true, "{test}");
    assert_eq!(test["partition_backend_used"], "netns", "{test}");
    let nodes = test["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for node in nodes {
        let namespace = node["namespace"].as_str().unwrap_or_default();
        assert!(namespace.starts_with("faultline-"), "{node}");
        let ip = node["ip"].as_str().unwrap();
        assert!(
            ip.starts_with("198.18.") || ip.starts_with("198.19."),
            "{node}"
        );
        assert!(
            node["client_addr"].as_str().unwrap().starts_with(ip),
            "{node}"
        );
    }
}

#[test]
fn the_bundled_node_in_namespaces_is_partitioned_stays_valid_and_leaves_nothing() {
    if let Some(reason) = namespaces_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let store = tempfile::tempdir().unwrap();
    let output = run(
        store.path(),
        &[
            "--node-binary",
            &node_binary().to_string_lossy(),
            "--netns",
            "--nemesis",
            "partition,partition-leader,kill",
            "--time-limit",
            "10s",
            "--nemesis-interval",
            "2s",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let results = read_json(store.path().join("latest/results.json"));
    assert_eq!(results["valid"], true, "{}", describe(&output));
    assert_nodes_ran_in_namespaces(store.path());

    let events = nemesis_events(store.path());
    let count = |f: &str| events.iter().filter(|(name, _)| name == f).count();
    assert!(count("start-partition") >= 2, "{events:?}");
    assert_eq!(
        count("start-partition"),
        count("stop-partition"),
        "{events:?}"
    );
    assert!(count("kill") > 0, "{events:?}");
    // The clients kept reaching the nodes through the partitions: the run did work.
    let history = std::fs::read_to_string(store.path().join("latest/history.jsonl")).unwrap();
    let acknowledged = history
        .lines()
        .filter(|line| line.contains(r#""type":"ok""#))
        .count();
    assert!(
        acknowledged > 100,
        "only {acknowledged} operations succeeded"
    );
}

#[test]
fn etcd_as_root_gets_namespaces_by_default_and_its_partitions_run() {
    if let Some(reason) = namespaces_missing().or_else(etcd_missing) {
        eprintln!("skipped: {reason}");
        return;
    }
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let store = tempfile::tempdir().unwrap();
    let output = run(store.path(), &["--system", "etcd", "--time-limit", "20s"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let results = read_json(store.path().join("latest/results.json"));
    assert_eq!(results["valid"], true, "{}", describe(&output));
    assert_nodes_ran_in_namespaces(store.path());

    // Only the faults that need the proxy are left out, saying why.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("leaving out partition"),
        "{}",
        describe(&output)
    );
    assert!(
        stderr.contains("leaving out slow, because") && stderr.contains("namespaces"),
        "{}",
        describe(&output)
    );
    let events = nemesis_events(store.path());
    assert!(
        events.iter().any(|(f, _)| f == "start-partition"),
        "{events:?}"
    );
}

#[test]
fn ctrl_c_in_namespaces_leaves_no_namespace_link_or_process() {
    if let Some(reason) = namespaces_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let store = tempfile::tempdir().unwrap();
    let child = start(
        store.path(),
        &[
            "--node-binary",
            &node_binary().to_string_lossy(),
            "--netns",
            "--nemesis",
            "partition",
            "--time-limit",
            "60s",
            "--nemesis-interval",
            "1s",
        ],
    );
    let pid = child.id();
    // Interrupt once faults are under way.
    let history = store.path().join("latest/history.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&history)
        .unwrap_or_default()
        .contains("start-partition")
    {
        assert!(
            Instant::now() < deadline,
            "no partition started within 30 s"
        );
        sleep(Duration::from_millis(100));
    }
    let running = leftovers(pid, store.path());
    assert!(
        running
            .iter()
            .filter(|l| l.starts_with("namespace"))
            .count()
            >= 4
            && running.iter().filter(|l| l.starts_with("process")).count() >= 3,
        "expected the nodes to run in namespaces: {running:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        leftovers(pid, store.path()),
        Vec::<String>::new(),
        "left behind after Ctrl-C"
    );
}

#[test]
fn the_namespaces_of_a_killed_run_are_removed_by_the_next_run() {
    if let Some(reason) = namespaces_missing() {
        eprintln!("skipped: {reason}");
        return;
    }
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let node = node_binary().to_string_lossy().into_owned();
    let killed = tempfile::tempdir().unwrap();
    let mut child = start(
        killed.path(),
        &[
            "--node-binary",
            &node,
            "--netns",
            "--nemesis",
            "none",
            "--time-limit",
            "60s",
        ],
    );
    let pid = child.id();
    let history = killed.path().join("latest/history.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !history.exists() {
        assert!(
            Instant::now() < deadline,
            "the run did not start within 30 s"
        );
        sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Its nodes die with it (parent-death signal); its namespaces stay, for the next run.
    let left = eventually(|| {
        let left = leftovers(pid, killed.path());
        (!left.iter().any(|l| l.starts_with("process"))).then_some(left)
    });
    assert!(
        left.iter().any(|l| l.starts_with("namespace")),
        "the killed run left no namespace to remove: {left:?}"
    );

    let next = tempfile::tempdir().unwrap();
    let args = [
        "--node-binary",
        &node,
        "--netns",
        "--nemesis",
        "none",
        "--time-limit",
        "2s",
    ];
    let output = run(next.path(), &args);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // A deleted namespace takes its veths with it a moment later.
    eventually(|| leftovers(pid, killed.path()).is_empty().then_some(()));
}

/// Waits up to 10 s for `done` to give a value, and returns it.
fn eventually<T>(mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(Instant::now() < deadline, "not within 10 s");
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn netns_without_root_is_refused_naming_root() {
    if !nix::unistd::Uid::effective().is_root() {
        // Then this process itself is the user without root.
        let store = tempfile::tempdir().unwrap();
        let output = run(store.path(), &["--netns", "--time-limit", "5s"]);
        assert_refused_for_root(&output);
        return;
    }
    let Some(setpriv) = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|path| Path::new(path).is_file())
    else {
        eprintln!("skipped: setpriv is not installed (util-linux), so no user to become");
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let output = Command::new(setpriv)
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(faultline())
        .args(["test", "--netns", "--time-limit", "5s", "--store"])
        .arg(store.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if output.status.code() == Some(127) || output.status.code() == Some(126) {
        eprintln!(
            "skipped: user nobody cannot run {}: {}",
            faultline().display(),
            describe(&output)
        );
        return;
    }
    assert_refused_for_root(&output);
    assert_eq!(
        std::fs::read_dir(store.path()).unwrap().count(),
        0,
        "a refused run stored something"
    );
}

fn assert_refused_for_root(output: &Output) {
    assert_eq!(output.status.code(), Some(3), "{}", describe(output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--netns needs root"),
        "{}",
        describe(output)
    );
}
