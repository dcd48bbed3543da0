//! Starts real `faultline-node` processes for integration tests and benchmarks.
//!
//! Node i listens on 127.0.0.(10+i), as in a Faultline run, on free ports; every node has
//! its own data dir and log file under one temporary directory, removed at the end (kept
//! when the test fails, so its logs can be read: the path is printed).
//!
//! That directory is under Cargo's target dir (`CARGO_TARGET_TMPDIR`, which Cargo sets for
//! integration tests and benches alike), on the same disk as the build: the default temp
//! dir may be a tmpfs, where fsync costs nothing and proves nothing.

#![allow(dead_code)] // each test binary uses a different part of it

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

/// One node process and where it lives.
pub struct TestNode {
    pub name: String,
    pub client_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// Extra environment of this node's process.
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

/// A cluster of real node processes.
pub struct TestCluster {
    pub nodes: Vec<TestNode>,
    dir: Option<tempfile::TempDir>,
    extra_args: Vec<String>,
    /// The node binary: this build's, unless `new` was told otherwise.
    binary: PathBuf,
    pub http: Client,
}

// The harness's rule for node ports (below the kernel's ephemeral range, so that no
// outgoing connection takes a port while its node is down and keeps it from restarting).
#[path = "../../../harness/src/ports.rs"]
pub mod ports;

impl TestCluster {
    /// Starts `n` nodes with the given extra flags and waits until they elect a leader.
    pub fn start(n: usize, extra_args: &[&str]) -> TestCluster {
        TestCluster::new(n, extra_args).start_all()
    }

    /// Starts every node of a cluster set up by `new` and waits until they elect a leader.
    pub fn start_all(mut self) -> TestCluster {
        for i in 0..self.nodes.len() {
            self.spawn(i);
        }
        self.wait_for_leader(Duration::from_secs(20));
        self
    }

    /// Sets up `n` nodes with the given extra flags but starts none of them (see `spawn`).
    pub fn new(n: usize, extra_args: &[&str]) -> TestCluster {
        let dir = tempfile::Builder::new()
            .prefix("faultline-it-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir");
        let nodes = (1..=n)
            .map(|i| {
                let ip = Ipv4Addr::new(127, 0, 0, 10 + i as u8);
                let name = format!("n{i}");
                let data_dir = dir.path().join(&name);
                let [client_port, peer_port] =
                    ports::reserve_ports(ip).expect("reserving two ports");
                TestNode {
                    client_addr: SocketAddr::from((ip, client_port)),
                    peer_addr: SocketAddr::from((ip, peer_port)),
                    log: dir.path().join(format!("{name}.log")),
                    data_dir,
                    name,
                    env: Vec::new(),
                    child: None,
                }
            })
            .collect();
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        TestCluster {
            nodes,
            dir: Some(dir),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            binary: PathBuf::from(env!("CARGO_BIN_EXE_faultline-node")),
            http,
        }
    }

    /// Runs `binary` instead of this build's node (to compare two builds in one script).
    pub fn with_binary(mut self, binary: PathBuf) -> TestCluster {
        self.binary = binary;
        self
    }

    /// The command line of node `i`.
    pub fn command(&self, i: usize) -> Command {
        let node = &self.nodes[i];
        let peers: Vec<String> = self
            .nodes
            .iter()
            .filter(|p| p.name != node.name)
            .map(|p| format!("{}={}", p.name, p.peer_addr))
            .collect();
        let mut command = Command::new(&self.binary);
        command
            .arg("--id")
            .arg(&node.name)
            .arg("--client-addr")
            .arg(node.client_addr.to_string())
            .arg("--peer-addr")
            .arg(node.peer_addr.to_string())
            .arg("--peers")
            .arg(peers.join(","))
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(&self.extra_args)
            .envs(node.env.iter().map(|(key, value)| (key, value)));
        command
    }

    /// Starts node `i` (again), appending to its log file.
    pub fn spawn(&mut self, i: usize) {
        assert!(
            self.nodes[i].child.is_none(),
            "{} is already running",
            self.nodes[i].name
        );
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.nodes[i].log)
            .unwrap();
        let child = self
            .command(i)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting faultline-node");
        self.nodes[i].child = Some(child);
    }

    /// SIGKILL node `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM node `i` and wait for it to exit; returns whether it exited successfully.
    pub fn terminate(&mut self, i: usize) -> bool {
        let Some(mut child) = self.nodes[i].child.take() else {
            return true;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                return false;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Whether node `i`'s process has exited by itself; returns its exit status if so.
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let child = self.nodes[i].child.as_mut()?;
        let status = child.try_wait().unwrap()?;
        self.nodes[i].child = None;
        Some(status)
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{path}", self.nodes[i].client_addr)
    }

    /// `GET /status` of node `i`, if it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        let response = self
            .http
            .get(self.url(i, "/status"))
            .timeout(Duration::from_secs(1))
            .send()
            .ok()?;
        response.json().ok()
    }

    /// Waits until a running node is leader and every running node knows it; returns it.
    pub fn wait_for_leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let running: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.is_running(i))
                .collect();
            let statuses: Vec<Option<Value>> = running.iter().map(|&i| self.status(i)).collect();
            let leader = running
                .iter()
                .zip(&statuses)
                .find_map(|(&i, s)| (s.as_ref()?["role"] == "leader").then_some(i));
            if let Some(leader) = leader {
                let name = &self.nodes[leader].name;
                let agreed = statuses
                    .iter()
                    .all(|s| s.as_ref().is_some_and(|s| s["leader"] == json!(name)));
                if agreed {
                    return leader;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no leader within {timeout:?}; statuses: {statuses:?}\n{}",
                    self.logs()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Waits until node `i` has applied at least `index`.
    pub fn wait_for_applied(&self, i: usize, index: u64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.status(i)
                && status["applied"].as_u64().unwrap_or(0) >= index
            {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not apply {index} within {timeout:?}: {:?}",
                    self.nodes[i].name,
                    self.status(i)
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// PUT through the leader, retrying while leadership moves; returns when acknowledged.
    pub fn put_acknowledged(&self, key: &str, value: Value) {
        self.write_acknowledged("PUT", &format!("/kv/{key}"), json!({ "value": value }));
    }

    /// Sends a write to whichever node leads, retrying redirects, 503s and connection
    /// errors until it is acknowledged with a 2xx.
    pub fn write_acknowledged(&self, method: &str, path: &str, body: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.send_to_leader(method, path, &body, &[]) {
                Ok(response) if response.status().is_success() => return response.json().unwrap(),
                Ok(response) => {
                    last = format!(
                        "{}: {}",
                        response.status(),
                        response.text().unwrap_or_default()
                    )
                }
                Err(e) => last = e.to_string(),
            }
            sleep(Duration::from_millis(50));
        }
        panic!("write {path} not acknowledged within 30 s; last answer: {last}");
    }

    /// One request with a JSON body and these headers to the node that leads now.
    fn send_to_leader(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        headers: &[(&str, String)],
    ) -> reqwest::Result<reqwest::blocking::Response> {
        let leader = self.wait_for_leader(Duration::from_secs(20));
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, self.url(leader, path)).json(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send()
    }

    /// A linearizable read through the leader: the value, or None for 404.
    pub fn read(&self, key: &str) -> Option<Value> {
        let leader = self.wait_for_leader(Duration::from_secs(20));
        let response = self
            .http
            .get(self.url(leader, &format!("/kv/{key}")))
            .send()
            .unwrap();
        match response.status() {
            StatusCode::OK => Some(response.json::<Value>().unwrap()["value"].clone()),
            StatusCode::NOT_FOUND => None,
            other => panic!(
                "read {key}: {other}: {}",
                response.text().unwrap_or_default()
            ),
        }
    }

    /// The value of metric `name` (e.g. `faultline_raft_ticks_total`) in node `i`'s
    /// `GET /metrics`.
    pub fn metric(&self, i: usize, name: &str) -> f64 {
        let text = self
            .http
            .get(self.url(i, "/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    }

    /// A field of node `i`'s `GET /status` as a number, if the node answers.
    pub fn status_u64(&self, i: usize, field: &str) -> Option<u64> {
        self.status(i)?[field].as_u64()
    }

    /// Polls `check` every 50 ms until it returns `Some`, at most `timeout`; panics saying
    /// `what` did not happen (with every node's log) otherwise.
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if Instant::now() > deadline {
                panic!("{what}: not within {timeout:?}\n{}", self.logs());
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Waits for node `i`'s process to exit by itself, at most `timeout`; panics if it is
    /// still running then.
    pub fn wait_for_exit(&mut self, i: usize, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited(i) {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} still runs after {timeout:?}\n{}",
                    self.nodes[i].name,
                    self.logs()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// A stale (local) read on node `i`: the value, or None for 404.
    pub fn stale_read(&self, i: usize, key: &str) -> Option<Value> {
        let response = self
            .http
            .get(self.url(i, &format!("/kv/{key}?stale=true")))
            .send()
            .unwrap_or_else(|e| panic!("stale read of {key} on {}: {e}", self.nodes[i].name));
        match response.status() {
            StatusCode::OK => Some(response.json::<Value>().unwrap()["value"].clone()),
            StatusCode::NOT_FOUND => None,
            other => panic!(
                "stale read of {key} on {}: {other}: {}",
                self.nodes[i].name,
                response.text().unwrap_or_default()
            ),
        }
    }

    /// Opens a client session (`POST /sessions`) through whichever node leads, retrying
    /// until one is opened (a retried opening opens another session, which is harmless), and
    /// returns its id.
    pub fn open_session(&self) -> u64 {
        let answer = self.write_acknowledged("POST", "/sessions", Value::Null);
        answer["client_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no client_id in {answer}"))
    }

    /// Sends a write with session headers (`client-id`, `request-seq`) to whichever node
    /// leads, retrying only answers that say the write did not happen (307, 503) and
    /// connection errors (safe: the session makes a retry apply once). Returns the first
    /// other answer: its status and JSON body.
    pub fn session_write(
        &self,
        method: &str,
        path: &str,
        body: Value,
        client_id: u64,
        seq: u64,
    ) -> (StatusCode, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        let session = [
            ("client-id", client_id.to_string()),
            ("request-seq", seq.to_string()),
        ];
        while Instant::now() < deadline {
            match self.send_to_leader(method, path, &body, &session) {
                Ok(response)
                    if response.status() == StatusCode::TEMPORARY_REDIRECT
                        || response.status() == StatusCode::SERVICE_UNAVAILABLE =>
                {
                    last = format!(
                        "{}: {}",
                        response.status(),
                        response.text().unwrap_or_default()
                    )
                }
                Ok(response) => {
                    let status = response.status();
                    return (status, response.json().unwrap_or(Value::Null));
                }
                Err(e) => last = e.to_string(),
            }
            sleep(Duration::from_millis(50));
        }
        panic!(
            "write {path} (client {client_id}, seq {seq}) got no answer within 30 s; last: {last}"
        );
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for node in &self.nodes {
            let log = fs::read_to_string(&node.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            text.push_str(&format!(
                "--- {} (last lines of {}) ---\n",
                node.name,
                node.log.display()
            ));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// The temporary directory holding data dirs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("present until drop").path()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "test failed; node data and logs kept in {}",
                dir.keep().display()
            );
        }
    }
}

/// The snapshot files (`snapshot-<index>-<term>.snap`) in a data dir, sorted by name.
pub fn snapshot_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(data_dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", data_dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".snap"))
        })
        .collect();
    files.sort();
    files
}
