//! "Kill the leader, verify recovery": how long writes stop when the leader of a 3-node
//! cluster is SIGKILLed, for faultline-node and for etcd, measured the same way on one machine.
//!
//! `cargo bench -p faultline-node --bench leader_failover` starts a 3-node faultline-node
//! cluster (this build, release, fsync on) and a 3-node etcd (Debian's `etcd-server`, its v3 JSON
//! gateway, fsync on), both on loopback with their default timing, plus a second etcd with
//! faultline's timing (heartbeat 50 ms, election timeout 300 ms), labelled as such. Then, for
//! one system after the other (kill on faultline, kill on etcd, kill on tuned etcd, repeat, so
//! that machine noise hits all alike), it:
//!
//! 1. runs a steady stream of writes from a few clients (default 4, each one write every 10 ms,
//!    each write with a 500 ms timeout), which follow redirects and move to another node on a
//!    failure as a real client would;
//! 2. waits until every node names the same leader, that leader says it leads and writes
//!    succeed, then a calm second;
//! 3. SIGKILLs the leader and records the time;
//! 4. measures the *unavailability*, from the kill to the first write that succeeds among those
//!    sent after the kill, and the time until a surviving node first names another leader;
//! 5. restarts the killed node on its data dir and waits until it has caught up.
//!
//! It prints each kill, then p50 / p99 / max per system as a Markdown table and etcd's median
//! over faultline's. Only the system being measured has clients; the others are idle.
//!
//! Settings (environment): `FAILOVER_KILLS` (25 per system), `FAILOVER_CLIENTS` (4),
//! `FAILOVER_WRITE_INTERVAL_MS` (10, per client), `FAILOVER_WRITE_TIMEOUT_MS` (500),
//! `FAILOVER_SYSTEMS` (`faultline,etcd,etcd-tuned`), `ETCD_BINARY` (`etcd` from `PATH`;
//! `apt-get install -y etcd-server`). Data and logs live under Cargo's target dir (a real disk,
//! so fsync costs what it costs) and are removed at exit; every process started is killed by
//! its handle at exit, also on Ctrl-C or SIGTERM.
//!
//! The client's timeout shows in etcd's figure: a write that reaches an etcd follower while
//! there is no leader is held, even after a new leader is elected, until etcd's own request
//! timeout (measured: 503 after 7 s, i.e. 5 s plus two election timeouts). So each client
//! waits out its 500 ms before it tries again, and writes come back at the first such retry
//! after the election, near a multiple of 500 ms after the kill. faultline-node answers 307 or
//! 503 at once, so its clients retry every 10 ms. `FAILOVER_WRITE_TIMEOUT_MS` changes this;
//! the time until a new leader is named does not depend on it.
//!
//! The resolution is a few milliseconds: a client sends every 10 ms, staggered, and the
//! status of the survivors is polled every 10 ms. This is a measurement, not a test: it never
//! fails on speed, only when a cluster does not recover within a minute.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::TestCluster;
use hdrhistogram::Histogram;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

/// How often the survivors' status is polled after a kill.
const STATUS_POLL: Duration = Duration::from_millis(10);
/// How long one status request may take.
const STATUS_TIMEOUT: Duration = Duration::from_millis(250);
/// Quiet time with writes flowing before each kill.
const CALM: Duration = Duration::from_secs(1);
/// Longest wait for a cluster to recover, or to become healthy again, before giving up.
const PATIENCE: Duration = Duration::from_secs(60);
/// Writes "flow" when one succeeded at most this long ago.
const FLOWING: Duration = Duration::from_millis(250);

/// Set by Ctrl-C or SIGTERM: every wait stops, and the clusters are torn down.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// What one node says about the cluster.
struct NodeView {
    /// The node it names as leader, if any.
    leader: Option<usize>,
    /// Whether it says it is the leader itself.
    leads: bool,
    /// The last Raft index it applied.
    applied: u64,
}

/// The answer to one write request.
enum Answer {
    Ok,
    /// Not here: ask that node.
    Redirect(usize),
    /// Refused, failed or timed out.
    Failed,
}

/// A 3-node cluster under test: what the measuring loop needs to drive it.
///
/// Every method takes `&self`, so that the writer threads and the conductor share one value.
trait System: Sync {
    /// A short name for progress lines: `faultline`, `etcd`, `etcd-tuned`.
    fn name(&self) -> &str;
    /// The row label, with the timing settings in use.
    fn label(&self) -> &str;
    /// Node names, indexed as everywhere else.
    fn names(&self) -> &[String];
    /// Node `node`'s view, if it answers in time.
    fn status(&self, http: &Client, node: usize) -> Option<NodeView>;
    /// One write of `value` to `key`, sent to `node`.
    fn write(&self, http: &Client, node: usize, key: &str, value: u64) -> Answer;
    /// SIGKILLs node `node` and reaps it.
    fn kill(&self, node: usize) -> Result<()>;
    /// Starts node `node` again on its data dir.
    fn restart(&self, node: usize) -> Result<()>;
    /// The last lines of every node's log, for error messages.
    fn logs(&self) -> String;
}

// ---------------------------------------------------------------------------------------------
// faultline-node

/// This build's faultline-node, started by the integration tests' `TestCluster`.
struct Faultline {
    label: String,
    cluster: Mutex<TestCluster>,
    names: Vec<String>,
    urls: Vec<String>,
}

impl Faultline {
    fn start() -> Faultline {
        let cluster = TestCluster::start(3, &[]);
        Faultline {
            label: "faultline-node (defaults: heartbeat 50 ms, election timeout 150–300 ms)".into(),
            names: cluster.nodes.iter().map(|n| n.name.clone()).collect(),
            urls: cluster
                .nodes
                .iter()
                .map(|n| format!("http://{}", n.client_addr))
                .collect(),
            cluster: Mutex::new(cluster),
        }
    }

    fn cluster(&self) -> std::sync::MutexGuard<'_, TestCluster> {
        // A panic while holding the lock leaves the cluster as usable as before.
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl System for Faultline {
    fn name(&self) -> &str {
        "faultline"
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn names(&self) -> &[String] {
        &self.names
    }

    fn status(&self, http: &Client, node: usize) -> Option<NodeView> {
        let status: Value = http
            .get(format!("{}/status", self.urls[node]))
            .timeout(STATUS_TIMEOUT)
            .send()
            .ok()?
            .json()
            .ok()?;
        Some(NodeView {
            leader: status["leader"]
                .as_str()
                .and_then(|name| self.names.iter().position(|n| n == name)),
            leads: status["role"] == "leader",
            applied: status["applied"].as_u64()?,
        })
    }

    fn write(&self, http: &Client, node: usize, key: &str, value: u64) -> Answer {
        let response = http
            .put(format!("{}/kv/{key}", self.urls[node]))
            .json(&json!({ "value": value }))
            .send();
        let Ok(response) = response else {
            return Answer::Failed;
        };
        match response.status() {
            StatusCode::OK => Answer::Ok,
            // The Location is the leader's client URL followed by the path.
            StatusCode::TEMPORARY_REDIRECT => response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|location| location.to_str().ok())
                .and_then(|location| {
                    self.urls
                        .iter()
                        .position(|url| location.starts_with(&format!("{url}/")))
                })
                .map_or(Answer::Failed, Answer::Redirect),
            _ => Answer::Failed,
        }
    }

    fn kill(&self, node: usize) -> Result<()> {
        self.cluster().kill(node);
        Ok(())
    }

    fn restart(&self, node: usize) -> Result<()> {
        self.cluster().spawn(node);
        Ok(())
    }

    fn logs(&self) -> String {
        self.cluster().logs()
    }
}

// ---------------------------------------------------------------------------------------------
// etcd

/// One etcd member: where it listens and keeps its data.
struct EtcdMember {
    name: String,
    client_url: String,
    data_dir: PathBuf,
    log: PathBuf,
}

/// A 3-node etcd on loopback (member i on 127.0.0.(base+i)), driven through its JSON gateway.
struct Etcd {
    /// `etcd` or `etcd-tuned`.
    name: String,
    label: String,
    /// `e1`, `e2`, `e3`.
    names: Vec<String>,
    binary: PathBuf,
    members: Vec<EtcdMember>,
    /// The command-line flags of each member, the same at every start.
    args: Vec<Vec<String>>,
    /// Raft member ids, learned from each member's status at start-up.
    ids: Vec<u64>,
    /// The running process of each member.
    children: Mutex<Vec<Option<Child>>>,
    /// Removed at drop, after the processes are gone.
    _dir: tempfile::TempDir,
}

/// The version `etcd --version` names, e.g. "3.4.23".
fn etcd_version(binary: &Path) -> Result<String> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "running `{} --version`; install etcd with `apt-get install -y etcd-server`, \
             or name its binary in ETCD_BINARY",
                binary.display()
            )
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("etcd Version: "))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| anyhow!("`{} --version` printed no version", binary.display()))
}

impl Etcd {
    /// Starts three members on 127.0.0.(`first_ip`+0..3) with `timing` flags (none: etcd's
    /// defaults), and learns their member ids. `short_name` and `label` name it in the output.
    fn start(
        binary: PathBuf,
        first_ip: u8,
        timing: &[&str],
        short_name: &str,
        label: String,
    ) -> Result<Etcd> {
        let dir = tempfile::Builder::new()
            .prefix("faultline-etcd-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .context("creating etcd's temp dir")?;
        let addresses: Vec<(String, SocketAddr, SocketAddr)> = (0..3u8)
            .map(|i| {
                let ip = Ipv4Addr::new(127, 0, 0, first_ip + i);
                let [client, peer] = common::ports::reserve_ports(ip)?;
                Ok((
                    format!("e{}", i + 1),
                    SocketAddr::from((ip, client)),
                    SocketAddr::from((ip, peer)),
                ))
            })
            .collect::<Result<_>>()?;
        let initial_cluster = addresses
            .iter()
            .map(|(name, _, peer)| format!("{name}=http://{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let (mut members, mut args) = (Vec::new(), Vec::new());
        for (name, client, peer) in addresses {
            let data_dir = dir.path().join(&name);
            let mut flags: Vec<String> = [
                "--name",
                &name,
                "--data-dir",
                &data_dir.to_string_lossy(),
                "--listen-client-urls",
                &format!("http://{client}"),
                "--advertise-client-urls",
                &format!("http://{client}"),
                "--listen-peer-urls",
                &format!("http://{peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://{peer}"),
                "--initial-cluster",
                &initial_cluster,
                // Ignored on a restart: the data dir knows the cluster by then.
                "--initial-cluster-state",
                "new",
                "--logger",
                "zap",
                "--log-level",
                "warn",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            flags.extend(timing.iter().map(|s| s.to_string()));
            args.push(flags);
            members.push(EtcdMember {
                log: dir.path().join(format!("{name}.log")),
                client_url: format!("http://{client}"),
                data_dir,
                name,
            });
        }
        let mut etcd = Etcd {
            name: short_name.into(),
            label,
            names: members.iter().map(|m| m.name.clone()).collect(),
            binary,
            members,
            args,
            ids: Vec::new(),
            children: Mutex::new(vec![None, None, None]),
            _dir: dir,
        };
        for i in 0..3 {
            etcd.restart(i)?;
        }
        let http = status_client()?;
        let deadline = Instant::now() + PATIENCE;
        for member in &etcd.members {
            let id = loop {
                let status = etcd_status(&http, &member.client_url);
                if let Some(id) = status
                    .as_ref()
                    .and_then(|s| id_field(&s["header"]["member_id"]))
                {
                    break id;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{} did not answer within {PATIENCE:?}\n{}",
                        member.name,
                        etcd.logs()
                    );
                }
                pause(STATUS_POLL)?;
            };
            etcd.ids.push(id);
        }
        Ok(etcd)
    }

    fn children(&self) -> std::sync::MutexGuard<'_, Vec<Option<Child>>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The gateway's `/v3/maintenance/status` of the member at `url`.
fn etcd_status(http: &Client, url: &str) -> Option<Value> {
    http.post(format!("{url}/v3/maintenance/status"))
        .json(&json!({}))
        .timeout(STATUS_TIMEOUT)
        .send()
        .ok()?
        .json()
        .ok()
}

/// A uint64 of the JSON gateway, which sends them as strings.
fn id_field(value: &Value) -> Option<u64> {
    value.as_str()?.parse().ok()
}

impl System for Etcd {
    fn name(&self) -> &str {
        &self.name
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn names(&self) -> &[String] {
        &self.names
    }

    fn status(&self, http: &Client, node: usize) -> Option<NodeView> {
        let status = etcd_status(http, &self.members[node].client_url)?;
        let me = id_field(&status["header"]["member_id"])?;
        // No leader: the field is "0" or left out.
        let leader = id_field(&status["leader"]).filter(|&id| id != 0);
        Some(NodeView {
            leader: leader.and_then(|id| self.ids.iter().position(|&i| i == id)),
            leads: leader == Some(me),
            applied: id_field(&status["raftAppliedIndex"])?,
        })
    }

    fn write(&self, http: &Client, node: usize, key: &str, value: u64) -> Answer {
        // Any member takes writes and forwards them to its leader: no redirects.
        let response = http
            .post(format!("{}/v3/kv/put", self.members[node].client_url))
            .json(&json!({
                "key": BASE64.encode(key),
                "value": BASE64.encode(value.to_string()),
            }))
            .send();
        match response {
            Ok(response) if response.status() == StatusCode::OK => Answer::Ok,
            _ => Answer::Failed,
        }
    }

    fn kill(&self, node: usize) -> Result<()> {
        if let Some(mut child) = self.children()[node].take() {
            child.kill().context("SIGKILL to etcd")?;
            child.wait().context("reaping etcd")?;
        }
        Ok(())
    }

    fn restart(&self, node: usize) -> Result<()> {
        let member = &self.members[node];
        let log = File::options()
            .create(true)
            .append(true)
            .open(&member.log)
            .with_context(|| format!("opening {}", member.log.display()))?;
        let child = Command::new(&self.binary)
            .args(&self.args[node])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.children()[node] = Some(child);
        Ok(())
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for member in &self.members {
            let log = fs::read_to_string(&member.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            text.push_str(&format!(
                "--- {} ({}) ---\n",
                member.name,
                member.data_dir.display()
            ));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for mut child in self.children().iter_mut().filter_map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The measuring loop, the same for every system

/// How the writers behave.
struct Settings {
    kills: usize,
    clients: usize,
    write_interval: Duration,
    write_timeout: Duration,
}

/// What the writers report to the conductor: when writes last succeeded, and the first success
/// among the writes sent after a given instant (the kill).
#[derive(Default)]
struct Progress(Mutex<ProgressState>);

#[derive(Default)]
struct ProgressState {
    last_ok: Option<Instant>,
    watch_from: Option<Instant>,
    first_ok_after: Option<Instant>,
}

impl Progress {
    fn state(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A write sent at `sent` succeeded at `done`.
    fn record_ok(&self, sent: Instant, done: Instant) {
        let mut state = self.state();
        state.last_ok = state.last_ok.max(Some(done));
        if state.watch_from.is_some_and(|from| sent >= from) {
            // Writers report in any order: keep the earliest.
            state.first_ok_after = Some(state.first_ok_after.map_or(done, |t| t.min(done)));
        }
    }

    /// From now on, watch for the first success of a write sent at or after `from`.
    fn watch_from(&self, from: Instant) {
        let mut state = self.state();
        state.watch_from = Some(from);
        state.first_ok_after = None;
    }

    fn first_ok_after(&self) -> Option<Instant> {
        self.state().first_ok_after
    }

    fn flowing(&self) -> bool {
        self.state().last_ok.is_some_and(|t| t.elapsed() <= FLOWING)
    }
}

/// One client: writes `failover-<client>` every `write_interval` until `stop`. It sticks to the
/// node that last took a write, follows a redirect at once, and moves to the next node after
/// a failure (the next attempt is the next write, one interval later).
fn write_steadily(
    system: &dyn System,
    client: usize,
    settings: &Settings,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<()> {
    let http = Client::builder()
        .timeout(settings.write_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building a writer's HTTP client")?;
    let nodes = system.names().len();
    let key = format!("failover-{client}");
    let mut node = client % nodes;
    // Clients are spread evenly over the interval, so that one write goes out every
    // interval / clients.
    let mut next =
        Instant::now() + settings.write_interval * client as u32 / settings.clients as u32;
    let mut value = 0;
    while !stop.load(Ordering::Relaxed) && !INTERRUPTED.load(Ordering::Relaxed) {
        thread::sleep(next.saturating_duration_since(Instant::now()));
        next = (next + settings.write_interval).max(Instant::now());
        value += 1;
        let sent = Instant::now();
        let mut target = node;
        for _hop in 0..nodes {
            match system.write(&http, target, &key, value) {
                Answer::Ok => {
                    progress.record_ok(sent, Instant::now());
                    node = target;
                    break;
                }
                Answer::Redirect(leader) => target = leader,
                Answer::Failed => {
                    node = (target + 1) % nodes;
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Sleeps `duration`, or returns an error at once on Ctrl-C.
fn pause(duration: Duration) -> Result<()> {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        if INTERRUPTED.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        thread::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20)),
        );
    }
    Ok(())
}

/// The conductor's client: each status request carries its own `STATUS_TIMEOUT`.
fn status_client() -> Result<Client> {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the status client")
}

/// Waits until every node answers and names the same leader, which says it leads, writes
/// flow, and `rejoined` (a restarted node and an index) has applied that index. Returns the
/// leader.
fn wait_until_healthy(
    system: &dyn System,
    http: &Client,
    progress: &Progress,
    rejoined: Option<(usize, u64)>,
) -> Result<usize> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let views: Vec<Option<NodeView>> = (0..system.names().len())
            .map(|i| system.status(http, i))
            .collect();
        let leader = views[0].as_ref().and_then(|v| v.leader);
        let agreed = views.iter().all(|v| {
            v.as_ref()
                .is_some_and(|v| v.leader.is_some() && v.leader == leader)
        });
        if let Some(leader) = leader.filter(|_| agreed)
            && views[leader].as_ref().is_some_and(|v| v.leads)
            && rejoined.is_none_or(|(node, index)| {
                views[node].as_ref().is_some_and(|v| v.applied >= index)
            })
            && progress.flowing()
        {
            return Ok(leader);
        }
        if Instant::now() > deadline {
            bail!(
                "{}: not healthy within {PATIENCE:?} (writes flowing: {})\n{}",
                system.label(),
                progress.flowing(),
                system.logs()
            );
        }
        pause(STATUS_POLL)?;
    }
}

/// One kill's figures.
struct Kill {
    victim: usize,
    new_leader: usize,
    /// From the SIGKILL to the first success of a write sent after it.
    unavailable: Duration,
    /// From the SIGKILL to the first status of a survivor that names another leader.
    leader_known: Duration,
}

/// Kills the leader once, with writers running, and brings the cluster back.
fn kill_leader_once(system: &dyn System, settings: &Settings) -> Result<Kill> {
    let http = status_client()?;
    let progress = Progress::default();
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let writers: Vec<_> = (0..settings.clients)
            .map(|client| {
                let (progress, stop) = (&progress, &stop);
                scope.spawn(move || write_steadily(system, client, settings, progress, stop))
            })
            .collect();
        let outcome = conduct(system, &http, &progress);
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer
                .join()
                .map_err(|_| anyhow!("a writer thread panicked"))??;
        }
        outcome
    })
}

/// The conductor's part of `kill_leader_once`.
fn conduct(system: &dyn System, http: &Client, progress: &Progress) -> Result<Kill> {
    wait_until_healthy(system, http, progress, None)?;
    pause(CALM)?;
    let victim = wait_until_healthy(system, http, progress, None)?;
    let survivors: Vec<usize> = (0..system.names().len()).filter(|&i| i != victim).collect();

    let killed_at = Instant::now();
    progress.watch_from(killed_at);
    system.kill(victim)?;

    let mut leader_known: Option<(Duration, usize)> = None;
    let unavailable = loop {
        if leader_known.is_none() {
            leader_known = survivors.iter().find_map(|&i| {
                let leader = system.status(http, i)?.leader.filter(|&l| l != victim)?;
                Some((killed_at.elapsed(), leader))
            });
        }
        if let (Some(_), Some(ok)) = (leader_known, progress.first_ok_after()) {
            break ok - killed_at;
        }
        if killed_at.elapsed() > PATIENCE {
            bail!(
                "{}: no recovery within {PATIENCE:?} of killing {}\n{}",
                system.label(),
                system.names()[victim],
                system.logs()
            );
        }
        pause(STATUS_POLL)?;
    };
    let (leader_known, new_leader) = leader_known.expect("the loop ends only once known");

    // The restarted node has caught up once it applied what the others had when it came back.
    let caught_up_at = survivors
        .iter()
        .filter_map(|&i| system.status(http, i))
        .map(|v| v.applied)
        .max()
        .unwrap_or(0);
    system.restart(victim)?;
    wait_until_healthy(system, http, progress, Some((victim, caught_up_at)))?;
    Ok(Kill {
        victim,
        new_leader,
        unavailable,
        leader_known,
    })
}

/// Every kill of one system, as histograms of microseconds.
struct Figures {
    unavailable: Histogram<u64>,
    leader_known: Histogram<u64>,
}

impl Figures {
    fn new() -> Figures {
        let histogram = || Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
        Figures {
            unavailable: histogram(),
            leader_known: histogram(),
        }
    }

    fn add(&mut self, kill: &Kill) -> Result<()> {
        self.unavailable
            .record(kill.unavailable.as_micros() as u64)?;
        self.leader_known
            .record(kill.leader_known.as_micros() as u64)?;
        Ok(())
    }
}

/// p50, p99 and max in milliseconds.
fn percentiles(histogram: &Histogram<u64>) -> String {
    let ms = |micros: u64| micros as f64 / 1000.0;
    format!(
        "{:.0} | {:.0} | {:.0}",
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max())
    )
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .with_context(|| format!("{name}={value:?} is not a whole number")),
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(e) => Err(e).with_context(|| format!("reading {name}")),
    }
}

/// Ctrl-C and SIGTERM set `INTERRUPTED` instead of ending the process, so that every node is
/// killed and every temp dir removed on the way out.
fn catch_interrupts() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("building the signal runtime")?;
    // Registered here, before any node starts; waited for on a thread of their own.
    let (mut interrupt, mut terminate) = {
        let _entered = runtime.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        )
    };
    thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        });
        eprintln!("interrupted: stopping every node");
        INTERRUPTED.store(true, Ordering::Relaxed);
    });
    Ok(())
}

/// The systems in `FAILOVER_SYSTEMS`, started: faultline first when it is one of them.
fn start_systems(wanted: &[&str]) -> Result<Vec<Box<dyn System>>> {
    let etcd_binary = PathBuf::from(std::env::var_os("ETCD_BINARY").unwrap_or("etcd".into()));
    // Checked before anything starts: a missing etcd is the likeliest failure.
    let etcd_version = if wanted.iter().any(|w| w.starts_with("etcd")) {
        etcd_version(&etcd_binary)?
    } else {
        String::new()
    };
    let mut systems: Vec<Box<dyn System>> = Vec::new();
    if wanted.contains(&"faultline") {
        systems.push(Box::new(Faultline::start()));
    }
    if wanted.contains(&"etcd") {
        let label =
            format!("etcd {etcd_version} (defaults: heartbeat 100 ms, election timeout 1000 ms)");
        let etcd = Etcd::start(etcd_binary.clone(), 21, &[], "etcd", label)?;
        systems.push(Box::new(etcd));
    }
    if wanted.contains(&"etcd-tuned") {
        let label = format!(
            "etcd {etcd_version} (tuned like faultline: heartbeat 50 ms, election timeout 300 ms)"
        );
        let timing = ["--heartbeat-interval", "50", "--election-timeout", "300"];
        let etcd = Etcd::start(etcd_binary, 31, &timing, "etcd-tuned", label)?;
        systems.push(Box::new(etcd));
    }
    Ok(systems)
}

/// Kills each system's leader `settings.kills` times, one system after the other, printing
/// every kill, then the table.
fn measure(systems: &[Box<dyn System>], settings: &Settings) -> Result<()> {
    println!(
        "leader failover: 3 nodes per system on loopback, fsync on; {} clients each writing every \
         {:?} with a {:?} timeout; {} kills per system, alternating one kill per system",
        settings.clients, settings.write_interval, settings.write_timeout, settings.kills
    );
    let started = Instant::now();
    let mut figures: Vec<Figures> = systems.iter().map(|_| Figures::new()).collect();
    for round in 1..=settings.kills {
        for (system, figures) in systems.iter().zip(&mut figures) {
            let kill = kill_leader_once(system.as_ref(), settings)?;
            figures.add(&kill)?;
            let names = system.names();
            println!(
                "  kill {round:>2}/{}  {:<10} killed {} -> {} named leader after {:>5.0} ms, \
                 writes ok again after {:>5.0} ms",
                settings.kills,
                system.name(),
                names[kill.victim],
                names[kill.new_leader],
                kill.leader_known.as_secs_f64() * 1000.0,
                kill.unavailable.as_secs_f64() * 1000.0,
            );
        }
    }

    println!(
        "\n{} kills per system in {:.0} s. Unavailable: from the SIGKILL of the leader to the \
         first successful write sent after it. New leader named: until a survivor's status \
         names one.\n",
        settings.kills,
        started.elapsed().as_secs_f64()
    );
    println!(
        "| system | kills | unavailable p50 (ms) | p99 | max | new leader named p50 (ms) | p99 | max |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (system, figures) in systems.iter().zip(&figures) {
        println!(
            "| {} | {} | {} | {} |",
            system.label(),
            figures.unavailable.len(),
            percentiles(&figures.unavailable),
            percentiles(&figures.leader_known)
        );
    }
    if systems.first().is_some_and(|s| s.name() == "faultline") {
        let faultline_median = figures[0].unavailable.value_at_quantile(0.5) as f64;
        for (system, figures) in systems.iter().zip(&figures).skip(1) {
            println!(
                "\n{} / faultline-node, median unavailable: {:.2}x",
                system.name(),
                figures.unavailable.value_at_quantile(0.5) as f64 / faultline_median
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let settings = Settings {
        kills: env_number("FAILOVER_KILLS", 25)?.max(1) as usize,
        clients: env_number("FAILOVER_CLIENTS", 4)?.max(1) as usize,
        write_interval: Duration::from_millis(env_number("FAILOVER_WRITE_INTERVAL_MS", 10)?.max(1)),
        write_timeout: Duration::from_millis(env_number("FAILOVER_WRITE_TIMEOUT_MS", 500)?.max(1)),
    };
    let wanted =
        std::env::var("FAILOVER_SYSTEMS").unwrap_or_else(|_| "faultline,etcd,etcd-tuned".into());
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    if let Some(unknown) = wanted
        .iter()
        .find(|w| !["faultline", "etcd", "etcd-tuned"].contains(w))
    {
        bail!("FAILOVER_SYSTEMS: unknown system {unknown:?}; known: faultline, etcd, etcd-tuned");
    }
    catch_interrupts()?;
    let outcome = start_systems(&wanted).and_then(|systems| measure(&systems, &settings));
    // The systems are dropped by now: every process killed, every temp dir removed.
    if INTERRUPTED.load(Ordering::Relaxed) {
        eprintln!("interrupted: every node stopped, its data removed");
        std::process::exit(130);
    }
    outcome
}
