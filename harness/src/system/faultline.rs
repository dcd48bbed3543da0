//! The bundled `faultline-node`, or any binary that takes its flags and serves Faultline's
//! HTTP contract (README, "Testing another system"): `--node-binary`. The only system that
//! takes `--bug`s, which the harness passes on without knowing what they do, and a fresh
//! `--cluster-id` per run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use faultline_nemesis::{ChangeAnswer, MemberChange, Members};
use faultline_workloads::{BoxFuture, ClientFactory, Endpoint, HttpContractClients};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::probe::{self, ProbeError};
use super::{Dials, HostProgram, NodeCommand, System};
use crate::node_status::NodeStatus;
use crate::store::{NodeRecord, SystemRecord};

/// `/status` must answer within this, so a paused node never stalls the harness.
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);

/// How long a membership change may take to be answered: the node answers 504 at its own
/// request timeout (5 s by default) if the change has not committed by then.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(8);

/// Nodes that serve Faultline's HTTP contract, started as `faultline-node` is.
pub struct FaultlineSystem {
    binary: PathBuf,
    /// What the binary says of itself (`--version`), if it says anything.
    version: Option<String>,
    bugs: Vec<String>,
    /// The same node's binary as installed on the hosts (`--node-binary-on-hosts`), if it
    /// is not to be copied there.
    installed_on_hosts: Option<String>,
    /// Fresh for every run (one system serves one run), so that a node left running by an
    /// earlier run, or one of its messages to a reused port, is refused by this run's nodes.
    /// Not drawn from the run's seed: a replay of a seed must not share its original's id.
    cluster_id: String,
    http: reqwest::Client,
}

impl FaultlineSystem {
    /// The nodes run `binary`, each with every one of `bugs` as `--bug`. Asks the binary for
    /// its version first, before anything of the run exists: a binary that does not answer
    /// `--version` within [`probe::VERSION_TIMEOUT`] (one that ignores the flag and runs as a
    /// node, or hangs) is an error naming it. On hosts, the binary is copied there unless
    /// `installed_on_hosts` names where it is installed there already.
    pub async fn new(
        binary: PathBuf,
        bugs: Vec<String>,
        installed_on_hosts: Option<String>,
    ) -> Result<FaultlineSystem> {
        if !binary.is_file() {
            bail!(
                "the node binary {} does not exist; build it with `cargo build --release -p faultline-node` \
                 or pass --node-binary",
                binary.display()
            );
        }
        let version = match probe::run(&binary, &["--version"], probe::VERSION_TIMEOUT).await {
            Ok(finished) => {
                let text = String::from_utf8_lossy(&finished.stdout).trim().to_string();
                (!text.is_empty()).then_some(text)
            }
            Err(ProbeError::TimedOut(limit)) => bail!(
                "the node binary {} did not answer `--version` within {} s (it was killed): a \
                 node binary must print its version and exit; is it a node of the HTTP contract?",
                binary.display(),
                limit.as_secs()
            ),
            // A binary that cannot say its version may still run as a node; one that cannot
            // run at all fails to start with the reason.
            Err(_) => None,
        };
        Ok(FaultlineSystem {
            binary,
            version,
            bugs,
            installed_on_hosts,
            cluster_id: fresh_cluster_id(),
            http: reqwest::Client::builder()
                .timeout(STATUS_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }
}

impl System for FaultlineSystem {
    /// The same binary as here, copied to every host; or installed there, saying the same
    /// version as here.
    fn on_hosts(&self) -> Result<HostProgram, String> {
        let Some(installed) = &self.installed_on_hosts else {
            return Ok(HostProgram::Copied);
        };
        let version = self
            .version
            .as_ref()
            .and_then(|v| v.lines().next())
            .map(str::to_string);
        Ok(HostProgram::Installed {
            program: installed.clone(),
            fix: format!(
                "install the node there (the build of {}), or leave out --node-binary-on-hosts \
                 to copy it",
                self.binary.display()
            ),
            version_flag: Some("--version"),
            version,
        })
    }

    fn record(&self) -> SystemRecord {
        SystemRecord {
            version: self.version.clone(),
            ..SystemRecord::default()
        }
    }

    fn reports_raft_log(&self) -> bool {
        true
    }

    fn launch(
        &self,
        node: &NodeRecord,
        all: &[NodeRecord],
        dial: Dials<'_>,
    ) -> Result<NodeCommand> {
        let mut args = vec![
            "--id".to_string(),
            node.name.clone(),
            "--client-addr".into(),
            node.client_addr.to_string(),
            "--peer-addr".into(),
            node.peer_addr.to_string(),
            "--data-dir".into(),
            node.data_dir().display().to_string(),
            "--cluster-id".into(),
            self.cluster_id.clone(),
        ];
        let peers: Vec<String> = all
            .iter()
            .filter(|peer| peer.name != node.name)
            .map(|peer| match dial(&peer.name) {
                direct if direct == peer.peer_addr => format!("{}={}", peer.name, peer.peer_addr),
                proxy => format!("{}={}@{proxy}", peer.name, peer.peer_addr),
            })
            .collect();
        if !peers.is_empty() {
            args.extend(["--peers".to_string(), peers.join(",")]);
        }
        if all.iter().any(|node| node.spare) {
            // Spares start outside the cluster, and join when the nemesis adds them.
            let members: Vec<&str> = all
                .iter()
                .filter(|node| !node.spare)
                .map(|node| node.name.as_str())
                .collect();
            args.extend(["--initial-members".to_string(), members.join(",")]);
        }
        for bug in &self.bugs {
            args.extend(["--bug".to_string(), bug.clone()]);
        }
        Ok(NodeCommand {
            program: self.binary.clone(),
            args,
            log: node.log_path(),
        })
    }

    fn status<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Option<NodeStatus>> {
        Box::pin(contract_status(&self.http, node))
    }

    fn clock_unfaultable(&self) -> Option<String> {
        faultline_nemesis::not_preloadable(&self.binary)
    }

    fn realtime_us<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Option<i64>> {
        Box::pin(async move {
            let response = self
                .http
                .get(format!("{}/status", node.client_url()))
                .send()
                .await
                .ok()?;
            let status: Value = response.json().await.ok()?;
            status["realtime_us"].as_i64()
        })
    }

    fn local_list<'a>(
        &'a self,
        node: &'a NodeRecord,
        key: &'a str,
    ) -> BoxFuture<'a, Option<Vec<Value>>> {
        Box::pin(contract_local_list(&self.http, node, key))
    }

    /// Membership changes need the bundled node's `--initial-members` and admin API, which
    /// the HTTP contract does not ask of other nodes: a binary that does not say it is
    /// `faultline-node` (a wrapper that execs it does) is spared them, even in a default run.
    fn membership_unchangeable(&self) -> Option<String> {
        let bundled = (self.version.as_deref()).is_some_and(|v| v.starts_with("faultline-node "));
        (!bundled).then(|| {
            format!(
                "the node binary {} is not faultline-node (its --version says {}), and only \
                 the bundled node's members can be changed (--initial-members, /admin/members)",
                self.binary.display(),
                self.version.as_deref().unwrap_or("nothing")
            )
        })
    }

    fn members<'a>(&'a self, node: &'a NodeRecord) -> BoxFuture<'a, Option<Members>> {
        Box::pin(async move {
            let url = format!("{}/admin/members", node.client_url());
            let response = self.http.get(url).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            Some(members_of(&response.json().await.ok()?))
        })
    }

    fn change_members<'a>(
        &'a self,
        node: &'a NodeRecord,
        change: &'a MemberChange,
    ) -> BoxFuture<'a, ChangeAnswer> {
        Box::pin(async move {
            let members = format!("{}/admin/members", node.client_url());
            let request = match change {
                MemberChange::AddLearner(name) => self
                    .http
                    .post(members)
                    .json(&json!({"name": name, "role": "learner"})),
                MemberChange::Promote(name) => self
                    .http
                    .post(members)
                    .json(&json!({"name": name, "role": "voter"})),
                MemberChange::Replace { add, remove } => self
                    .http
                    .post(members)
                    .json(&json!({"name": add, "replaces": remove})),
                MemberChange::Remove(name) => self.http.delete(format!("{members}/{name}")),
            };
            match request.timeout(CHANGE_TIMEOUT).send().await {
                Ok(response) => {
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    answer_of(&node.name, status, &body)
                }
                Err(error) if error.is_connect() => ChangeAnswer::Refused(format!(
                    "{} did not take the request: {error}",
                    node.name
                )),
                Err(error) => {
                    ChangeAnswer::Unknown(format!("no answer from {}: {error}", node.name))
                }
            }
        })
    }

    fn clients(&self, all: &[NodeRecord], timeout: Duration) -> Result<Arc<dyn ClientFactory>> {
        let endpoints: Vec<Endpoint> = all
            .iter()
            .map(|node| Endpoint::new(node.name.clone(), node.client_url()))
            .collect();
        Ok(Arc::new(HttpContractClients::new(&endpoints, timeout)?))
    }
}

/// `GET /status` of a node that serves the contract; `None` when it does not answer (in
/// the time `http` allows) or answers something else.
pub(super) async fn contract_status(
    http: &reqwest::Client,
    node: &NodeRecord,
) -> Option<NodeStatus> {
    let response = http
        .get(format!("{}/status", node.client_url()))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// `GET /kv/{key}?stale=true`: the list as the node applied it, whatever it knows of the
/// leader; empty when it has none.
pub(super) async fn contract_local_list(
    http: &reqwest::Client,
    node: &NodeRecord,
    key: &str,
) -> Option<Vec<Value>> {
    let response = http
        .get(format!("{}/kv/{key}?stale=true", node.client_url()))
        .send()
        .await
        .ok()?;
    match response.status() {
        reqwest::StatusCode::NOT_FOUND => Some(Vec::new()),
        status if status.is_success() => {
            let body: Value = response.json().await.ok()?;
            body.get("value")?.as_array().cloned()
        }
        _ => None,
    }
}

/// The members in an answer of `/admin/members`.
fn members_of(body: &Value) -> Members {
    let names = |field: &str| -> Vec<String> {
        let items = body[field].as_array().into_iter().flatten();
        items
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    Members {
        voters: names("voters"),
        outgoing: names("outgoing"),
        learners: names("learners"),
        pending: body["pending"].as_bool().unwrap_or(false),
        leader: body["leader"].as_str().map(str::to_string),
    }
}

/// What an answer of `POST` or `DELETE /admin/members` from `node` means (see the node's
/// admin.rs): 200 the change committed; 400, 409 and 503 it did not happen; 504 (and
/// anything else) it may still.
fn answer_of(node: &str, status: StatusCode, body: &Value) -> ChangeAnswer {
    let reason = || {
        let error = body["error"].as_str().unwrap_or("no reason given");
        format!("{node} answered {status}: {error}")
    };
    match status {
        StatusCode::OK => ChangeAnswer::Done(members_of(body)),
        StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE => {
            ChangeAnswer::Refused(reason())
        }
        _ => ChangeAnswer::Unknown(reason()),
    }
}

/// A cluster id for one run: random, not drawn from the seed, so that a replay of a run
/// never takes a stray node of the original for one of its own.
fn fresh_cluster_id() -> String {
    format!("faultline-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use super::*;

    fn spec(i: u8) -> NodeRecord {
        let ip = Ipv4Addr::new(127, 0, 0, 10 + i);
        NodeRecord {
            name: format!("n{i}"),
            ip,
            client_addr: SocketAddr::from((ip, 7000 + u16::from(i))),
            peer_addr: SocketAddr::from((ip, 8000 + u16::from(i))),
            dir: PathBuf::from(format!("/run/nodes/n{i}")),
            namespace: None,
            spare: false,
            host: None,
        }
    }

    #[test]
    fn only_a_binary_that_says_it_is_faultline_node_has_its_members_changed() {
        let system = |version: Option<&str>| FaultlineSystem {
            binary: PathBuf::from("/opt/node"),
            version: version.map(str::to_owned),
            bugs: Vec::new(),
            installed_on_hosts: None,
            cluster_id: fresh_cluster_id(),
            http: reqwest::Client::new(),
        };
        assert_eq!(
            system(Some("faultline-node 0.1.0")).membership_unchangeable(),
            None
        );
        for other in [Some("mykv 2.3.1"), Some("faultline-nodes 1"), None] {
            let reason = system(other).membership_unchangeable().expect("left out");
            assert!(
                reason.contains("/opt/node is not faultline-node"),
                "{reason}"
            );
        }
    }

    #[test]
    fn a_node_is_started_with_its_addresses_the_cluster_id_its_peers_through_their_dials_and_the_bugs()
     {
        let system = FaultlineSystem {
            binary: PathBuf::from("/bin/faultline-node"),
            version: None,
            installed_on_hosts: None,
            bugs: vec!["stale-read".into()],
            cluster_id: "faultline-0123456789abcdef".into(),
            http: reqwest::Client::new(),
        };
        let all = [spec(1), spec(2), spec(3)];
        let proxy: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        let dial = |to: &str| if to == "n3" { proxy } else { all[1].peer_addr };
        let launch = system.launch(&all[0], &all, &dial).unwrap();
        assert_eq!(
            launch.args.join(" "),
            "--id n1 --client-addr 127.0.0.11:7001 --peer-addr 127.0.0.11:8001 \
             --data-dir /run/nodes/n1/data --cluster-id faultline-0123456789abcdef \
             --peers n2=127.0.0.12:8002,n3=127.0.0.13:8003@127.0.0.1:9999 --bug stale-read"
        );
        assert_eq!(launch.log, PathBuf::from("/run/nodes/n1/node.log"));
        // Every node of a run, and every restart of one, gets the run's id.
        let again = system.launch(&all[1], &all, &dial).unwrap();
        assert!(
            again
                .args
                .join(" ")
                .contains("--cluster-id faultline-0123456789abcdef")
        );
    }

    #[test]
    fn with_spares_every_node_is_told_the_first_members() {
        let system = FaultlineSystem {
            binary: PathBuf::from("/bin/faultline-node"),
            version: None,
            bugs: Vec::new(),
            installed_on_hosts: None,
            cluster_id: "faultline-0".into(),
            http: reqwest::Client::new(),
        };
        let mut all = vec![spec(1), spec(2), spec(3), spec(4)];
        all[3].spare = true;
        let dial = |_: &str| all[1].peer_addr;
        for node in &all {
            let args = system.launch(node, &all, &dial).unwrap().args.join(" ");
            assert!(args.ends_with("--initial-members n1,n2,n3"), "{args}");
        }
        let without = system.launch(&all[0], &all[..3], &dial).unwrap();
        assert!(!without.args.join(" ").contains("--initial-members"));
    }

    #[test]
    fn membership_answers_are_done_refused_or_unknown_as_the_admin_api_documents() {
        let members = json!({"node": "n1", "voters": ["n1", "n2", "n4"], "outgoing": ["n1", "n2", "n3"],
            "learners": [], "pending": true, "leader": "n1", "term": 4});
        let ChangeAnswer::Done(done) = answer_of("n1", StatusCode::OK, &members) else {
            panic!("200 is done");
        };
        assert_eq!(done.voters, ["n1", "n2", "n4"]);
        assert_eq!(done.outgoing, ["n1", "n2", "n3"]);
        assert!(done.pending);
        assert_eq!(done.leader.as_deref(), Some("n1"));
        let busy = json!({"error": "a membership change is already in progress"});
        for status in [
            StatusCode::CONFLICT,
            StatusCode::BAD_REQUEST,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            assert!(matches!(
                answer_of("n1", status, &busy),
                ChangeAnswer::Refused(_)
            ));
        }
        let ChangeAnswer::Unknown(reason) = answer_of("n1", StatusCode::GATEWAY_TIMEOUT, &busy)
        else {
            panic!("504 is unknown");
        };
        assert!(reason.contains("n1 answered 504"), "{reason}");
    }

    #[test]
    fn every_run_gets_a_cluster_id_of_its_own() {
        let (a, b) = (fresh_cluster_id(), fresh_cluster_id());
        assert_ne!(a, b);
        assert!(a.len() <= 64, "the node takes at most 64 characters");
    }
}
