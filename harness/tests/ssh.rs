//! End-to-end: the harness drives hosts over SSH, here sshds in network namespaces on this
//! machine (`common/sshd.rs`), as it would drive remote machines. `faultline hosts` finds
//! ready hosts ready and measures their clocks; an unreachable host, and a host that refuses
//! the login, are exit 3 naming the host and what to fix, within the connect timeout.
//! `faultline test --hosts` runs the bundled node on the hosts: valid under the default mix
//! (power loss on the hosts' own disks included), zoo bugs caught, every node's directory
//! collected and every host left clean; the node installed there, if asked; etcd, installed on
//! the hosts, both with `--system etcd` and from a system file whose `[hosts]` names them; and
//! what a killed harness left refuses the next run until `faultline hosts --clean`.
//!
//! Root only, with openssh-server installed (`.ci/run` installs it); skipped otherwise,
//! saying why. Checks of the command line itself run everywhere.

mod common;
#[path = "common/sshd.rs"]
mod sshd;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{describe, faultline, read_json};
use sshd::{SshHosts, skipped};

/// The hosts of every test share this machine's disk and processes, so one run's directory
/// under /var/tmp/faultline is in every host's: runs on hosts hold this for reading, and
/// `faultline hosts --clean`, which kills every node under that directory, for writing.
static RUNS_DIR: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// `faultline hosts ARGS...`, to the end.
fn hosts_command(args: &[&str]) -> Output {
    Command::new(faultline())
        .arg("hosts")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn ready_hosts_are_named_with_their_clocks_offset() {
    if skipped() {
        return;
    }
    if !Path::new("/usr/sbin/iptables").exists() && !Path::new("/sbin/iptables").exists() {
        eprintln!("skipped: the hosts need iptables (apt-get install iptables)");
        return;
    }
    let hosts = SshHosts::start(2, &[]).await;
    let config = hosts.ssh_config();
    let list = format!("{},{}", hosts.host("n1"), hosts.host("n2"));
    let output = hosts_command(&["--hosts", &list, "--ssh-config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    for name in ["n1", "n2"] {
        let line = stdout
            .lines()
            .find(|line| {
                line.starts_with(&format!(
                    "{}: ready (root, iptables, clock ",
                    hosts.host(name)
                ))
            })
            .unwrap_or_else(|| panic!("no ready line for {name}: {}", describe(&output)));
        assert!(
            line.contains(" ms from this machine's (round trip "),
            "{line}"
        );
    }
    hosts.stop().await;
}

#[tokio::test]
async fn unreachable_hosts_are_exit_3_naming_each_within_the_connect_timeout() {
    if skipped() {
        return;
    }
    // n2 runs no sshd (refused at once); nobody has the unused address (no answer at all).
    let hosts = SshHosts::start(2, &[true, false]).await;
    let config = hosts.ssh_config();
    let silent = format!("root@{}", hosts.unused_ip());
    let list = format!("{},{},{silent}", hosts.host("n1"), hosts.host("n2"));
    let started = Instant::now();
    let output = hosts_command(&[
        "--hosts",
        &list,
        "--ssh-config",
        config.to_str().unwrap(),
        "--connect-timeout",
        "2s",
    ]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    // Hosts are checked at once: the silent one's timeout bounds the whole command.
    assert!(
        took < Duration::from_secs(12),
        "took {took:?}; {}",
        describe(&output)
    );
    let stderr = text(&output.stderr);
    for host in [hosts.host("n2"), silent.clone()] {
        assert!(
            stderr.contains(&format!(
                "{host}: not ready: {host} is unreachable over SSH"
            )),
            "{host}: {}",
            describe(&output)
        );
    }
    assert!(stderr.contains("sshd listens"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: 2 of 3 hosts not ready: {}, {silent}",
            hosts.host("n2")
        )),
        "{stderr}"
    );
    assert!(
        text(&output.stdout).contains(&format!("{}: ready", hosts.host("n1"))),
        "{}",
        describe(&output)
    );
    hosts.stop().await;
}

#[tokio::test]
async fn a_refused_login_is_exit_3_saying_what_to_do_about_the_key() {
    if skipped() {
        return;
    }
    let hosts = SshHosts::start(1, &[]).await;
    let config = hosts.stranger_ssh_config();
    let host = hosts.host("n1");
    let output = hosts_command(&["--hosts", &host, "--ssh-config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("{host}: not ready: {host} refused the SSH login")),
        "{stderr}"
    );
    assert!(stderr.contains("Permission denied (publickey)"), "{stderr}");
    assert!(stderr.contains("authorized_keys"), "{stderr}");
    hosts.stop().await;
}

#[test]
fn a_host_that_accepts_connections_but_never_speaks_ssh_is_unreachable_within_the_timeout() {
    if std::process::Command::new("ssh")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: no ssh client (apt-get install openssh-client)");
        return;
    }
    // The kernel completes the connections; nothing ever answers on them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("root@{}", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host *\n  UserKnownHostsFile {}\n  IdentityAgent none\n",
            dir.path().join("known_hosts").display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let output = hosts_command(&[
        "--hosts",
        &host,
        "--ssh-config",
        config.to_str().unwrap(),
        "--connect-timeout",
        "1s",
    ]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{host}: not ready: {host} is unreachable over SSH"
        )),
        "{}",
        describe(&output)
    );
}

#[test]
fn a_malformed_host_list_or_a_missing_ssh_config_is_exit_3_before_connecting() {
    let output = hosts_command(&["--hosts", "root@h1,,root@h2"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("an empty entry"),
        "{}",
        describe(&output)
    );

    let output = hosts_command(&["--hosts", "root@h1,root@h1"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("h1 is named twice"),
        "{}",
        describe(&output)
    );

    let output = hosts_command(&["--hosts", "root@h1", "--ssh-config", "/nonexistent/config"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        text(&output.stderr)
            .contains("the ssh configuration /nonexistent/config (--ssh-config) does not exist"),
        "{}",
        describe(&output)
    );
}

/// The three hosts of `hosts`, as `--hosts` takes them.
fn three_hosts(hosts: &SshHosts) -> String {
    let names: Vec<String> = (1..=3).map(|i| hosts.host(&format!("n{i}"))).collect();
    names.join(",")
}

/// `faultline test --hosts` of the three hosts of `hosts`, with `args`, started.
fn start_on_hosts(hosts: &SshHosts, store: &Path, args: &[&str]) -> std::process::Child {
    let (names, config, node) = (
        three_hosts(hosts),
        hosts.ssh_config(),
        common::node_binary(),
    );
    let mut all = vec![
        "--hosts",
        &names,
        "--ssh-config",
        config.to_str().unwrap(),
        "--node-binary",
        node.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    common::start(store, &all)
}

/// Whether Debian's etcd is installed (on the hosts too: they share this machine's disk).
fn etcd_installed() -> bool {
    let installed = Command::new("etcd")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !installed {
        eprintln!("skipped: etcd is not installed (apt-get install etcd-server)");
    }
    installed
}

/// Checks what a valid run on the hosts left: each node ran on its host, with the host's
/// clock measured, its log and data came back, the faults in `faults` happened (`kill|pause`:
/// one of them, at least; a lane runs one fault at a time, so a short run may not get to
/// every kind of its lane), nothing is left on the hosts. Returns test.json.
fn check_valid_run_on_hosts(
    hosts: &SshHosts,
    store: &Path,
    output: &Output,
    faults: &[&str],
) -> serde_json::Value {
    assert_eq!(output.status.code(), Some(0), "{}", describe(output));
    assert!(
        text(&output.stdout).contains("verdict: valid"),
        "{}",
        describe(output)
    );
    let run = store.join("latest");
    let test = read_json(run.join("test.json"));
    for (i, node) in test["nodes"].as_array().unwrap().iter().enumerate() {
        let name = format!("n{}", i + 1);
        assert_eq!(node["host"]["ssh"], hosts.host(&name).as_str(), "{node}");
        assert_eq!(node["ip"], hosts.ip(&name).to_string().as_str(), "{node}");
        // One clock here: the offset is within the measurement's half round trip (and some
        // scheduling).
        let offset = node["host"]["clock_offset_ms"].as_f64().unwrap();
        let round_trip = node["host"]["clock_round_trip_ms"].as_f64().unwrap();
        assert!(offset.abs() <= round_trip / 2.0 + 5.0, "{node}");
        // Its directory was copied back: the log it wrote there, and its data.
        let dir = run.join("nodes").join(&name);
        let log = std::fs::read_to_string(dir.join("node.log")).unwrap();
        assert!(!log.is_empty(), "{name}'s log is empty");
        assert!(
            std::fs::read_dir(dir.join("data")).unwrap().count() > 0,
            "{name}'s data dir is empty"
        );
    }
    // The faults really happened on the hosts.
    let events = common::nemesis_events(store);
    for fault in faults {
        assert!(
            fault
                .split('|')
                .any(|one| events.iter().any(|(f, _)| f == one)),
            "no {fault} in {events:?}"
        );
    }
    assert_eq!(left_on_hosts(hosts, &test), Vec::<String>::new());
    test
}

/// [`start_on_hosts`], to the end.
fn test_on_hosts(hosts: &SshHosts, store: &Path, args: &[&str]) -> Output {
    start_on_hosts(hosts, store, args)
        .wait_with_output()
        .unwrap()
}

/// What the run of `test` left on the hosts (which share this machine's disk and processes):
/// its directory there, processes that run from it, and iptables chains in the hosts
/// `names`.
fn left_on(hosts: &SshHosts, names: &[&str], test: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    let dir = test["nodes"][0]["host"]["dir"].as_str().unwrap();
    let root = dir.rsplit_once("/nodes/").unwrap().0;
    if Path::new(root).exists() {
        found.push(format!("directory {root}"));
    }
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(root) {
            found.push(format!("process {cmdline}"));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    found.extend(
        (mounts.lines())
            .filter(|line| line.contains(root))
            .map(|line| format!("mount {line}")),
    );
    for &name in names {
        let namespace = hosts.network().namespace(name).unwrap();
        let rules = Command::new("ip")
            .args(["netns", "exec", namespace, "iptables", "-w", "-S"])
            .output()
            .unwrap();
        let rules = text(&rules.stdout);
        found.extend(
            rules
                .lines()
                .filter(|line| line.contains("FAULTLINE"))
                .map(|line| format!("{name}: iptables {line}")),
        );
    }
    found
}

/// [`left_on`] every host.
fn left_on_hosts(hosts: &SshHosts, test: &serde_json::Value) -> Vec<String> {
    left_on(hosts, &["n1", "n2", "n3"], test)
}

#[tokio::test]
async fn the_bundled_node_on_hosts_is_valid_under_the_default_mix() {
    if skipped() {
        return;
    }
    let _runs_dir = RUNS_DIR.read().await;
    let hosts = SshHosts::start(3, &[]).await;
    let store = tempfile::tempdir().unwrap();
    let shm_before = common::faketime_leftovers();
    // Every fault that runs on hosts, a fault a second in each lane.
    let output = test_on_hosts(
        &hosts,
        store.path(),
        &["--time-limit", "10s", "--nemesis-interval", "1s"],
    );
    let test = check_valid_run_on_hosts(
        &hosts,
        store.path(),
        &output,
        &[
            "kill|crash-restart|pause|power-loss|lagging-failover",
            "start-partition",
            "bump-clock|skew-clock|strobe-clock",
        ],
    );
    assert!(
        test["replay"].as_str().unwrap().contains("--hosts root@"),
        "{test}"
    );
    // The clocks really moved on the hosts: right after a change, a node's own clock (read
    // against this machine's, less its host's offset) was off by what the nemesis set, far
    // beyond the error of the reading (a millisecond).
    let events = common::nemesis_events(store.path());
    let proved = events.iter().any(|(f, value)| {
        let (Some(set), Some(read)) = (value["offset_ms"].as_f64(), value["observed_ms"].as_f64())
        else {
            return false;
        };
        f.ends_with("-clock") && set.abs() >= 20.0 && (read - set).abs() <= 10.0
    });
    assert!(proved, "no node's clock was seen to move: {events:?}");
    // What cannot run on hosts was left out, saying why.
    let left_out = test["options"]["left_out"].to_string();
    assert!(left_out.contains("membership"), "{left_out}");
    for kind in ["clock", "slow", "lossy"] {
        assert!(!left_out.contains(kind), "{kind} left out: {left_out}");
    }
    // Nodes killed under libfaketime leave its files in /dev/shm: the hosts' clean-up removed them.
    let new: Vec<String> = common::faketime_leftovers()
        .difference(&shm_before)
        .cloned()
        .collect();
    assert!(new.is_empty(), "left in /dev/shm: {new:?}");
    hosts.stop().await;
}

#[tokio::test]
async fn stale_reads_of_the_bundled_node_on_hosts_over_ssh_are_caught() {
    if skipped() {
        return;
    }
    let _runs_dir = RUNS_DIR.read().await;
    let hosts = SshHosts::start(3, &[]).await;
    let store = tempfile::tempdir().unwrap();
    let output = test_on_hosts(
        &hosts,
        store.path(),
        &[
            "--time-limit",
            "5s",
            "--nemesis",
            "partition",
            "--bug",
            "stale-read",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        text(&output.stdout).contains("verdict: INVALID"),
        "{}",
        describe(&output)
    );
    let test = read_json(store.path().join("latest/test.json"));
    assert_eq!(left_on_hosts(&hosts, &test), Vec::<String>::new());
    hosts.stop().await;
}

/// How many client operations a second completed (ok) inside the `start-{inside}` ..
/// `stop-{inside}` windows, and outside them and the `{other}` windows (from the first
/// completion on, until the last window ends).
fn completions_per_second(store: &Path, inside: &str, other: &str) -> (f64, f64) {
    let history = std::fs::read_to_string(store.join("latest/history.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = history
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let windows = |kind: &str| {
        let mut windows = Vec::new();
        let mut opened = None;
        for event in events.iter().filter(|event| event["process"] == "nemesis") {
            let time = event["time"].as_u64().unwrap();
            let f = event["f"].as_str().unwrap();
            if f == format!("start-{kind}") {
                opened = Some(time);
            } else if f == format!("stop-{kind}") {
                windows.extend(opened.take().map(|start| (start, time)));
            }
        }
        windows
    };
    let (inside, other) = (windows(inside), windows(other));
    let within = |windows: &[(u64, u64)], t: u64| {
        windows.iter().any(|&(start, stop)| start <= t && t <= stop)
    };
    let completions: Vec<u64> = events
        .iter()
        .filter(|event| event["process"] != "nemesis" && event["type"] == "ok")
        .map(|event| event["time"].as_u64().unwrap())
        .collect();
    let (first, end) = (
        completions[0],
        inside.iter().chain(&other).map(|w| w.1).max().unwrap(),
    );
    let span = |windows: &[(u64, u64)]| windows.iter().map(|(a, b)| b - a).sum::<u64>();
    let plain_span = (end - first) - span(&inside) - span(&other);
    let in_slow = completions.iter().filter(|&&t| within(&inside, t)).count();
    let in_plain = completions
        .iter()
        .filter(|&&t| first <= t && t <= end && !within(&inside, t) && !within(&other, t))
        .count();
    (
        in_slow as f64 / (span(&inside) as f64 / 1e9),
        in_plain as f64 / (plain_span as f64 / 1e9),
    )
}

#[tokio::test]
async fn membership_changes_on_hosts_add_nodes_on_the_spare_hosts_and_stay_valid() {
    if skipped() {
        return;
    }
    let _runs_dir = RUNS_DIR.read().await;
    let hosts = SshHosts::start(5, &[]).await;
    let store = tempfile::tempdir().unwrap();
    let spares = format!("{},{}", hosts.host("n4"), hosts.host("n5"));
    let output = test_on_hosts(
        &hosts,
        store.path(),
        &[
            "--spare-hosts",
            &spares,
            "--time-limit",
            "8s",
            "--nemesis-interval",
            "1s",
            "--nemesis",
            "membership,kill",
        ],
    );
    let test = check_valid_run_on_hosts(&hosts, store.path(), &output, &["change-members"]);
    assert_eq!(test["nodes"].as_array().unwrap().len(), 5, "{test}");
    assert_eq!(test["nodes"][3]["spare"], true, "{test}");
    assert!(
        test["replay"]
            .as_str()
            .unwrap()
            .contains(&format!("--spare-hosts {spares}")),
        "{test}"
    );
    // A spare joined: some change's members name a node of a spare host.
    let events = common::nemesis_events(store.path());
    let joined = events.iter().any(|(f, value)| {
        f == "members-changed" && ["n4", "n5"].iter().any(|n| value.to_string().contains(n))
    });
    assert!(joined, "no spare joined: {events:?}");
    assert_eq!(
        left_on(&hosts, &["n1", "n2", "n3", "n4", "n5"], &test),
        Vec::<String>::new()
    );
    hosts.stop().await;
}

#[tokio::test]
async fn links_between_hosts_are_slowed_and_made_lossy_by_proxies_on_the_hosts() {
    if skipped() {
        return;
    }
    let _runs_dir = RUNS_DIR.read().await;
    let hosts = SshHosts::start(3, &[]).await;
    let store = tempfile::tempdir().unwrap();
    // Slow from 0.5 s, lossy from 2.5 s, slow again from 4.5 s.
    let output = test_on_hosts(
        &hosts,
        store.path(),
        &[
            "--time-limit",
            "6s",
            "--nemesis-interval",
            "1s",
            "--nemesis",
            "slow,lossy",
        ],
    );
    check_valid_run_on_hosts(
        &hosts,
        store.path(),
        &output,
        &["start-slow", "start-lossy"],
    );
    // The slowing was real: every operation waits for messages between nodes (a quorum's
    // answers, or the leader's), each now 20 ms late at least, so the clients, each waiting
    // for its answer before it asks again, completed far fewer operations a second while
    // links were slow than while no link was degraded.
    let (slowed, plain) = completions_per_second(store.path(), "slow", "lossy");
    assert!(
        slowed * 2.0 < plain,
        "{slowed:.0} operations a second completed in slow windows, {plain:.0} outside any \
         degradation"
    );
    hosts.stop().await;
}

#[tokio::test]
async fn a_node_binary_installed_on_the_hosts_is_run_there_if_it_is_the_same_build() {
    if skipped() {
        return;
    }
    let _runs_dir = RUNS_DIR.read().await;
    let hosts = SshHosts::start(3, &[]).await;
    // Installed on the hosts (which share this machine's disk) at a path of its own.
    let installed_dir = tempfile::tempdir().unwrap();
    let installed = installed_dir.path().join("faultline-node-installed");
    std::fs::copy(common::node_binary(), &installed).unwrap();
    let installed = installed.to_str().unwrap();
    let store = tempfile::tempdir().unwrap();
    let mut run = start_on_hosts(
        &hosts,
        store.path(),
        &[
            "--node-binary-on-hosts",
            installed,
            "--time-limit",
            "5s",
            "--nemesis",
            "kill",
        ],
    );
    started(&mut run, store.path()).await;
    // The nodes run from the installed binary.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut running = Vec::new();
    while running.len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        running = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .filter(|cmdline| cmdline.starts_with(installed.as_bytes()))
            .collect();
    }
    let output = tokio::task::spawn_blocking(move || run.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        running.len() >= 3,
        "{} nodes ran from {installed}",
        running.len()
    );
    let test = check_valid_run_on_hosts(&hosts, store.path(), &output, &["kill"]);
    assert_eq!(test["options"]["node_binary_on_hosts"], installed, "{test}");

    // Another build (here, not a node at all) is refused before anything starts.
    let output = test_on_hosts(
        &hosts,
        store.path(),
        &["--node-binary-on-hosts", "/bin/true", "--time-limit", "5s"],
    );
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}'s `/bin/true` says it is \"true (GNU coreutils)",
            hosts.host("n1")
        )),
        "{stderr}"
    );
    assert!(stderr.contains("not \"faultline-node "), "{stderr}");
    hosts.stop().await;
}

#[tokio::test]
async fn power_loss_on_hosts_loses_nothing_acknowledged_and_catches_a_node_that_never_fsyncs() {
    if skipped() {
        return;
    }
    if let Err(reason) = faultline_nemesis::fuse_available() {
        eprintln!("skipped: {reason}");
        return;
    }
    let _runs_dir = RUNS_DIR.read().await;
    let hosts = SshHosts::start(3, &[]).await;
    let power_loss = ["--nemesis", "power-loss", "--nemesis-interval", "1s"];

    // Each node's data dir is a power-loss disk served on its host; the cuts really happen
    // there and take what was not fsynced, and the correct node loses nothing acknowledged.
    let store = tempfile::tempdir().unwrap();
    let output = test_on_hosts(
        &hosts,
        store.path(),
        &[&power_loss[..], &["--time-limit", "6s"]].concat(),
    );
    check_valid_run_on_hosts(&hosts, store.path(), &output, &["power-loss"]);
    let events = common::nemesis_events(store.path());
    let cuts = events.iter().filter(|(f, _)| f == "power-loss").count();
    let reports = events.iter().filter(|(f, _)| f == "lost-unsynced").count();
    assert!(cuts >= 2 && reports == cuts, "{events:?}");
    let results = read_json(store.path().join("latest/results.json"));
    assert_eq!(results["lost_writes"]["lost"], 0, "{results}");

    // A node that never fsyncs loses acknowledged writes to the cuts (two tries at most).
    let mut verdicts = Vec::new();
    for _ in 0..2 {
        let store = tempfile::tempdir().unwrap();
        let output = test_on_hosts(
            &hosts,
            store.path(),
            &[
                &power_loss[..],
                &["--time-limit", "6s", "--bug", "no-fsync"],
            ]
            .concat(),
        );
        let test = read_json(store.path().join("latest/test.json"));
        assert_eq!(left_on_hosts(&hosts, &test), Vec::<String>::new());
        verdicts.push(output.status.code());
        if output.status.code() == Some(1) {
            break;
        }
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    }
    assert_eq!(verdicts.last(), Some(&Some(1)), "{verdicts:?}");
    hosts.stop().await;
}

#[tokio::test]
async fn etcd_on_hosts_over_ssh_runs_the_hosts_etcd_and_is_valid_under_faults() {
    if skipped() || !etcd_installed() {
        return;
    }
    let _runs_dir = RUNS_DIR.read().await;
    let hosts = SshHosts::start(3, &[]).await;
    let store = tempfile::tempdir().unwrap();
    let (names, config) = (three_hosts(&hosts), hosts.ssh_config());
    let output = common::start(
        store.path(),
        &[
            "--system",
            "etcd",
            "--hosts",
            &names,
            "--ssh-config",
            config.to_str().unwrap(),
            "--time-limit",
            "6s",
            "--nemesis",
            "kill,pause,partition",
        ],
    )
    .wait_with_output()
    .unwrap();
    let test = check_valid_run_on_hosts(
        &hosts,
        store.path(),
        &output,
        &["kill|pause", "start-partition"],
    );
    // The version is the one installed on the hosts, asked there.
    let version = test["system"]["version"].as_str().unwrap_or_default();
    assert!(version.starts_with("etcd Version: "), "{test}");
    hosts.stop().await;
}

#[tokio::test]
async fn a_system_file_naming_its_hosts_runs_there_and_is_valid_under_faults() {
    if skipped() || !etcd_installed() {
        return;
    }
    let _runs_dir = RUNS_DIR.read().await;
    let hosts = SshHosts::start(3, &[]).await;
    let store = tempfile::tempdir().unwrap();
    // The etcd example, with its hosts: its client (client.py) runs on this machine, etcd on
    // the hosts.
    let system = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/etcd-python");
    std::fs::copy(example.join("client.py"), system.path().join("client.py")).unwrap();
    std::fs::copy(hosts.ssh_config(), system.path().join("ssh_config")).unwrap();
    let quoted: Vec<String> = (1..=3)
        .map(|i| format!("{:?}", hosts.host(&format!("n{i}"))))
        .collect();
    let file = format!(
        "{}\n[hosts]\nssh = [{}]\nssh_config = \"ssh_config\"\n",
        std::fs::read_to_string(example.join("system.toml")).unwrap(),
        quoted.join(", ")
    );
    let file_path = system.path().join("system.toml");
    std::fs::write(&file_path, file).unwrap();
    let output = common::start(
        store.path(),
        &[
            "--system-file",
            file_path.to_str().unwrap(),
            "--time-limit",
            "6s",
            "--nemesis",
            "kill,partition",
        ],
    )
    .wait_with_output()
    .unwrap();
    let test =
        check_valid_run_on_hosts(&hosts, store.path(), &output, &["kill", "start-partition"]);
    assert_eq!(
        test["options"]["hosts"].as_array().unwrap().len(),
        3,
        "{test}"
    );
    hosts.stop().await;
}

#[tokio::test]
async fn faults_that_cannot_run_on_hosts_are_left_out_and_a_host_not_ready_is_exit_3() {
    if skipped() {
        return;
    }
    let _runs_dir = RUNS_DIR.read().await;
    // n3 has no sshd: the run is refused before anything starts, naming it.
    let hosts = SshHosts::start(3, &[true, true, false]).await;
    let store = tempfile::tempdir().unwrap();
    let output = test_on_hosts(&hosts, store.path(), &["--time-limit", "5s"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "1 of 3 hosts not ready (`faultline hosts --hosts ...` checks them):\n  {} is unreachable",
            hosts.host("n3")
        )),
        "{stderr}"
    );
    assert!(!store.path().join("latest").exists(), "nothing was started");

    // A fault named that cannot run on hosts refuses the run, saying why.
    let output = test_on_hosts(&hosts, store.path(), &["--nemesis", "membership"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains(
            "membership cannot run here: membership changes add spare nodes, and on hosts each \
             needs a host of its own: name two with --spare-hosts"
        ),
        "{}",
        describe(&output)
    );
    hosts.stop().await;
}

/// Waits (at most 20 s) until `run`, storing in `store`, has written its test.json, whose
/// path it returns: its nodes are starting. A run that ends or never gets there fails the test.
async fn started(run: &mut std::process::Child, store: &Path) -> std::path::PathBuf {
    let test_json = store.join("latest/test.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !test_json.exists() {
        if run.try_wait().unwrap().is_some() || Instant::now() >= deadline {
            let _ = run.kill();
            let mut stderr = String::new();
            if let Some(mut pipe) = run.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            panic!("the run did not start ({:?}): {stderr}", run.wait());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    test_json
}

#[tokio::test]
async fn a_host_lost_mid_run_is_named_and_the_others_are_left_clean() {
    if skipped() {
        return;
    }
    let _runs_dir = RUNS_DIR.read().await;
    let hosts = SshHosts::start(3, &[]).await;
    let store = tempfile::tempdir().unwrap();
    let mut run = start_on_hosts(
        &hosts,
        store.path(),
        &["--time-limit", "6s", "--nemesis", "none"],
    );
    // Once the nodes run (a leader within a few seconds of the start), n3 drops off the
    // network for good. No faults: a fault aimed at n3 would wait for its time limit, which
    // is not what this test is about. The final reads go around n3.
    let test_json = started(&mut run, store.path()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    hosts.cut_off("n3");
    let output = tokio::task::spawn_blocking(move || run.wait_with_output().unwrap())
        .await
        .unwrap();

    // The run ends valid, every list read at the end (through the nodes that answer), and
    // n3 is named as not cleaned, at once and in the summary.
    let lost = hosts.host("n3");
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        stderr.contains(&format!("faultline test: {lost} was not cleaned: ")),
        "{}",
        describe(&output)
    );
    assert!(
        stdout.contains(&format!("NOT CLEANED  {lost}: ")),
        "{}",
        describe(&output)
    );
    // The others were cleaned (and, sharing this machine's disk and processes, took n3's
    // directory and node with them; n3's rules die with its namespace).
    let test = read_json(test_json);
    assert_eq!(left_on(&hosts, &["n1", "n2"], &test), Vec::<String>::new());
    hosts.stop().await;
}

#[tokio::test]
async fn what_a_killed_harness_left_on_the_hosts_refuses_the_next_run_until_cleaned() {
    if skipped() {
        return;
    }
    let _runs_dir = RUNS_DIR.write().await;
    let hosts = SshHosts::start(3, &[]).await;
    let store = tempfile::tempdir().unwrap();
    let mut run = start_on_hosts(
        &hosts,
        store.path(),
        &[
            "--time-limit",
            "30s",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "1s",
        ],
    );
    // Killed mid-run, after a partition or two: its nodes run on (detached on their hosts),
    // its chains stay hooked.
    let test_json = started(&mut run, store.path()).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    run.kill().unwrap();
    run.wait().unwrap();
    let test = read_json(test_json);
    let left = left_on_hosts(&hosts, &test);
    assert!(
        left.iter().any(|thing| thing.starts_with("process ")),
        "{left:?}"
    );
    assert!(
        left.iter().any(|thing| thing.contains("iptables")),
        "{left:?}"
    );

    // The next run is refused, naming what is in its way and how to remove it.
    let next = tempfile::tempdir().unwrap();
    let output = test_on_hosts(&hosts, next.path(), &["--time-limit", "5s"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = text(&output.stderr);
    let root = test["nodes"][0]["host"]["dir"].as_str().unwrap();
    let root = root.rsplit_once("/nodes/").unwrap().0;
    for expected in [
        "holds what an earlier run left (something listens on port 7401 or 7402, the nodes' (a \
         node of an earlier run, or another service); a chain FAULTLINE-... is hooked into INPUT; \
         runs' directories: ",
        root,
        "--clean` removes it",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }

    // `faultline hosts --clean` removes it all, and the hosts are ready again.
    let config = hosts.ssh_config();
    let output = hosts_command(&[
        "--hosts",
        &three_hosts(&hosts),
        "--ssh-config",
        config.to_str().unwrap(),
        "--clean",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = text(&output.stdout);
    for name in ["n1", "n2", "n3"] {
        let host = hosts.host(name);
        assert!(stdout.contains(&format!("{host}: cleaned (")), "{stdout}");
        assert!(stdout.contains(&format!("{host}: ready (")), "{stdout}");
    }
    assert!(stdout.contains("removed 1 chain"), "{stdout}");
    assert_eq!(left_on_hosts(&hosts, &test), Vec::<String>::new());
    hosts.stop().await;
}
