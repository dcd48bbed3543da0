//! The cluster's current members as the clients learn them, as a real client does (etcd's
//! clientv3 syncs its endpoints from the member list): which configured nodes are homes.
//!
//! A node that is not a voter knows no leader, so a client homed there would see nothing but
//! failures: a spare started for a later membership change, a node the nemesis removed. The
//! homes are therefore the voters (those being left too, during a joint change: they still
//! vote) among the configured endpoints, as `GET /admin/members` lists them:
//!
//! ```json
//! {"node": "n1", "voters": ["n1","n2","n3"], "outgoing": [], "learners": ["n4"], ...}
//! ```
//!
//! - Until anything is learned every configured endpoint is a home, so a system without
//!   `/admin/members` is used as if this module did not exist.
//! - The first client opened starts a background refresher (unless there is only one
//!   endpoint, which is the home whatever the list says). Its first round runs before any
//!   client is handed out (waited for at most [`FIRST_FETCH_WAIT`], or the client timeout if
//!   shorter), so that no client starts homed at a spare; then a round every
//!   [`REFRESH_INTERVAL`].
//! - A round asks the nodes in turn, each within [`MEMBERS_REQUEST_TIMEOUT`]: the homes first,
//!   starting one further each round (so a removed node that still holds the old list is not
//!   always the one asked, and stops being asked once another home says it left), then the
//!   other endpoints, in case every home is down. A node that does not answer, answers
//!   anything but 200 with a member list, or names no configured voter (a spare that knows no
//!   configuration) is skipped. The first useful answer replaces the homes.
//! - A round in which every configured node answers 404 means the system has no member list:
//!   the refresher stops for good (one does not appear in the middle of a run), leaving the
//!   homes as they are. Connection errors and other statuses are not proof of that, so they
//!   keep it asking.
//! - The refresher holds the membership only weakly and is aborted when the membership is
//!   dropped (with the last clone of the clients and the last client), so it never outlives
//!   the clients nor keeps a run alive.

use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// How often the refresher asks for the member list again.
pub(super) const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// How long one `GET /admin/members` may take: short, since a round moves on to the next node
/// and a paused node never answers.
pub(super) const MEMBERS_REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest the first clients wait for the first round (shortened to the client timeout,
/// so that opening a client keeps within the runner's backstop). If it has not ended by
/// then, they start with every endpoint as a home and the round goes on in the background.
pub(super) const FIRST_FETCH_WAIT: Duration = Duration::from_secs(1);

/// A configured node, its URL reduced to an origin (`http://host:port`).
pub(super) struct Node {
    pub name: String,
    pub origin: String,
}

/// The configured nodes and which of them are homes now.
pub(super) struct Membership {
    nodes: Arc<[Node]>,
    /// Indices into `nodes`, in ascending order so that a task keeps its home while the
    /// members do not change; never empty.
    homes: RwLock<Arc<[usize]>>,
    http: reqwest::Client,
    /// How long opening a client waits for the first round.
    first_fetch_wait: Duration,
    /// Set when the first client is opened, which is where a Tokio runtime is sure to exist.
    refresher: OnceLock<RefresherHandle>,
}

/// What the clients keep of the refresher task.
struct RefresherHandle {
    /// Becomes `true` once the first round has ended (learned or not).
    first_round_done: watch::Receiver<bool>,
    task: AbortHandle,
}

impl Membership {
    /// The membership of `nodes` (not empty), asked over `http`; every node is a home until
    /// the member list says otherwise. Nothing is asked before
    /// [`Membership::await_first_round`].
    pub(super) fn new(
        nodes: Arc<[Node]>,
        http: reqwest::Client,
        client_timeout: Duration,
    ) -> Membership {
        let homes: Arc<[usize]> = (0..nodes.len()).collect();
        Membership {
            nodes,
            homes: RwLock::new(homes),
            http,
            first_fetch_wait: FIRST_FETCH_WAIT.min(client_timeout),
            refresher: OnceLock::new(),
        }
    }

    /// The configured nodes.
    pub(super) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node (an index into [`Membership::nodes`]) that client task `task` asks first now.
    pub(super) fn home_of(&self, task: usize) -> usize {
        let homes = self.homes.read().unwrap_or_else(PoisonError::into_inner);
        homes[task % homes.len()]
    }

    /// Starts the refresher if it is not running yet, and waits (boundedly) until its first
    /// round has ended. Must be called within a Tokio runtime.
    pub(super) async fn await_first_round(self: &Arc<Self>) {
        // With one endpoint there is nothing to choose: it is the home whatever the list says.
        if self.nodes.len() < 2 {
            return;
        }
        let handle = self.refresher.get_or_init(|| {
            let (done, first_round_done) = watch::channel(false);
            let refresher = Refresher {
                membership: Arc::downgrade(self),
                nodes: self.nodes.clone(),
                http: self.http.clone(),
                round: 0,
            };
            let task = tokio::spawn(refresher.run(done)).abort_handle();
            RefresherHandle {
                first_round_done,
                task,
            }
        });
        let mut done = handle.first_round_done.clone();
        // An error means the refresher ended before its first round did (its runtime shut
        // down): nothing to wait for.
        let _ = tokio::time::timeout(self.first_fetch_wait, done.wait_for(|done| *done)).await;
    }

    fn set_homes(&self, homes: Vec<usize>) {
        *self.homes.write().unwrap_or_else(PoisonError::into_inner) = homes.into();
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        // The refresher would notice at its next round that the membership is gone; aborting
        // it stops its request in flight too.
        if let Some(handle) = self.refresher.get() {
            handle.task.abort();
        }
    }
}

/// The part of a `GET /admin/members` answer that says who the homes are.
#[derive(Debug, Deserialize)]
struct MemberList {
    voters: Vec<String>,
    /// During a change of voters, those of the configuration being left.
    #[serde(default)]
    outgoing: Vec<String>,
}

/// The homes that `list` makes of `nodes`: the configured nodes among its voters (incoming
/// and outgoing), in configured order; `None` if it names none of them (learners are not
/// homes: they know no leader to send a client to).
fn homes_of(list: &MemberList, nodes: &[Node]) -> Option<Vec<usize>> {
    let homes: Vec<usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| list.voters.contains(&node.name) || list.outgoing.contains(&node.name))
        .map(|(index, _)| index)
        .collect();
    (!homes.is_empty()).then_some(homes)
}

/// What one node said when asked for the member list.
enum Reply {
    /// A member list (200).
    List(MemberList),
    /// 404: this node has no member list.
    NotFound,
    /// No answer in time, another status, or a body that is not a member list.
    Nothing,
}

/// How a round ended.
enum Round {
    /// A node answered with a list naming configured voters; the homes are now those.
    Learned,
    /// Every configured node answered 404: the system has no member list.
    NoMemberList,
    /// No node gave a useful answer; the homes are unchanged.
    Unknown,
    /// The clients are gone.
    Dropped,
}

/// The background task that keeps the homes up to date.
struct Refresher {
    /// Weak, so that the task does not keep the clients alive.
    membership: Weak<Membership>,
    nodes: Arc<[Node]>,
    http: reqwest::Client,
    /// Rounds so far, which rotates which home is asked first.
    round: usize,
}

impl Refresher {
    /// Rounds until the clients are dropped or the system proves to have no member list;
    /// `first_round_done` is told when the first round has ended.
    async fn run(mut self, first_round_done: watch::Sender<bool>) {
        let mut round = self.round().await;
        first_round_done.send_replace(true);
        while let Round::Learned | Round::Unknown = round {
            tokio::time::sleep(REFRESH_INTERVAL).await;
            round = self.round().await;
        }
    }

    /// Asks the nodes in turn until one names the voters.
    async fn round(&mut self) -> Round {
        let Some(order) = self.order() else {
            return Round::Dropped;
        };
        self.round += 1;
        let mut not_found = 0;
        for &node in &order {
            // No strong reference is held while waiting for an answer.
            match self.ask(&self.nodes[node]).await {
                Reply::List(list) => {
                    if let Some(homes) = homes_of(&list, &self.nodes) {
                        let Some(membership) = self.membership.upgrade() else {
                            return Round::Dropped;
                        };
                        membership.set_homes(homes);
                        return Round::Learned;
                    }
                }
                Reply::NotFound => not_found += 1,
                Reply::Nothing => {}
            }
        }
        if not_found == self.nodes.len() {
            Round::NoMemberList
        } else {
            Round::Unknown
        }
    }

    /// The nodes in the order this round asks them: the homes, starting one further than
    /// last round, then the other endpoints. `None` once the clients are gone.
    fn order(&self) -> Option<Vec<usize>> {
        let membership = self.membership.upgrade()?;
        let homes = membership
            .homes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let start = self.round % homes.len();
        let mut order: Vec<usize> = homes[start..]
            .iter()
            .chain(&homes[..start])
            .copied()
            .collect();
        order.extend((0..self.nodes.len()).filter(|node| !homes.contains(node)));
        Some(order)
    }

    /// Asks `node` for its member list.
    async fn ask(&self, node: &Node) -> Reply {
        let request = self
            .http
            .get(format!("{}/admin/members", node.origin))
            .timeout(MEMBERS_REQUEST_TIMEOUT)
            .send();
        let response = match request.await {
            Ok(response) => response,
            Err(_) => return Reply::Nothing,
        };
        match response.status() {
            StatusCode::OK => match response.json::<MemberList>().await {
                Ok(list) => Reply::List(list),
                Err(_) => Reply::Nothing,
            },
            StatusCode::NOT_FOUND => Reply::NotFound,
            _ => Reply::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use serde_json::{Value, json};

    use super::*;
    use crate::client::{ClientFactory, Purpose};
    use crate::fake_node::{FakeNode, Reply, json as reply, refusing_url};
    use crate::http::{Endpoint, HttpContractClients};
    use crate::op::Op;

    const TIMEOUT: Duration = Duration::from_secs(1);

    /// Far longer than anything here should take, so that only a real failure trips it.
    const PATIENCE: Duration = Duration::from_secs(15);

    /// Fake nodes that take every write and answer `GET /admin/members` as `answer` says for
    /// the node's name; the member lists can be changed while the clients run.
    struct Cluster {
        nodes: Vec<(String, FakeNode)>,
    }

    /// How a node of a [`Cluster`] answers `GET /admin/members`.
    type MembersAnswer = dyn Fn(&str) -> Reply + Send + Sync;

    impl Cluster {
        async fn start(names: &[&str], answer: Arc<MembersAnswer>) -> Cluster {
            let mut nodes = Vec::new();
            for name in names {
                let (name, answer) = (name.to_string(), answer.clone());
                let node = FakeNode::start({
                    let name = name.clone();
                    move |request| match request.path.as_str() {
                        "/admin/members" => answer(&name),
                        _ => reply(200, r#"{"ok":true}"#),
                    }
                })
                .await;
                nodes.push((name, node));
            }
            Cluster { nodes }
        }

        fn clients(&self) -> HttpContractClients {
            let endpoints: Vec<Endpoint> = self
                .nodes
                .iter()
                .map(|(name, node)| Endpoint::new(name.clone(), node.url.clone()))
                .collect();
            HttpContractClients::new(&endpoints, TIMEOUT).unwrap()
        }

        fn node(&self, name: &str) -> &FakeNode {
            &self.nodes.iter().find(|(n, _)| n == name).unwrap().1
        }

        /// How many requests for `path` (`/kv/` for any operation) `name` received.
        fn requests(&self, name: &str, path: &str) -> usize {
            let requests = self.node(name).requests();
            requests.iter().filter(|r| r.path.starts_with(path)).count()
        }

        /// How many times the member list was asked for, of any node.
        fn member_list_requests(&self) -> usize {
            let names = self.nodes.iter().map(|(name, _)| name);
            names
                .map(|name| self.requests(name, "/admin/members"))
                .sum()
        }
    }

    /// The answer of a member whose configuration has `voters`, `outgoing` and `learners`.
    fn member_list(voters: &[&str], outgoing: &[&str], learners: &[&str]) -> Value {
        json!({
            "voters": voters, "outgoing": outgoing, "learners": learners,
            "pending": !outgoing.is_empty(), "leader": voters.first(), "term": 3,
        })
    }

    /// A 200 with `list`, sent as `node`.
    fn list_reply(node: &str, list: &Value) -> Reply {
        let mut list = list.clone();
        list["node"] = json!(node);
        reply(200, &list.to_string())
    }

    /// The node that answers a write by the client of each of `tasks`, opened now.
    async fn homes(clients: &HttpContractClients, tasks: std::ops::Range<usize>) -> Vec<String> {
        let write = Op::Write {
            key: "r1".into(),
            value: 1,
        };
        let mut homes = Vec::new();
        for task in tasks {
            let mut client = clients.open(task, Purpose::Workload).await.unwrap();
            let completion = client.invoke(&write).await;
            homes.push(completion.node.unwrap());
        }
        homes
    }

    /// Waits until the clients of `tasks` are homed at `expected`, or fails the test after
    /// [`PATIENCE`].
    async fn wait_for_homes(
        clients: &HttpContractClients,
        tasks: std::ops::Range<usize>,
        expected: &[&str],
    ) {
        let started = Instant::now();
        loop {
            let now = homes(clients, tasks.clone()).await;
            if now == expected {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "still homed at {now:?}, not {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[test]
    fn the_homes_are_the_configured_voters_old_and_new() {
        let nodes: Vec<Node> = ["n1", "n2", "n3", "n4", "n5"]
            .iter()
            .map(|name| Node {
                name: name.to_string(),
                origin: String::new(),
            })
            .collect();
        let list = |voters: &[&str], outgoing: &[&str]| MemberList {
            voters: voters.iter().map(|s| s.to_string()).collect(),
            outgoing: outgoing.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            homes_of(&list(&["n3", "n1", "n2"], &[]), &nodes),
            Some(vec![0, 1, 2]),
            "in configured order"
        );
        assert_eq!(
            homes_of(&list(&["n2", "n3", "n4"], &["n1", "n2", "n3"]), &nodes),
            Some(vec![0, 1, 2, 3]),
            "during a joint change, those being left vote too"
        );
        assert_eq!(
            homes_of(&list(&["n5", "x9"], &[]), &nodes),
            Some(vec![4]),
            "unknown names are ignored"
        );
        assert_eq!(homes_of(&list(&["x9"], &[]), &nodes), None);
        assert_eq!(
            homes_of(&list(&[], &[]), &nodes),
            None,
            "a spare knows no configuration"
        );
        let learners_only: MemberList =
            serde_json::from_value(member_list(&[], &[], &["n4"])).unwrap();
        assert_eq!(homes_of(&learners_only, &nodes), None);
    }

    #[tokio::test]
    async fn clients_are_homed_only_at_voters_from_the_first_operation() {
        // n5 is a spare that knows no configuration, listed first so that it is asked first;
        // n4 is a learner.
        let list = member_list(&["n1", "n2", "n3"], &[], &["n4"]);
        let cluster = Cluster::start(
            &["n5", "n1", "n2", "n3", "n4"],
            Arc::new(move |node| match node {
                "n5" => list_reply(node, &member_list(&[], &[], &[])),
                _ => list_reply(node, &list),
            }),
        )
        .await;
        let clients = cluster.clients();
        assert_eq!(
            homes(&clients, 0..7).await,
            ["n1", "n2", "n3", "n1", "n2", "n3", "n1"]
        );
        assert_eq!(cluster.requests("n4", "/kv/"), 0);
        assert_eq!(cluster.requests("n5", "/kv/"), 0);
        assert_eq!(cluster.requests("n1", "/kv/"), 3);
    }

    #[tokio::test]
    async fn a_change_of_members_is_picked_up_while_the_clients_run() {
        // What the members answer; n1, once removed, is left with the joint configuration
        // (it never hears of the change that removed it) and says so.
        let current = Arc::new(Mutex::new(member_list(&["n1", "n2", "n3"], &[], &[])));
        let stale = Arc::new(Mutex::new(None::<Value>));
        let cluster = Cluster::start(&["n1", "n2", "n3", "n4"], {
            let (current, stale) = (current.clone(), stale.clone());
            Arc::new(move |node| {
                let stale = stale.lock().unwrap().clone();
                match stale {
                    Some(stale) if node == "n1" => list_reply(node, &stale),
                    _ => list_reply(node, &current.lock().unwrap()),
                }
            })
        })
        .await;
        let clients = cluster.clients();
        assert_eq!(homes(&clients, 0..3).await, ["n1", "n2", "n3"]);

        // n4 joins in the place of n1: first the joint configuration, where both vote.
        let joint = member_list(&["n2", "n3", "n4"], &["n1", "n2", "n3"], &[]);
        *current.lock().unwrap() = joint.clone();
        let started = Instant::now();
        wait_for_homes(&clients, 0..4, &["n1", "n2", "n3", "n4"]).await;
        *stale.lock().unwrap() = Some(joint);
        *current.lock().unwrap() = member_list(&["n2", "n3", "n4"], &[], &[]);
        wait_for_homes(&clients, 0..3, &["n2", "n3", "n4"]).await;
        println!("both changes picked up in {:?}", started.elapsed());

        // Once n1 is no home it is not asked again, so its stale list does not bring it back.
        let n1_operations = cluster.requests("n1", "/kv/");
        for _ in 0..3 {
            tokio::time::sleep(REFRESH_INTERVAL).await;
            assert_eq!(homes(&clients, 0..3).await, ["n2", "n3", "n4"]);
        }
        assert_eq!(cluster.requests("n1", "/kv/"), n1_operations);
    }

    #[tokio::test]
    async fn without_a_member_list_every_endpoint_is_a_home_and_it_is_not_asked_again() {
        let cluster = Cluster::start(
            &["n1", "n2", "n3"],
            Arc::new(|_| reply(404, r#"{"error":"not found"}"#)),
        )
        .await;
        let clients = cluster.clients();
        assert_eq!(homes(&clients, 0..4).await, ["n1", "n2", "n3", "n1"]);
        tokio::time::sleep(3 * REFRESH_INTERVAL).await;
        assert_eq!(homes(&clients, 0..4).await, ["n1", "n2", "n3", "n1"]);
        for name in ["n1", "n2", "n3"] {
            assert_eq!(
                cluster.requests(name, "/admin/members"),
                1,
                "{name}: asked once, in the first round"
            );
        }
    }

    #[tokio::test]
    async fn nodes_that_give_no_member_list_leave_every_endpoint_a_home() {
        // One refuses connections, one never answers the member list, one fails it.
        let refusing = refusing_url().await;
        let cluster = Cluster::start(
            &["n2", "n3"],
            Arc::new(|node| match node {
                "n2" => Reply::Hang,
                _ => reply(500, r#"{"error":"the node stopped"}"#),
            }),
        )
        .await;
        let endpoints = [
            Endpoint::new("n1", refusing),
            Endpoint::new("n2", cluster.node("n2").url.clone()),
            Endpoint::new("n3", cluster.node("n3").url.clone()),
        ];
        let clients = HttpContractClients::new(&endpoints, TIMEOUT).unwrap();
        let opening = Instant::now();
        let mut client = clients.open(2, Purpose::Workload).await.unwrap();
        assert!(
            opening.elapsed() < PATIENCE,
            "the wait for the member list is bounded"
        );
        let write = Op::Write {
            key: "r1".into(),
            value: 1,
        };
        assert_eq!(client.invoke(&write).await.node.as_deref(), Some("n3"));
        assert_eq!(homes(&clients, 1..3).await, ["n2", "n3"]);
    }

    #[tokio::test]
    async fn the_refresher_stops_when_the_clients_are_dropped() {
        let list = member_list(&["n1", "n2", "n3"], &[], &[]);
        let cluster = Cluster::start(
            &["n1", "n2", "n3"],
            Arc::new(move |node| list_reply(node, &list)),
        )
        .await;
        let clients = cluster.clients();
        let mut client = clients.open(0, Purpose::Workload).await.unwrap();
        let write = Op::Write {
            key: "r1".into(),
            value: 1,
        };
        client.invoke(&write).await;
        let started = Instant::now();
        while cluster.member_list_requests() < 3 {
            assert!(
                started.elapsed() < PATIENCE,
                "the refresher does not refresh"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // The client holds the clients too: both must go.
        drop(clients);
        tokio::time::sleep(2 * REFRESH_INTERVAL).await;
        assert!(
            cluster.member_list_requests() >= 4,
            "a client alone keeps it going"
        );
        drop(client);
        // A request already sent may still arrive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let asked = cluster.member_list_requests();
        tokio::time::sleep(3 * REFRESH_INTERVAL).await;
        assert_eq!(cluster.member_list_requests(), asked);
    }
}
