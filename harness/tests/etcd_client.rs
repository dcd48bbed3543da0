//! The etcd client against real etcd (Debian's `etcd-server`): three members on loopback,
//! each test its own cluster on its own addresses (127.0.0.71 and up), with etcd's default
//! timing (heartbeat 100 ms, election timeout 1 s). Every operation round-trips; a member
//! that lost its leader refuses at once (`fail`), a paused member leaves writes unknown
//! (`info`) and fails reads, a killed one refuses connections (`fail`); a member that missed
//! a write can answer a serializable read with the value before it, a linearizable one never.
//!
//! Skipped, saying so, when `etcd` is not on PATH (`.ci/run` installs it). Members are
//! SIGKILLed by pid when a test ends, also when it fails, and die with the test's thread if
//! the test process itself is killed.
//!
//! Stale reads from a member cut off by a partition are left to the harness's tests: on
//! loopback without network namespaces a member cannot be cut off from its peers while it
//! keeps answering clients (etcd 3.4 cannot choose the source address of its peer
//! connections, so firewall rules cannot tell its traffic from the others').

#[allow(dead_code, reason = "the harness's module; this test uses part of it")]
#[path = "../src/system/etcd/classify.rs"]
mod classify;
#[allow(dead_code, reason = "the harness's module; this test uses part of it")]
#[path = "../src/system/etcd/client.rs"]
mod client;
#[allow(dead_code, reason = "the harness's module; this test uses part of it")]
#[path = "../src/system/etcd/gateway.rs"]
mod gateway;
#[allow(dead_code, reason = "the harness's module; this test uses part of it")]
#[path = "../src/ports.rs"]
mod ports;

use std::collections::HashSet;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use faultline_workloads::{
    CAS_MISMATCH, Client, ClientFactory, Completion, Endpoint, Op, Outcome, Purpose,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use client::{EtcdClients, MemberStatus};
use gateway::Consistency;

/// How long a cluster may take to elect a leader, or to elect one again.
const PATIENCE: Duration = Duration::from_secs(30);
/// The clients' timeout: long enough for any answer of a healthy member on loopback.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Whether etcd is installed; if not, says that the test is skipped.
fn etcd_installed() -> bool {
    let found = Command::new("etcd")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!("skipped: etcd is not on PATH (apt-get install etcd-server)");
    }
    found
}

/// One etcd member process.
struct Member {
    name: String,
    client_url: String,
    log: PathBuf,
    child: Option<Child>,
}

/// Three etcd members, SIGKILLed when dropped.
struct EtcdCluster {
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts members n1, n2, n3 on 127.0.0.`first_ip` and the two addresses after it.
    fn start(first_ip: u8) -> EtcdCluster {
        let dir = tempfile::Builder::new()
            .prefix("etcd-client-")
            .tempdir()
            .expect("creating a temp dir");
        let addresses: Vec<(String, SocketAddr, SocketAddr)> = (0..3)
            .map(|i| {
                let ip = Ipv4Addr::new(127, 0, 0, first_ip + i);
                let [client, peer] = ports::reserve_ports(ip).expect("reserving two ports");
                let client = SocketAddr::from((ip, client));
                let peer = SocketAddr::from((ip, peer));
                (format!("n{}", i + 1), client, peer)
            })
            .collect();
        let initial_cluster: Vec<String> = addresses
            .iter()
            .map(|(name, _, peer)| format!("{name}=http://{peer}"))
            .collect();
        let mut members = Vec::new();
        for (name, client, peer) in &addresses {
            let data_dir = dir.path().join(name);
            let log = dir.path().join(format!("{name}.log"));
            let client_url = format!("http://{client}");
            let peer_url = format!("http://{peer}");
            let mut command = Command::new("etcd");
            command
                .args(["--name", name])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial_cluster.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--logger", "zap", "--log-outputs", "stderr"])
                .stdin(Stdio::null())
                .stdout(File::create(&log).expect("creating a log file"))
                .stderr(File::create(&log).expect("creating a log file"));
            // If the test process dies without running Drop, the members die with it.
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
                });
            }
            let child = command.spawn().expect("starting etcd");
            members.push(Member {
                name: name.clone(),
                client_url,
                log,
                child: Some(child),
            });
        }
        EtcdCluster { members, _dir: dir }
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        self.members
            .iter()
            .map(|m| Endpoint::new(&m.name, &m.client_url))
            .collect()
    }

    fn signal(&self, node: usize, signal: Signal) {
        let child = self.members[node].child.as_ref().expect("a running member");
        kill(Pid::from_raw(child.id() as i32), signal).expect("signalling etcd");
    }

    /// SIGSTOP: the member keeps its sockets, so connections to it are made and then hang.
    fn pause(&self, node: usize) {
        self.signal(node, Signal::SIGSTOP);
    }

    fn resume(&self, node: usize) {
        self.signal(node, Signal::SIGCONT);
    }

    /// SIGKILL, and waits until it is gone: its ports refuse connections from then on.
    fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.members[node].child.take() {
            child.kill().expect("killing etcd");
            child.wait().expect("reaping etcd");
        }
    }

    /// The last lines of every member's log, to show when a test fails.
    fn logs(&self) -> String {
        let mut text = String::new();
        for member in &self.members {
            let log = fs::read_to_string(&member.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            text.push_str(&format!("--- {} ---\n", member.name));
            for line in &lines[lines.len().saturating_sub(15)..] {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// Waits until every member that answers knows the same leader, and returns it.
    async fn leader(&self, clients: &EtcdClients) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut leaders = Vec::new();
            for member in self.members.iter().filter(|m| m.child.is_some()) {
                let status = clients.member_status(&member.name).await;
                leaders.push(status.ok().and_then(|s| s.leader));
            }
            if let [Some(first), rest @ ..] = leaders.as_slice()
                && rest.iter().all(|leader| leader.as_ref() == Some(first))
            {
                return first.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the members did not agree on a leader within {PATIENCE:?}: {leaders:?}\n{}",
                self.logs()
            );
            sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                // SIGKILL ends a stopped process too.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn read(key: &str) -> Op {
    Op::Read { key: key.into() }
}

fn write(key: &str, value: u64) -> Op {
    Op::Write {
        key: key.into(),
        value,
    }
}

fn cas(key: &str, from: u64, to: u64) -> Op {
    Op::Cas {
        key: key.into(),
        from,
        to,
    }
}

fn append(key: &str, value: u64) -> Op {
    Op::Append {
        key: key.into(),
        value,
    }
}

/// The clients of tasks 0, 1 and 2: homes n1, n2 and n3.
async fn open_all(clients: &EtcdClients, purpose: Purpose) -> Vec<Box<dyn Client>> {
    let mut opened = Vec::new();
    for task in 0..3 {
        opened.push(clients.open(task, purpose).await.expect("opening a client"));
    }
    opened
}

/// Performs `op` and checks which member answered.
async fn outcome(client: &mut Box<dyn Client>, op: Op, home: &str) -> Outcome {
    let Completion { outcome, node } = client.invoke(&op).await;
    assert_eq!(node.as_deref(), Some(home), "{op:?} was sent home");
    outcome
}

fn ok(value: Value) -> Outcome {
    Outcome::Ok(value)
}

fn fail(reason: &str) -> Outcome {
    Outcome::Fail(reason.into())
}

#[tokio::test]
async fn every_operation_round_trips_through_a_real_cluster() {
    if !etcd_installed() {
        return;
    }
    let cluster = EtcdCluster::start(71);
    let clients = EtcdClients::new(&cluster.endpoints(), TIMEOUT, Consistency::Linearizable)
        .expect("the clients");
    cluster.leader(&clients).await;
    let mut c = open_all(&clients, Purpose::Workload).await;

    // Registers: writes and compare-and-sets seen by reads on every member.
    assert_eq!(outcome(&mut c[0], read("r1"), "n1").await, ok(Value::Null));
    assert_eq!(outcome(&mut c[1], write("r1", 3), "n2").await, ok(json!(3)));
    assert_eq!(outcome(&mut c[2], read("r1"), "n3").await, ok(json!(3)));
    assert_eq!(
        outcome(&mut c[0], cas("r1", 3, 4), "n1").await,
        ok(json!([3, 4]))
    );
    assert_eq!(
        outcome(&mut c[1], cas("r1", 3, 5), "n2").await,
        fail(CAS_MISMATCH)
    );
    // A register never written holds no value to compare with.
    assert_eq!(
        outcome(&mut c[2], cas("r2", 0, 1), "n3").await,
        fail(CAS_MISMATCH)
    );
    for (i, home) in ["n1", "n2", "n3"].into_iter().enumerate() {
        assert_eq!(outcome(&mut c[i], read("r1"), home).await, ok(json!(4)));
        assert_eq!(outcome(&mut c[i], read("r2"), home).await, ok(Value::Null));
    }

    // Lists: appends from every member, read back in the order they were committed, which
    // is not the order of their values. l10 shares l1's first characters, not its elements.
    let appends = [(0, "n1", 20), (1, "n2", 3), (2, "n3", 11), (0, "n1", 7)];
    for (i, home, value) in appends {
        assert_eq!(
            outcome(&mut c[i], append("l1", value), home).await,
            ok(json!(value))
        );
    }
    assert_eq!(
        outcome(&mut c[1], append("l10", 99), "n2").await,
        ok(json!(99))
    );
    for (i, home) in ["n1", "n2", "n3"].into_iter().enumerate() {
        assert_eq!(
            outcome(&mut c[i], read("l1"), home).await,
            ok(json!([20, 3, 11, 7]))
        );
    }
    assert_eq!(outcome(&mut c[0], read("l2"), "n1").await, ok(Value::Null));

    // Every member applied the appends before its linearizable read answered, so its own
    // copy, and a serializable read, show them all.
    for member in ["n1", "n2", "n3"] {
        let copy = clients
            .local_list(member, "l1")
            .await
            .expect("a member's copy");
        assert_eq!(copy, [20, 3, 11, 7], "{member}'s copy");
    }
    let stale_ok = EtcdClients::new(&cluster.endpoints(), TIMEOUT, Consistency::Serializable)
        .expect("the clients");
    let mut s = open_all(&stale_ok, Purpose::Workload).await;
    assert_eq!(
        outcome(&mut s[2], read("l1"), "n3").await,
        ok(json!([20, 3, 11, 7]))
    );
    assert_eq!(outcome(&mut s[2], read("r1"), "n3").await, ok(json!(4)));
    let mut last = open_all(&stale_ok, Purpose::FinalRead).await;
    assert_eq!(
        outcome(&mut last[1], read("l1"), "n2").await,
        ok(json!([20, 3, 11, 7]))
    );

    // Every member names the same leader, one of the cluster's nodes, and only it leads.
    let mut statuses: Vec<MemberStatus> = Vec::new();
    for member in ["n1", "n2", "n3"] {
        statuses.push(clients.member_status(member).await.expect("a status"));
    }
    let leader = statuses[0].leader.clone().expect("a leader");
    assert!(
        ["n1", "n2", "n3"].contains(&leader.as_str()),
        "{statuses:?}"
    );
    for (status, member) in statuses.iter().zip(["n1", "n2", "n3"]) {
        assert_eq!(status.leader.as_ref(), Some(&leader), "{statuses:?}");
        assert_eq!(status.leads, member == leader, "{member}: {status:?}");
        assert!(
            status.term >= 2 && status.applied <= status.commit,
            "{status:?}"
        );
        // Nine writes (a txn goes through the log even when its comparison fails), and the
        // cluster's own entries.
        assert!(status.commit > 9, "{status:?}");
        assert!(status.errors.is_empty(), "{status:?}");
    }
    let ids: HashSet<u64> = statuses.iter().map(|s| s.member_id).collect();
    assert_eq!(ids.len(), 3, "{statuses:?}");
}

#[tokio::test]
async fn a_member_that_lost_its_leader_refuses_at_once() {
    if !etcd_installed() {
        return;
    }
    let cluster = EtcdCluster::start(74);
    let clients = EtcdClients::new(&cluster.endpoints(), TIMEOUT, Consistency::Linearizable)
        .expect("the clients");
    cluster.leader(&clients).await;
    cluster.pause(1);
    cluster.pause(2);
    // n1 notices within an election timeout (1 s) or two that it has no leader, whether it
    // was a follower or the leader itself (check-quorum).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = clients.member_status("n1").await.expect("n1's status");
        if status.leader.is_none() {
            assert_eq!(status.errors, ["etcdserver: no leader"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "n1 still knows a leader: {status:?}"
        );
        sleep(Duration::from_millis(100)).await;
    }

    // Refused at once: `fail`, where waiting for etcd's own request timeout (7 s) would
    // have outlasted the client's (1 s) and left the writes unknown.
    let stale_ok = EtcdClients::new(&cluster.endpoints(), TIMEOUT, Consistency::Serializable)
        .expect("the clients");
    let mut n1 = clients.open(0, Purpose::Workload).await.unwrap();
    let mut n1_stale_ok = stale_ok.open(0, Purpose::Workload).await.unwrap();
    let no_leader = fail("no leader");
    assert_eq!(outcome(&mut n1, write("r1", 1), "n1").await, no_leader);
    assert_eq!(outcome(&mut n1, cas("r1", 1, 2), "n1").await, no_leader);
    assert_eq!(outcome(&mut n1, append("l1", 1), "n1").await, no_leader);
    assert_eq!(outcome(&mut n1, read("r1"), "n1").await, no_leader);
    assert_eq!(outcome(&mut n1_stale_ok, read("l1"), "n1").await, no_leader);
    // The harness still reads what the member itself holds.
    assert_eq!(
        clients.local_list("n1", "l1").await.unwrap(),
        Vec::<u64>::new()
    );

    cluster.resume(1);
    cluster.resume(2);
    // Writes are taken again once a leader is elected; the refused ones never happened.
    let deadline = Instant::now() + PATIENCE;
    while outcome(&mut n1, write("r2", 1), "n1").await != ok(json!(1)) {
        assert!(
            Instant::now() < deadline,
            "no write taken after the resume\n{}",
            cluster.logs()
        );
        sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(outcome(&mut n1, read("r1"), "n1").await, ok(Value::Null));
    assert_eq!(outcome(&mut n1, read("l1"), "n1").await, ok(Value::Null));
}

#[tokio::test]
async fn a_paused_member_leaves_writes_unknown_and_a_killed_one_refuses() {
    if !etcd_installed() {
        return;
    }
    let mut cluster = EtcdCluster::start(77);
    let clients = EtcdClients::new(&cluster.endpoints(), TIMEOUT, Consistency::Linearizable)
        .expect("the clients");
    cluster.leader(&clients).await;
    let mut n3 = clients.open(2, Purpose::Workload).await.unwrap();
    assert_eq!(outcome(&mut n3, write("r1", 1), "n3").await, ok(json!(1)));

    // The kernel still accepts connections for a stopped process: the requests are sent, and
    // no answer comes.
    cluster.pause(2);
    let timeout = Outcome::Info("timeout".into());
    assert_eq!(outcome(&mut n3, write("r1", 2), "n3").await, timeout);
    assert_eq!(outcome(&mut n3, cas("r1", 1, 3), "n3").await, timeout);
    assert_eq!(outcome(&mut n3, append("l1", 4), "n3").await, timeout);
    assert_eq!(outcome(&mut n3, read("r1"), "n3").await, fail("timeout"));
    cluster.resume(2);

    cluster.kill(2);
    // A fresh pool: a connection kept from before the kill may break only once used, which
    // leaves a write unknown ("connection lost"); that case is the timeout's above.
    let after = EtcdClients::new(&cluster.endpoints(), TIMEOUT, Consistency::Linearizable)
        .expect("the clients");
    let mut n3 = after.open(2, Purpose::Workload).await.unwrap();
    let refused = fail("connection refused");
    assert_eq!(outcome(&mut n3, write("r1", 5), "n3").await, refused);
    assert_eq!(outcome(&mut n3, cas("r1", 1, 5), "n3").await, refused);
    assert_eq!(outcome(&mut n3, append("l1", 5), "n3").await, refused);
    assert_eq!(outcome(&mut n3, read("r1"), "n3").await, refused);
    assert!(after.member_status("n3").await.is_err());

    // The two others go on; the refused write never happened.
    let mut n1 = after.open(0, Purpose::Workload).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match outcome(&mut n1, read("r1"), "n1").await {
            Outcome::Ok(value) => {
                assert_ne!(value, json!(5), "a refused write took effect");
                break;
            }
            other => assert!(Instant::now() < deadline, "n1 does not read: {other:?}"),
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// Rounds tried before concluding that serializable reads are never stale. In 120 rounds on
/// a 2-core machine, 109 were stale.
const STALE_READ_ROUNDS: u64 = 20;

#[tokio::test]
async fn a_serializable_read_can_be_stale_where_a_linearizable_one_cannot() {
    if !etcd_installed() {
        return;
    }
    let cluster = EtcdCluster::start(80);
    let linearizable = EtcdClients::new(&cluster.endpoints(), TIMEOUT, Consistency::Linearizable)
        .expect("the clients");
    let serializable = EtcdClients::new(&cluster.endpoints(), TIMEOUT, Consistency::Serializable)
        .expect("the clients");
    let leader = cluster.leader(&linearizable).await;
    let leader = cluster
        .members
        .iter()
        .position(|m| m.name == leader)
        .unwrap();
    let follower = (leader + 1) % 3;
    let home = cluster.members[follower].name.clone();
    let mut writer = linearizable.open(leader, Purpose::Workload).await.unwrap();
    let mut lin = linearizable
        .open(follower, Purpose::Workload)
        .await
        .unwrap();
    let mut ser = serializable
        .open(follower, Purpose::Workload)
        .await
        .unwrap();
    for round in 0..STALE_READ_ROUNDS {
        let (old, new) = (2 * round, 2 * round + 1);
        assert_eq!(
            writer.invoke(&write("r1", old)).await.outcome,
            ok(json!(old))
        );
        // The follower has applied `old` once its linearizable read returns it.
        assert_eq!(outcome(&mut lin, read("r1"), &home).await, ok(json!(old)));
        // It misses `new`, acknowledged by the two others.
        cluster.pause(follower);
        assert_eq!(
            writer.invoke(&write("r1", new)).await.outcome,
            ok(json!(new))
        );
        // Both reads reach it while it is paused, and are answered as it resumes: the
        // serializable one from what it has applied so far, the linearizable one once it has
        // applied what the leader had committed when the read arrived.
        let reads = async {
            tokio::join!(
                outcome(&mut ser, read("r1"), &home),
                outcome(&mut lin, read("r1"), &home)
            )
        };
        let resume = async {
            sleep(Duration::from_millis(200)).await;
            cluster.resume(follower);
        };
        let ((serializable_read, linearizable_read), ()) = tokio::join!(reads, resume);
        assert_eq!(linearizable_read, ok(json!(new)), "round {round}");
        if serializable_read == ok(json!(old)) {
            return;
        }
        assert_eq!(serializable_read, ok(json!(new)), "round {round}");
    }
    panic!("no serializable read was stale in {STALE_READ_ROUNDS} rounds");
}
