//! Any system a user describes in a TOML file (`--system-file`): command templates that
//! start a node, optional commands that say whether it is ready and whom it takes for the
//! leader, and its client: the Faultline HTTP contract, or a program of the user's that speaks
//! JSON lines ([`super::exec_client`]). `schema` is the format and its errors, `template` the
//! placeholders; this module runs what the file says.

mod schema;
pub(super) mod template;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use faultline_workloads::{BoxFuture, ClientFactory, Endpoint, HttpContractClients};
use serde_json::Value;
use tokio::time::{Instant, timeout};
use tracing::debug;

use super::exec_client::{ClientNode, ExecClients};
use super::faultline::{contract_local_list, contract_status};
use super::{Dials, HostProgram, NodeCommand, System, find_program, probe};
use crate::node_status::NodeStatus;
use crate::store::{NodeRecord, SystemRecord};
#[cfg(test)]
pub use schema::CLIENT_PLACEHOLDERS;
pub use schema::{ClientKind, FileError, FileHosts, SystemFile};

/// A node's `/status`, a TCP connect, must answer within this.
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);

/// A `ready` or `leader` command must end within this (a program may take a while to start
/// on a busy machine), else the node counts as not answering.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a node's answer to `ready` or `leader` is taken as still true: the harness asks
/// every node several times a second, and a program per question would load the machine
/// the test runs on.
const PROBE_REFRESH: Duration = Duration::from_millis(500);

/// A node's last probe: when, and what it said (`None`: not answering).
type ProbeSlot = Arc<tokio::sync::Mutex<Option<(Instant, Option<NodeStatus>)>>>;

/// A system described by a file.
pub struct FileSystem {
    file: SystemFile,
    path: PathBuf,
    /// The file's directory, absolute: `{system_dir}`.
    dir: PathBuf,
    version: Option<String>,
    http: reqwest::Client,
    /// The last answer of each node's `ready` or `leader` command, and when it came.
    probes: Mutex<BTreeMap<String, ProbeSlot>>,
    /// Every node, known once the first is prepared: the probes' placeholders name them.
    cluster: OnceLock<Vec<NodeRecord>>,
}

/// Reads and checks the system file at `path`, without looking for what it needs.
fn read(path: &Path) -> Result<SystemFile, FileError> {
    let text = crate::toml_input::read(path).map_err(|refusal| FileError {
        path: path.to_path_buf(),
        line: refusal.line,
        field: None,
        message: refusal.message,
    })?;
    schema::parse(path, &text)
}

/// The hosts the system file at `path` puts its nodes on (`[hosts]`), if it names any. The
/// whole file is checked: an error anywhere in it says where.
pub fn hosts_of(path: &Path) -> Result<Option<FileHosts>> {
    Ok(read(path)?.hosts)
}

impl FileSystem {
    /// Reads the file at `path` (at most [`crate::toml_input::MAX_FILE_BYTES`]) and checks
    /// that what it needs is installed: here, or for the node's program, on the hosts when
    /// the nodes run `on_hosts` (which are checked for it once connected).
    /// A `version` command that does not end within [`probe::VERSION_TIMEOUT`] is an error
    /// naming its line.
    pub async fn load(path: &Path, on_hosts: bool) -> Result<FileSystem> {
        let file = read(path)?;
        let dir = std::path::absolute(path)
            .with_context(|| format!("finding the directory of {}", path.display()))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for (program, line) in &file.requires {
            if find_program(program).is_none() {
                return Err(FileError::at(
                    path,
                    *line,
                    "requires",
                    format!("`{program}` is not installed (not found on the PATH)"),
                )
                .into());
            }
        }
        let mut programs = Vec::new();
        if !on_hosts {
            programs.push((&file.start, "node.start", file.lines.start));
        }
        if let (ClientKind::Exec(command), Some(line)) = (&file.client, file.lines.client_command) {
            programs.push((command, "client.command", line));
        }
        for (template, field, line) in programs {
            if let Some(program) = template.literal_program()
                && find_program(program).is_none()
            {
                return Err(FileError::at(
                    path,
                    line,
                    field,
                    format!("the program `{program}` is not found (on the PATH, or as a path)"),
                )
                .into());
            }
        }
        let version = match (&file.version, file.lines.version) {
            (Some(command), Some(line)) => {
                let argv = command.render(|_| dir.display().to_string());
                Some(first_line_of(&argv).await.map_err(|e| {
                    FileError::at(path, line, "version", format!("{} failed: {e}", argv[0]))
                })?)
            }
            _ => None,
        };
        Ok(FileSystem {
            file,
            path: path.to_path_buf(),
            dir,
            version,
            http: reqwest::Client::builder()
                .timeout(STATUS_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            probes: Mutex::new(BTreeMap::new()),
            cluster: OnceLock::new(),
        })
    }

    /// The value of a node placeholder for `node`.
    fn node_value(
        &self,
        name: &str,
        node: &NodeRecord,
        all: &[NodeRecord],
        dial: Dials<'_>,
    ) -> String {
        let list = |nodes: &mut dyn Iterator<Item = String>| nodes.collect::<Vec<_>>().join(",");
        match name {
            "id" => node.name.clone(),
            "index" => all
                .iter()
                .position(|n| n.name == node.name)
                .map_or(0, |i| i + 1)
                .to_string(),
            "ip" => node.ip.to_string(),
            "client_port" => node.client_addr.port().to_string(),
            "peer_port" => node.peer_addr.port().to_string(),
            "client_addr" => node.client_addr.to_string(),
            "peer_addr" => node.peer_addr.to_string(),
            "data_dir" => node.data_dir().display().to_string(),
            "node_dir" => node.dir.display().to_string(),
            "peers" => {
                list(&mut all.iter().filter(|p| p.name != node.name).map(|peer| {
                    match dial(&peer.name) {
                        direct if direct == peer.peer_addr => format!("{}={direct}", peer.name),
                        proxy => format!("{}={}@{proxy}", peer.name, peer.peer_addr),
                    }
                }))
            }
            "cluster" => list(&mut all.iter().map(|n| format!("{}={}", n.name, n.peer_addr))),
            "cluster_urls" => list(
                &mut all
                    .iter()
                    .map(|n| format!("{}=http://{}", n.name, n.peer_addr)),
            ),
            "system_dir" => self.dir.display().to_string(),
            "run_dir" => run_dir(node).display().to_string(),
            other => {
                unreachable!("the file was checked to hold only known placeholders, not {other}")
            }
        }
    }

    /// A node's `ready` or `leader` command, as it runs now.
    fn probe_argv(
        &self,
        template: &template::Template,
        node: &NodeRecord,
        all: &[NodeRecord],
    ) -> Vec<String> {
        // Probes ask the node itself; how its peers reach each other does not matter here.
        let dial = |to: &str| {
            all.iter()
                .find(|n| n.name == to)
                .map_or(node.peer_addr, |n| n.peer_addr)
        };
        template.render(|name| self.node_value(name, node, all, &dial))
    }

    /// How `node` is, by the file's own commands (cached for [`PROBE_REFRESH`]).
    async fn probe(&self, node: &NodeRecord, all: &[NodeRecord]) -> Option<NodeStatus> {
        let slot = self
            .probes
            .lock()
            .expect("never poisoned")
            .entry(node.name.clone())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some((at, status)) = &*slot
            && at.elapsed() < PROBE_REFRESH
        {
            return status.clone();
        }
        let status = self.probe_now(node, all).await;
        *slot = Some((Instant::now(), status.clone()));
        status
    }

    async fn probe_now(&self, node: &NodeRecord, all: &[NodeRecord]) -> Option<NodeStatus> {
        if let Some(leader) = &self.file.leader {
            let output = run_probe(&self.probe_argv(leader, node, all)).await?;
            return Some(answering(node, leader_named(output.trim(), all)));
        }
        let answers = match &self.file.ready {
            Some(ready) => run_probe(&self.probe_argv(ready, node, all))
                .await
                .is_some(),
            None => accepts_connections(node.client_addr).await,
        };
        answers.then(|| answering(node, None))
    }
}

impl System for FileSystem {
    fn record(&self) -> SystemRecord {
        SystemRecord {
            name: self.file.name.clone(),
            version: self.version.clone(),
            file: Some(self.path.clone()),
        }
    }

    fn needs_namespaces(&self) -> bool {
        self.file.namespaces
    }

    /// `node.start`'s program, installed on every host; its arguments are filled in with
    /// the hosts' addresses and directories. A command that needs this machine's files
    /// (`{system_dir}`) cannot run there.
    fn on_hosts(&self) -> Result<HostProgram, String> {
        let line = self.file.lines.start;
        if self.file.start.uses("system_dir") {
            return Err(format!(
                "node.start (line {line}) names {{system_dir}}, a directory on this machine; on \
                 hosts, the node's program and its files must be installed there"
            ));
        }
        let Some(program) = self.file.start.literal_program() else {
            return Err(format!(
                "node.start's program (line {line}) is made of placeholders; on hosts, name the \
                 program installed there"
            ));
        };
        Ok(HostProgram::Installed {
            program: program.to_string(),
            fix: format!(
                "install it there, or name it in node.start (line {line}) by its path on the \
                 hosts"
            ),
            // The file's own `version` command says, here.
            version_flag: None,
            version: None,
        })
    }

    fn prepare(&self, _node: &NodeRecord, all: &[NodeRecord]) -> Result<()> {
        self.cluster.get_or_init(|| all.to_vec());
        Ok(())
    }

    fn launch(
        &self,
        node: &NodeRecord,
        all: &[NodeRecord],
        dial: Dials<'_>,
    ) -> Result<NodeCommand> {
        let mut argv = self
            .file
            .start
            .render(|name| self.node_value(name, node, all, dial));
        let program = PathBuf::from(argv.remove(0));
        Ok(NodeCommand {
            program,
            args: argv,
            log: node.log_path(),
        })
    }

    /// Only through a `leader` command or the HTTP contract's `/status`.
    fn reports_leader(&self) -> bool {
        self.file.leader.is_some() || matches!(self.file.client, ClientKind::Http)
    }

    /// With an http client and no `leader` command, the node's `/status`; else the `leader`
    /// command; else whether it is ready (the `ready` command, or a TCP connect to its client
    /// address), as a follower that knows of no leader.
    fn status<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Option<NodeStatus>> {
        Box::pin(async move {
            if matches!(self.file.client, ClientKind::Http) && self.file.leader.is_none() {
                return contract_status(&self.http, node).await;
            }
            let all = self
                .cluster
                .get()
                .map_or(std::slice::from_ref(node), Vec::as_slice);
            self.probe(node, all).await
        })
    }

    fn local_list<'a>(
        &'a self,
        node: &'a NodeRecord,
        key: &'a str,
    ) -> BoxFuture<'a, Option<Vec<Value>>> {
        Box::pin(async move {
            match self.file.client {
                ClientKind::Http => contract_local_list(&self.http, node, key).await,
                // An exec client reads through the system's own client; a node's own copy
                // is not something it can be asked for.
                ClientKind::Exec(_) => None,
            }
        })
    }

    fn clients(&self, all: &[NodeRecord], timeout: Duration) -> Result<Arc<dyn ClientFactory>> {
        match &self.file.client {
            ClientKind::Http => {
                let endpoints: Vec<Endpoint> = all
                    .iter()
                    .map(|node| Endpoint::new(node.name.clone(), node.client_url()))
                    .collect();
                Ok(Arc::new(HttpContractClients::new(&endpoints, timeout)?))
            }
            ClientKind::Exec(command) => {
                let nodes = all
                    .iter()
                    .map(|node| ClientNode {
                        name: node.name.clone(),
                        client_addr: node.client_addr,
                    })
                    .collect();
                let run_dir = all.first().map(run_dir).unwrap_or_default();
                Ok(Arc::new(ExecClients::new(
                    command.clone(),
                    nodes,
                    timeout,
                    &run_dir,
                    &self.dir,
                )))
            }
        }
    }
}

/// A node that answers, and whom it takes for the leader.
fn answering(node: &NodeRecord, leader: Option<String>) -> NodeStatus {
    let role = if leader.as_deref() == Some(node.name.as_str()) {
        "leader"
    } else {
        "follower"
    };
    NodeStatus {
        id: node.name.clone(),
        role: role.to_string(),
        // Nothing says which term or index a node is at: zeros, which the stall watch takes
        // as a log that does not grow.
        term: 0,
        leader,
        commit: 0,
        applied: 0,
        last_log_index: 0,
        snapshot_index: 0,
        // No fingerprints, and no membership told: the report draws none.
        ..NodeStatus::default()
    }
}

/// The node a `leader` command named: by name, IP, or client or peer address; `None` for
/// an empty answer (no leader known) or one that names no node.
fn leader_named(answer: &str, all: &[NodeRecord]) -> Option<String> {
    if answer.is_empty() {
        return None;
    }
    let found = all.iter().find(|n| {
        n.name == answer
            || n.ip.to_string() == answer
            || n.client_addr.to_string() == answer
            || n.peer_addr.to_string() == answer
    });
    if found.is_none() {
        debug!(answer, "the leader command named no node");
    }
    found.map(|n| n.name.clone())
}

/// Runs a probe; its standard output if it exits 0 within [`PROBE_TIMEOUT`] (else it is
/// killed, with whatever it started).
async fn run_probe(argv: &[String]) -> Option<String> {
    let output = match probe::run(&argv[0], &argv[1..], PROBE_TIMEOUT).await {
        Ok(output) => output,
        Err(e) => {
            debug!(program = argv[0], "the probe did not answer: {e}");
            return None;
        }
    };
    if !output.status.success() {
        debug!(
            program = argv[0],
            status = %output.status,
            stderr = %String::from_utf8_lossy(&output.stderr),
            "the probe failed"
        );
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn accepts_connections(addr: SocketAddr) -> bool {
    matches!(
        timeout(STATUS_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// The run directory a node's directory (`<run>/nodes/<name>`) is in.
fn run_dir(node: &NodeRecord) -> PathBuf {
    node.dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The first line a command prints (on stdout, else stderr), if it ends well within
/// [`probe::VERSION_TIMEOUT`].
async fn first_line_of(argv: &[String]) -> Result<String> {
    let output = probe::run(&argv[0], &argv[1..], probe::VERSION_TIMEOUT).await?;
    if !output.status.success() {
        anyhow::bail!("{}", output.status);
    }
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn node(i: u8) -> NodeRecord {
        let ip = Ipv4Addr::new(127, 0, 0, 10 + i);
        NodeRecord {
            name: format!("n{i}"),
            ip,
            client_addr: SocketAddr::from((ip, 7000 + u16::from(i))),
            peer_addr: SocketAddr::from((ip, 8000 + u16::from(i))),
            dir: PathBuf::from(format!("/store/t/20261205T081500/nodes/n{i}")),
            namespace: None,
            spare: false,
            host: None,
        }
    }

    /// A system file in a directory of its own, with `node` as its `[node]` table.
    async fn system(node: &str) -> (tempfile::TempDir, Result<FileSystem>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.toml");
        std::fs::write(
            &path,
            format!("name = \"kv\"\n[node]\n{node}\n[client]\nkind = \"http\"\n"),
        )
        .unwrap();
        let system = FileSystem::load(&path, false).await;
        (dir, system)
    }

    #[tokio::test]
    async fn on_hosts_the_start_program_is_looked_for_there_and_this_machines_files_are_refused() {
        // Not installed here: on hosts, that is the hosts' to say.
        let (_dir, here) = system(r#"start = ["kv-server-nowhere", "{data_dir}"]"#).await;
        assert!(here.is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.toml");
        let file = |start: &str| {
            format!("name = \"kv\"\n[node]\nstart = {start}\n[client]\nkind = \"http\"\n")
        };
        std::fs::write(&path, file(r#"["kv-server-nowhere", "{data_dir}"]"#)).unwrap();
        let on_hosts = FileSystem::load(&path, true).await.unwrap();
        assert_eq!(
            on_hosts.on_hosts(),
            Ok(HostProgram::Installed {
                program: "kv-server-nowhere".to_string(),
                fix: "install it there, or name it in node.start (line 3) by its path on the \
                      hosts"
                    .to_string(),
                version_flag: None,
                version: None,
            })
        );
        std::fs::write(&path, file(r#"["sh", "{system_dir}/kv.sh"]"#)).unwrap();
        let local_files = FileSystem::load(&path, true).await.unwrap();
        assert!(
            local_files
                .on_hosts()
                .unwrap_err()
                .contains("names {system_dir}, a directory on this machine"),
        );
    }

    #[tokio::test]
    async fn a_node_is_started_with_every_placeholder_filled_in() {
        let (_dir, system) = system(
            r#"start = ["sh", "-c", "exit 0", "{index}", "{ip}", "{client_port}", "{peer_port}", "{data_dir}", "{peers}", "{cluster_urls}", "{run_dir}"]"#,
        )
        .await;
        let system = system.unwrap();
        let all = [node(1), node(2), node(3)];
        let proxy: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        let dial = |to: &str| if to == "n3" { proxy } else { all[0].peer_addr };
        let command = system.launch(&all[1], &all, &dial).unwrap();
        assert_eq!(command.program, PathBuf::from("sh"));
        assert_eq!(
            command.args[2..],
            [
                "2",
                "127.0.0.12",
                "7002",
                "8002",
                "/store/t/20261205T081500/nodes/n2/data",
                "n1=127.0.0.11:8001,n3=127.0.0.13:8003@127.0.0.1:9999",
                "n1=http://127.0.0.11:8001,n2=http://127.0.0.12:8002,n3=http://127.0.0.13:8003",
                "/store/t/20261205T081500",
            ]
        );
        assert_eq!(command.log, all[1].log_path());
        assert_eq!(system.record().name, "kv");
        assert!(system.record().file.unwrap().ends_with("kv.toml"));
    }

    #[tokio::test]
    async fn a_program_that_is_not_installed_is_named_with_its_line() {
        let (_dir, system) = system(r#"start = ["no-such-kv-server", "{id}"]"#).await;
        let error = format!("{:#}", system.err().unwrap());
        assert!(
            error.contains(
                ", line 3, field node.start: the program `no-such-kv-server` is not found"
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_version_command_that_does_not_end_is_killed_and_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.toml");
        std::fs::write(
            &path,
            "name = \"kv\"\nversion = [\"sh\", \"-c\", \"sleep 1000\"]\n[node]\nstart = [\"true\"]\n\
             [client]\nkind = \"http\"\n",
        )
        .unwrap();
        let started = std::time::Instant::now();
        let error = format!("{:#}", FileSystem::load(&path, false).await.err().unwrap());
        assert!(
            error.contains(", line 2, field version: sh failed: it did not finish within 5 s"),
            "{error}"
        );
        assert!(started.elapsed() < probe::VERSION_TIMEOUT + Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_leader_command_says_who_leads_by_name_or_address() {
        let (dir, system) = system(
            r#"start = ["true"]
leader = ["sh", "-c", "cat {system_dir}/leader-seen-by-{id}"]"#,
        )
        .await;
        let system = system.unwrap();
        let all = [node(1), node(2), node(3)];
        system.prepare(&all[0], &all).unwrap();
        std::fs::write(dir.path().join("leader-seen-by-n1"), "127.0.0.12:7002\n").unwrap();
        std::fs::write(dir.path().join("leader-seen-by-n2"), "n2\n").unwrap();
        std::fs::write(dir.path().join("leader-seen-by-n3"), "\n").unwrap();
        let n1 = system.status(&all[0]).await.unwrap();
        assert_eq!(
            (n1.role.as_str(), n1.leader.as_deref()),
            ("follower", Some("n2"))
        );
        let n2 = system.status(&all[1]).await.unwrap();
        assert_eq!(
            (n2.role.as_str(), n2.leader.as_deref()),
            ("leader", Some("n2"))
        );
        let n3 = system.status(&all[2]).await.unwrap();
        assert_eq!((n3.role.as_str(), n3.leader), ("follower", None));
        // A command that fails: the node does not answer (after the cached answer expires).
        std::fs::remove_file(dir.path().join("leader-seen-by-n3")).unwrap();
        tokio::time::sleep(PROBE_REFRESH).await;
        assert_eq!(system.status(&all[2]).await, None);
    }

    #[tokio::test]
    async fn without_a_leader_command_a_node_answers_when_its_client_address_accepts() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.toml");
        std::fs::write(
            &path,
            "name = \"kv\"\n[node]\nstart = [\"true\"]\n[client]\nkind = \"exec\"\ncommand = [\"true\"]\n",
        )
        .unwrap();
        let system = FileSystem::load(&path, false).await.unwrap();
        let mut up = node(1);
        up.client_addr = listener.local_addr().unwrap();
        let status = system.status(&up).await.unwrap();
        assert_eq!((status.role.as_str(), status.leader), ("follower", None));
        drop(listener);
        let mut down = node(2);
        down.client_addr = up.client_addr;
        assert_eq!(system.status(&down).await, None);
    }
}
