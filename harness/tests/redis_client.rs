//! The Redis + Sentinel client against real processes: three redis-servers and three
//! redis-sentinels on loopback, configured by `system/redis/config.rs` and driven by
//! `system/redis/client.rs`. Needs Debian's redis-server and redis-sentinel; without them each
//! test says so and passes.
//!
//! Every process is killed and reaped by a guard, also when a test fails. Tests run one at a
//! time, so that the failover time they print is not measured while another cluster starts.

#[allow(dead_code, reason = "the harness's module; this test uses part of it")]
#[path = "../src/system/redis/client.rs"]
mod client;
#[allow(dead_code, reason = "the harness's module; this test uses part of it")]
#[path = "../src/system/redis/config.rs"]
mod config;
#[allow(dead_code, reason = "the harness's module; this test uses part of it")]
#[path = "../src/ports.rs"]
mod ports;

use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::{RedisClients, RedisNode, Role};
use config::{MASTER_NAME, NodeAddrs};
use faultline_workloads::{CAS_MISMATCH, Client, ClientFactory, Completion, Op, Outcome, Purpose};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use redis::Value;
use serde_json::json;
use tokio::sync::Mutex;

/// Each test has its own runtime; tokio's mutex works across them (and is never poisoned).
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The clients' timeout per operation, as `faultline test`'s default `--client-timeout`.
const TIMEOUT: Duration = Duration::from_secs(1);
/// The timeout of the writes that find out when a new primary takes writes.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long the cluster may take to start, or to settle after a fault.
const SETTLE: Duration = Duration::from_secs(30);

/// Whether both programs are installed; if not, says why the test does nothing.
fn redis_installed() -> bool {
    for program in ["redis-server", "redis-sentinel"] {
        let installed = Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            eprintln!(
                "skipped: {program} is not installed (apt-get install -y redis-server redis-sentinel)"
            );
            return false;
        }
    }
    true
}

/// Three redis-servers (the first the primary) and a sentinel beside each, killed when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    addrs: Vec<NodeAddrs>,
    servers: Vec<Child>,
    sentinels: Vec<Child>,
}

impl Cluster {
    /// Starts the servers, waits for the replicas to be in sync, starts the sentinels and waits
    /// until they know each other and every replica (so that they can fail over at once).
    async fn start() -> Cluster {
        let addrs: Vec<NodeAddrs> = (1..=3)
            .map(|i| {
                let ip = Ipv4Addr::new(127, 0, 0, 30 + i);
                let [redis_port, sentinel_port] = ports::reserve_ports::<2>(ip).unwrap();
                NodeAddrs {
                    ip: IpAddr::V4(ip),
                    redis_port,
                    sentinel_port,
                }
            })
            .collect();
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            addrs,
            servers: Vec::new(),
            sentinels: Vec::new(),
        };
        for i in 0..cluster.addrs.len() {
            let dir = cluster.node_dir(i);
            fs::create_dir_all(dir.join("data")).unwrap();
            let conf = config::redis_conf(&cluster.addrs, i, &dir.join("data")).unwrap();
            fs::write(dir.join("redis.conf"), conf).unwrap();
            let conf = config::sentinel_conf(&cluster.addrs, i, &dir).unwrap();
            fs::write(dir.join("sentinel.conf"), conf).unwrap();
        }
        for i in 0..cluster.addrs.len() {
            let server = cluster.spawn("redis-server", i, "redis.conf", "node.log");
            cluster.servers.push(server);
        }
        cluster
            .wait("the replicas to be in sync", async |cluster: &Cluster| {
                let (primary, replicas) = cluster.addrs.split_first().unwrap();
                let role = client::role(primary.redis_addr(), TIMEOUT).await;
                let mut in_sync = matches!(role, Ok(Role::Primary { replicas: connected, .. })
                    if connected.len() == replicas.len());
                for replica in replicas {
                    let role = client::role(replica.redis_addr(), TIMEOUT).await;
                    in_sync &= matches!(
                        role,
                        Ok(Role::Replica {
                            connected: true,
                            ..
                        })
                    );
                }
                in_sync
            })
            .await;
        for i in 0..cluster.addrs.len() {
            let sentinel = cluster.spawn("redis-sentinel", i, "sentinel.conf", "sentinel.log");
            cluster.sentinels.push(sentinel);
        }
        cluster
            .wait(
                "the sentinels to know each other and the replicas",
                async |cluster: &Cluster| {
                    for node in &cluster.addrs {
                        if !sentinel_ready(node.sentinel_addr(), cluster.addrs.len()).await {
                            return false;
                        }
                    }
                    true
                },
            )
            .await;
        cluster
    }

    fn node_dir(&self, index: usize) -> PathBuf {
        self.dir.path().join(format!("n{}", index + 1))
    }

    /// Starts `program` with node `index`'s `conf`, its output into `log`.
    fn spawn(&self, program: &str, index: usize, conf: &str, log: &str) -> Child {
        let dir = self.node_dir(index);
        let log = File::create(dir.join(log)).unwrap();
        let mut command = Command::new(program);
        command
            .arg(dir.join(conf))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec. If this
        // test process dies without unwinding, its servers die with it.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        command
            .spawn()
            .unwrap_or_else(|error| panic!("starting {program}: {error}"))
    }

    /// The nodes as the client knows them: `n1`, `n2`, `n3`.
    fn nodes(&self) -> Vec<RedisNode> {
        self.addrs
            .iter()
            .enumerate()
            .map(|(i, addrs)| RedisNode {
                name: format!("n{}", i + 1),
                server: addrs.redis_addr(),
                sentinel: addrs.sentinel_addr(),
            })
            .collect()
    }

    fn clients(&self) -> RedisClients {
        RedisClients::new(self.nodes(), MASTER_NAME, TIMEOUT).unwrap()
    }

    /// Sends `signal` to node `index`'s redis-server.
    fn signal_server(&self, index: usize, signal: Signal) {
        let pid = Pid::from_raw(self.servers[index].id() as i32);
        kill(pid, signal).unwrap();
    }

    /// Waits until server `index` has exited (after a fatal signal). Until then its listening
    /// socket may still take a connection into its backlog and then reset it, which the client
    /// rightly reports as `connect error` rather than `connection refused`.
    fn reap_server(&mut self, index: usize) {
        self.servers[index].wait().unwrap();
    }

    /// Waits until `ready` holds, or fails the test naming `what` after [`SETTLE`].
    async fn wait(&self, what: &str, ready: impl AsyncFn(&Cluster) -> bool) {
        let deadline = Instant::now() + SETTLE;
        while !ready(self).await {
            assert!(Instant::now() < deadline, "waited {SETTLE:?} for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.servers.iter_mut().chain(&mut self.sentinels) {
            // SIGKILL ends a stopped process too.
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for i in 0..self.addrs.len() {
                for log in ["node.log", "sentinel.log"] {
                    let path = self.node_dir(i).join(log);
                    let text = fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    eprintln!("--- n{} {log}, last lines:", i + 1);
                    for line in tail.iter().rev() {
                        eprintln!("{line}");
                    }
                }
            }
        }
    }
}

/// Whether the sentinel at `addr` can fail over: it has a quorum and knows every other
/// sentinel and every replica.
async fn sentinel_ready(addr: SocketAddr, nodes: usize) -> bool {
    let Ok(mut connection) = connect(addr).await else {
        return false;
    };
    let mut ask = async |subcommand: &str| -> Option<Value> {
        redis::cmd("SENTINEL")
            .arg(subcommand)
            .arg(MASTER_NAME)
            .query_async(&mut connection)
            .await
            .ok()
    };
    let count = |value: Option<Value>| match value {
        Some(Value::Array(items)) => items.len(),
        _ => 0,
    };
    ask("CKQUORUM").await.is_some()
        && count(ask("SENTINELS").await) == nodes - 1
        && count(ask("REPLICAS").await) == nodes - 1
}

/// A connection of the test's own to `addr`, for what the client does not do.
async fn connect(addr: SocketAddr) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT));
    redis::Client::open((addr.ip().to_string(), addr.port()))?
        .get_multiplexed_async_connection_with_config(&config)
        .await
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

fn ok(value: serde_json::Value, node: &str) -> Completion {
    Completion::new(Outcome::Ok(value), Some(node.into()))
}

async fn open(clients: &RedisClients, task: usize) -> Box<dyn Client> {
    clients.open(task, Purpose::Workload).await.unwrap()
}

/// Performs `op` with a fresh client of `task` until it is `ok`, as the runner goes on after
/// failures, for at most [`SETTLE`].
async fn until_ok(clients: &RedisClients, task: usize, op: Op) -> Completion {
    let deadline = Instant::now() + SETTLE;
    loop {
        let completion = open(clients, task).await.invoke(&op).await;
        if matches!(completion.outcome, Outcome::Ok(_)) {
            return completion;
        }
        assert!(
            Instant::now() < deadline,
            "{op:?} by task {task} still not ok after {SETTLE:?}: {completion:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Watches the failover that follows pausing the primary at `paused`: how long until a replica
/// answers `ROLE` as the primary, which node acknowledges the first write sent through the
/// sentinels, and how long until it does.
async fn first_write_after_failover(
    cluster: &Cluster,
    paused: Instant,
) -> (Duration, String, Duration) {
    // As the runner does after an `info`, a fresh client for every attempt; with a short
    // timeout, so that an attempt still sent to the paused primary ends soon and the time
    // measured is close to when a write could first succeed.
    let probes = RedisClients::new(cluster.nodes(), MASTER_NAME, PROBE_TIMEOUT).unwrap();
    let replicas = [1, 2].map(|i| cluster.addrs[i].redis_addr());
    let mut promoted = None;
    loop {
        assert!(
            paused.elapsed() < SETTLE,
            "no new primary took writes within {SETTLE:?} of pausing n1"
        );
        for replica in replicas {
            if promoted.is_none()
                && matches!(
                    client::role(replica, TIMEOUT).await,
                    Ok(Role::Primary { .. })
                )
            {
                promoted = Some(paused.elapsed());
            }
        }
        let completion = open(&probes, 0).await.invoke(&write("r1", 3)).await;
        match (&completion.outcome, completion.node) {
            (Outcome::Ok(_), Some(node)) if node != "n1" => {
                let written = paused.elapsed();
                return (promoted.unwrap_or(written), node, written);
            }
            (Outcome::Ok(_), node) => panic!("{node:?} acknowledged a write while n1 was paused"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[tokio::test]
async fn every_operation_round_trips_through_the_primary_the_sentinels_name() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    if !redis_installed() {
        return;
    }
    let mut cluster = Cluster::start().await;
    let clients = cluster.clients();

    // Each task asks its own home's sentinel first; all are told the primary, n1.
    for task in 0..3 {
        let mut client = open(&clients, task).await;
        let r = format!("r{task}");
        let l = format!("l{task}");
        let mut perform = async |op: Op| client.invoke(&op).await;
        assert_eq!(perform(read(&r)).await, ok(json!(null), "n1"));
        assert_eq!(perform(write(&r, 1)).await, ok(json!(1), "n1"));
        assert_eq!(perform(read(&r)).await, ok(json!(1), "n1"));
        assert_eq!(perform(cas(&r, 1, 2)).await, ok(json!([1, 2]), "n1"));
        assert_eq!(
            perform(cas(&r, 1, 3)).await,
            Completion::new(Outcome::Fail(CAS_MISMATCH.into()), Some("n1".into()))
        );
        assert_eq!(perform(read(&r)).await, ok(json!(2), "n1"));
        assert_eq!(perform(read(&l)).await, ok(json!([]), "n1"));
        for value in [5, 3, 9, 1] {
            assert_eq!(perform(append(&l, value)).await, ok(json!(value), "n1"));
        }
        assert_eq!(perform(read(&l)).await, ok(json!([5, 3, 9, 1]), "n1"));
    }

    // What the harness's status poll and divergence check see.
    let [n1, n2, n3] = [0, 1, 2].map(|i| cluster.addrs[i].redis_addr());
    match client::role(n1, TIMEOUT).await.unwrap() {
        Role::Primary { mut replicas, .. } => {
            replicas.sort();
            assert_eq!(replicas, [n2, n3]);
        }
        role => panic!("n1 should be the primary, is {role:?}"),
    }
    for replica in [n2, n3] {
        let role = client::role(replica, TIMEOUT).await.unwrap();
        assert!(
            matches!(role, Role::Replica { primary, connected: true, .. } if primary == n1),
            "{replica} should replicate n1, is {role:?}"
        );
        cluster
            .wait("the replicas to copy the list", async |_: &Cluster| {
                client::local_list(replica, "l2", TIMEOUT).await.ok() == Some(vec![5, 3, 9, 1])
            })
            .await;
    }
    let sentinel = cluster.addrs[0].sentinel_addr();
    let error = client::role(sentinel, TIMEOUT).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("sentinel, not a redis-server"),
        "{error:#}"
    );

    // A replica refuses writes; the client's classification makes that a `fail`.
    let mut replica = connect(n2).await.unwrap();
    let refused = redis::cmd("SET")
        .arg("r0")
        .arg(7)
        .query_async::<Value>(&mut replica)
        .await
        .unwrap_err();
    assert_eq!(
        client::command_failure(&write("r0", 7), &refused),
        Outcome::Fail("readonly".into())
    );

    // The primary dies. A client that was connected cannot tell whether its write was sent;
    // a new client is sent there by the sentinels (not yet sure it is down) and is refused.
    let mut connected = open(&clients, 0).await;
    assert_eq!(connected.invoke(&write("r0", 4)).await, ok(json!(4), "n1"));
    assert_eq!(connected.invoke(&read("r0")).await, ok(json!(4), "n1"));
    let mut reading = open(&clients, 1).await;
    assert_eq!(reading.invoke(&read("r0")).await, ok(json!(4), "n1"));
    cluster.signal_server(0, Signal::SIGKILL);
    let lost = connected.invoke(&write("r0", 5)).await;
    assert_eq!(
        lost,
        Completion::new(Outcome::Info("connection lost".into()), Some("n1".into()))
    );
    let lost = reading.invoke(&read("r0")).await;
    assert_eq!(
        lost,
        Completion::new(Outcome::Fail("connection lost".into()), Some("n1".into()))
    );
    cluster.reap_server(0);
    let refused = open(&clients, 2).await.invoke(&write("r0", 6)).await;
    assert_eq!(
        refused,
        Completion::new(
            Outcome::Fail("connection refused".into()),
            Some("n1".into())
        )
    );
}

#[tokio::test]
async fn the_sentinels_fail_over_a_paused_primary_and_the_clients_follow() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    if !redis_installed() {
        return;
    }
    let cluster = Cluster::start().await;
    let clients = cluster.clients();
    let mut writer = open(&clients, 0).await;
    let mut reader = open(&clients, 1).await;
    // Connected to the primary, and idle while it is paused.
    let mut idle = open(&clients, 2).await;
    assert_eq!(writer.invoke(&write("r1", 1)).await, ok(json!(1), "n1"));
    assert_eq!(reader.invoke(&read("r1")).await, ok(json!(1), "n1"));
    assert_eq!(idle.invoke(&write("r2", 1)).await, ok(json!(1), "n1"));

    let paused = Instant::now();
    cluster.signal_server(0, Signal::SIGSTOP);
    let (stalled, (promoted, new_primary, written)) = tokio::join!(
        async {
            (
                writer.invoke(&write("r1", 2)).await,
                reader.invoke(&read("r1")).await,
            )
        },
        first_write_after_failover(&cluster, paused),
    );
    // No answer: a write may yet happen, a read certainly changed nothing.
    assert_eq!(
        stalled,
        (
            Completion::new(Outcome::Info("timeout".into()), Some("n1".into())),
            Completion::new(Outcome::Fail("timeout".into()), Some("n1".into()))
        )
    );
    eprintln!(
        "failover of a SIGSTOPped primary: a replica answered ROLE as primary after {:.2} s, \
         the first write through the sentinels was acknowledged by {new_primary} after {:.2} s \
         (down-after {} ms, failover-timeout {} ms)",
        promoted.as_secs_f64(),
        written.as_secs_f64(),
        config::DOWN_AFTER.as_millis(),
        config::FAILOVER_TIMEOUT.as_millis(),
    );

    // Every client goes on with the new primary once it asks again (a sentinel may learn of
    // the failover a little after the others: until then it names the paused primary).
    for task in 0..3 {
        assert_eq!(
            until_ok(&clients, task, read("r1")).await,
            ok(json!(3), &new_primary)
        );
    }

    // The old primary resumes, still a primary in its own eyes until the sentinels reconfigure
    // it: a client that stayed connected to it has a write acknowledged...
    cluster.signal_server(0, Signal::SIGCONT);
    assert_eq!(idle.invoke(&write("r2", 2)).await, ok(json!(2), "n1"));
    // ... that the new primary never had, and that the old one drops when it becomes a
    // replica of the new one and copies its data.
    let new_primary_addr = cluster
        .nodes()
        .into_iter()
        .find(|node| node.name == new_primary)
        .unwrap()
        .server;
    let old_primary = cluster.addrs[0].redis_addr();
    cluster
        .wait("the sentinels to make n1 a replica in sync", async |_: &Cluster| {
            matches!(
                client::role(old_primary, TIMEOUT).await,
                Ok(Role::Replica { primary, connected: true, .. }) if primary == new_primary_addr
            )
        })
        .await;
    eprintln!(
        "the resumed old primary acknowledged a write; it became a replica {:.2} s after the pause began, and lost the write",
        paused.elapsed().as_secs_f64()
    );
    assert_eq!(
        until_ok(&clients, 1, read("r2")).await,
        ok(json!(1), &new_primary)
    );
    let mut direct = connect(old_primary).await.unwrap();
    let on_old: Option<u64> = redis::cmd("GET")
        .arg("r2")
        .query_async(&mut direct)
        .await
        .unwrap();
    assert_eq!(
        on_old,
        Some(1),
        "n1 dropped the write it acknowledged when it resynced"
    );
}
