//! The client of the Faultline HTTP contract (`GET /kv/{key}`, `PUT /kv/{key}`,
//! `POST /kv/{key}/cas`, `POST /kv/{key}/append`), over one connection pool shared by every
//! client task.
//!
//! Each client is bound to a home node, as a Jepsen client is bound to its node: every
//! operation is sent there first, so each node's own behaviour (a stale follower, a deposed
//! leader cut off from the others) is what the clients see. An operation follows `307`
//! redirects itself (so it knows which node answered), at most [`MAX_REDIRECTS`] times, all
//! within one timeout.
//!
//! The homes are the cluster's current voters among the configured nodes, learned from its
//! member list as the membership changes (see [`super::members`]); a system without one has
//! every configured node as a home. The client of task `i` is homed at
//! `homes[i % homes.len()]`, chosen again at each operation.
//!
//! Beside them the runner runs a bound pair per configured node ([`Purpose::Bound`]): a
//! reader and a writer homed as task `n` would be, which follow no redirect. A redirect is
//! then a `fail` ("not the leader"): the node refused the operation. What they add is what
//! redirects hide: a deposed leader still answering reads while the new one takes writes.
//!
//! A client holds no state of its own beyond its task number, and an HTTP/1.1 connection
//! whose answer never came cannot carry another request, so the fresh client the runner opens
//! after an `info` shares the pool safely.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::LOCATION;
use serde_json::json;

use crate::client::{BoxFuture, Client, ClientFactory, Completion, NOT_THE_LEADER, Purpose};
use crate::error::Error;
use crate::http::classify::{Answer, body_error_reason, classify_error, classify_response};
use crate::http::members::{Membership, Node};
use crate::op::Op;
use crate::outcome::Outcome;

/// Redirects followed for one operation; one more answer that redirects makes it `fail`.
pub const MAX_REDIRECTS: usize = 3;

/// A node the clients may talk to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Its name, as recorded in the history's `node` (`n1`, ...).
    pub name: String,
    /// The base URL of its client API, like `http://127.0.0.11:8001`.
    pub url: String,
}

impl Endpoint {
    /// A node named `name` whose client API is at `url`.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Endpoint {
            name: name.into(),
            url: url.into(),
        }
    }

    /// Its URL checked (plain HTTP, a host, nothing after the port) and reduced to an origin,
    /// `http://host:port`, to which a client appends its paths.
    pub fn origin(&self) -> Result<String, Error> {
        let bad = |reason: &str| Error::BadNodeUrl {
            name: self.name.clone(),
            url: self.url.clone(),
            reason: reason.to_string(),
        };
        let url = Url::parse(&self.url).map_err(|error| bad(&error.to_string()))?;
        if url.scheme() != "http" {
            return Err(bad("only http:// is supported"));
        }
        if url.host().is_none() {
            return Err(bad("it has no host"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("it has a path; give only the scheme, host and port"));
        }
        Ok(url.origin().ascii_serialization())
    }
}

/// The clients of a cluster that speaks the Faultline HTTP contract; cheap to clone. The
/// client of task `i` has the home `homes[i % homes.len()]` (in configured order), the homes
/// being the cluster's current voters if it serves `GET /admin/members`, every node
/// otherwise; the purpose changes nothing, since every read of the contract is linearizable.
///
/// The first client opened starts a background task that keeps the homes up to date (and
/// waits, at most a second or the client timeout if shorter, for its first answer); the task
/// ends when the last clone of these clients and the last client are dropped.
#[derive(Clone)]
pub struct HttpContractClients {
    http: reqwest::Client,
    membership: Arc<Membership>,
    timeout: Duration,
}

/// One client task's client: the shared pool, its task number, which picks its home, and
/// whether it is bound to that home (then it follows no redirect).
struct HttpContractClient {
    clients: HttpContractClients,
    task: usize,
    bound: bool,
}

impl HttpContractClients {
    /// The clients of the nodes at `endpoints`, whose operations each take at most `timeout`
    /// (redirects included).
    ///
    /// Errors: no endpoints, an endpoint's URL that is not `http://HOST:PORT`, or an HTTP
    /// client that cannot be set up.
    pub fn new(endpoints: &[Endpoint], timeout: Duration) -> Result<HttpContractClients, Error> {
        if endpoints.is_empty() {
            return Err(Error::NoNodes);
        }
        let nodes = endpoints.iter().map(node).collect::<Result<Vec<_>, _>>()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            // A connection not made by then is given up as a `fail`, leaving the rest of the
            // time for the answer.
            .connect_timeout(timeout / 2)
            .build()
            .map_err(Error::HttpClient)?;
        let membership = Membership::new(nodes.into(), http.clone(), timeout);
        Ok(HttpContractClients {
            http,
            membership: Arc::new(membership),
            timeout,
        })
    }

    /// The configured nodes.
    fn nodes(&self) -> &[Node] {
        self.membership.nodes()
    }
}

impl ClientFactory for HttpContractClients {
    /// A client for `task`, once the member list has been asked for the first time (so that
    /// no client starts homed at a node that is not a member).
    fn open(&self, task: usize, purpose: Purpose) -> BoxFuture<'_, Result<Box<dyn Client>, Error>> {
        Box::pin(async move {
            self.membership.await_first_round().await;
            let (task, bound) = match purpose {
                Purpose::Bound(slot) => (slot, true),
                Purpose::Workload | Purpose::FinalRead => (task, false),
            };
            let client: Box<dyn Client> = Box::new(HttpContractClient {
                clients: self.clone(),
                task,
                bound,
            });
            Ok(client)
        })
    }

    /// A pair for each configured node: pair `n` is bound to the home of task `n`, so the
    /// pairs spread over the voters as the workload's tasks do.
    fn bound_pairs(&self) -> usize {
        self.nodes().len()
    }
}

impl Client for HttpContractClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(self.execute(op))
    }
}

impl HttpContractClient {
    /// Performs `op` and classifies how it ended.
    async fn execute(&self, op: &Op) -> Completion {
        let started = Instant::now();
        let clients = &self.clients;
        // Chosen now rather than at open, so that a client follows the membership's changes.
        let home = &clients.nodes()[clients.membership.home_of(self.task)];
        let mut url = format!("{}{}", home.origin, path(op));
        let redirects = if self.bound { 0 } else { MAX_REDIRECTS };
        for _ in 0..=redirects {
            let node = Some(clients.name_of(&url));
            let remaining = clients.timeout.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                // Only redirects, which change nothing, were answered so far.
                return Completion::new(Outcome::Fail("redirect timeout".into()), node);
            }
            match self.ask(op, &url, remaining).await {
                Answer::Done(outcome) => return Completion::new(outcome, node),
                // The node refused it: it does not lead, and a bound client goes nowhere else.
                Answer::Redirect(_) if self.bound => {
                    return Completion::new(Outcome::Fail(NOT_THE_LEADER.into()), node);
                }
                Answer::Redirect(location) => {
                    match Url::parse(&url).and_then(|base| base.join(&location)) {
                        Ok(next) => url = next.into(),
                        Err(_) => {
                            return Completion::new(Outcome::Fail("bad redirect".into()), node);
                        }
                    }
                }
            }
        }
        let node = Some(clients.name_of(&url));
        Completion::new(Outcome::Fail("too many redirects".into()), node)
    }

    /// Sends `op` to `url` once and classifies the answer.
    async fn ask(&self, op: &Op, url: &str, timeout: Duration) -> Answer {
        let http = &self.clients.http;
        let request = match op {
            Op::Read { .. } => http.get(url),
            Op::Write { value, .. } => http.put(url).json(&json!({ "value": value })),
            Op::Cas { from, to, .. } => http.post(url).json(&json!({ "from": from, "to": to })),
            Op::Append { value, .. } => http.post(url).json(&json!({ "value": value })),
        };
        let response = match request.timeout(timeout).send().await {
            Ok(response) => response,
            Err(error) => return Answer::Done(classify_error(&error)),
        };
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body = response.bytes().await;
        let body = match &body {
            Ok(bytes) => Ok(&bytes[..]),
            Err(error) => Err(body_error_reason(error)),
        };
        classify_response(op, status, location.as_deref(), body)
    }
}

impl HttpContractClients {
    /// The name of the node at `url`'s origin, or the origin itself for a node not configured.
    fn name_of(&self, url: &str) -> String {
        let origin = match Url::parse(url) {
            Ok(url) => url.origin().ascii_serialization(),
            Err(_) => url.to_string(),
        };
        self.nodes()
            .iter()
            .find(|node| node.origin == origin)
            .map_or(origin, |node| node.name.clone())
    }
}

/// The path of `op`'s request.
fn path(op: &Op) -> String {
    match op {
        Op::Read { key } | Op::Write { key, .. } => format!("/kv/{key}"),
        Op::Cas { key, .. } => format!("/kv/{key}/cas"),
        Op::Append { key, .. } => format!("/kv/{key}/append"),
    }
}

/// A node of `endpoint`, its URL checked.
fn node(endpoint: &Endpoint) -> Result<Node, Error> {
    Ok(Node {
        name: endpoint.name.clone(),
        origin: endpoint.origin()?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::fake_node::{FakeNode, Reply, json as reply, redirect, refusing_url};

    const TIMEOUT: Duration = Duration::from_millis(500);

    fn clients(nodes: &[(&str, &str)]) -> HttpContractClients {
        let endpoints: Vec<Endpoint> = nodes
            .iter()
            .map(|(name, url)| Endpoint::new(*name, *url))
            .collect();
        HttpContractClients::new(&endpoints, TIMEOUT).unwrap()
    }

    /// The client of task 0 of a cluster of `nodes`, as the runner opens it.
    async fn client(nodes: &[(&str, &str)]) -> Box<dyn Client> {
        open(&clients(nodes), 0).await
    }

    async fn open(clients: &HttpContractClients, task: usize) -> Box<dyn Client> {
        clients.open(task, Purpose::Workload).await.unwrap()
    }

    fn write(key: &str, value: u64) -> Op {
        Op::Write {
            key: key.into(),
            value,
        }
    }

    fn read(key: &str) -> Op {
        Op::Read { key: key.into() }
    }

    /// The requests of the contract `node` received, leaving out the clients' questions for
    /// the member list.
    fn kv_requests(node: &FakeNode) -> Vec<crate::fake_node::Request> {
        let mut requests = node.requests();
        requests.retain(|request| request.path.starts_with("/kv/"));
        requests
    }

    fn done(outcome: Outcome, node: &str) -> Completion {
        Completion {
            outcome,
            node: Some(node.into()),
        }
    }

    #[tokio::test]
    async fn requests_follow_the_api() {
        let node = FakeNode::start(|request| match request.method.as_str() {
            "GET" => reply(200, r#"{"key":"r1","value":2}"#),
            _ => reply(200, r#"{"ok":true}"#),
        })
        .await;
        let mut client = client(&[("n1", &node.url)]).await;
        let ops = [
            read("r1"),
            write("r1", 3),
            Op::Cas {
                key: "r1".into(),
                from: 3,
                to: 4,
            },
            Op::Append {
                key: "l0".into(),
                value: 9,
            },
        ];
        let mut outcomes = Vec::new();
        for op in &ops {
            outcomes.push(client.invoke(op).await);
        }
        assert_eq!(
            outcomes,
            [
                done(Outcome::Ok(json!(2)), "n1"),
                done(Outcome::Ok(json!(3)), "n1"),
                done(Outcome::Ok(json!([3, 4])), "n1"),
                done(Outcome::Ok(json!(9)), "n1"),
            ]
        );
        let sent: Vec<(String, String, Value)> = node
            .requests()
            .into_iter()
            .map(|r| {
                (
                    r.method,
                    r.path,
                    serde_json::from_str(&r.body).unwrap_or(Value::Null),
                )
            })
            .collect();
        assert_eq!(
            sent,
            [
                ("GET".into(), "/kv/r1".into(), Value::Null),
                ("PUT".into(), "/kv/r1".into(), json!({"value": 3})),
                (
                    "POST".into(),
                    "/kv/r1/cas".into(),
                    json!({"from": 3, "to": 4})
                ),
                ("POST".into(), "/kv/l0/append".into(), json!({"value": 9})),
            ]
        );
    }

    #[tokio::test]
    async fn every_operation_starts_at_home_and_follows_the_redirect() {
        let leader = FakeNode::start(|_| reply(200, r#"{"ok":true}"#)).await;
        let location = format!("{}/kv/r1", leader.url);
        let follower = FakeNode::start(move |_| redirect(&location)).await;
        let mut client = client(&[("n1", &follower.url), ("n2", &leader.url)]).await;

        let first = client.invoke(&write("r1", 1)).await;
        assert_eq!(first, done(Outcome::Ok(json!(1)), "n2"));
        let second = client.invoke(&write("r1", 2)).await;
        assert_eq!(second, done(Outcome::Ok(json!(2)), "n2"));
        assert_eq!(
            kv_requests(&follower).len(),
            2,
            "each operation asks home first"
        );
        let bodies: Vec<String> = kv_requests(&leader).into_iter().map(|r| r.body).collect();
        assert_eq!(
            bodies,
            [r#"{"value":1}"#, r#"{"value":2}"#],
            "the body is sent again"
        );
    }

    #[tokio::test]
    async fn a_bound_client_asks_only_its_node_and_a_redirect_fails_it() {
        let leader = FakeNode::start(|_| reply(200, r#"{"ok":true}"#)).await;
        let location = format!("{}/kv/r1", leader.url);
        let follower = FakeNode::start(move |_| redirect(&location)).await;
        let clients = clients(&[("n1", &follower.url), ("n2", &leader.url)]);
        assert_eq!(clients.bound_pairs(), 2, "a pair a node");
        // Pair 0 is bound to task 0's home, the follower; pair 1 to the leader.
        let mut at_follower = clients.open(7, Purpose::Bound(0)).await.unwrap();
        let completion = at_follower.invoke(&write("r1", 1)).await;
        assert_eq!(
            completion,
            done(Outcome::Fail("not the leader".into()), "n1")
        );
        assert!(kv_requests(&leader).is_empty(), "no redirect followed");
        let mut at_leader = clients.open(8, Purpose::Bound(1)).await.unwrap();
        let completion = at_leader.invoke(&write("r1", 2)).await;
        assert_eq!(completion, done(Outcome::Ok(json!(2)), "n2"));
        assert_eq!(kv_requests(&follower).len(), 1);
    }

    #[tokio::test]
    async fn endless_redirects_fail() {
        let node = FakeNode::start(|request| redirect(&request.path)).await;
        let mut client = client(&[("n1", &node.url)]).await;
        let completion = client.invoke(&write("r1", 1)).await;
        assert_eq!(
            completion,
            done(Outcome::Fail("too many redirects".into()), "n1")
        );
        assert_eq!(node.requests().len(), MAX_REDIRECTS + 1);
    }

    #[tokio::test]
    async fn a_redirect_to_an_unknown_node_names_it_by_address() {
        let other = FakeNode::start(|_| reply(200, r#"{"ok":true}"#)).await;
        let location = format!("{}/kv/r1", other.url);
        let node = FakeNode::start(move |_| redirect(&location)).await;
        let mut client = client(&[("n1", &node.url)]).await;
        let completion = client.invoke(&write("r1", 1)).await;
        assert_eq!(completion, done(Outcome::Ok(json!(1)), &other.url));
    }

    #[tokio::test]
    async fn a_refused_connection_fails_and_a_silent_node_is_info() {
        let refusing = refusing_url().await;
        let hanging = FakeNode::start(|_| Reply::Hang).await;
        let closing = FakeNode::start(|_| Reply::Close).await;
        let truncating = FakeNode::start(|_| Reply::TruncatedBody).await;
        let clients = clients(&[
            ("n1", &refusing),
            ("n2", &hanging.url),
            ("n3", &closing.url),
            ("n4", &truncating.url),
        ]);
        // Task i's client asks node i first.
        let outcome =
            async |task: usize, op: Op| open(&clients, task).await.invoke(&op).await.outcome;
        assert_eq!(
            outcome(0, write("r1", 1)).await,
            Outcome::Fail("connection refused".into())
        );
        assert_eq!(
            outcome(1, write("r1", 1)).await,
            Outcome::Info("timeout".into())
        );
        assert_eq!(
            outcome(1, read("r1")).await,
            Outcome::Info("timeout".into())
        );
        assert_eq!(
            outcome(2, write("r1", 1)).await,
            Outcome::Info("connection lost".into())
        );
        assert_eq!(
            outcome(3, read("r1")).await,
            Outcome::Info("connection lost".into())
        );
        // The status of a write is enough.
        assert_eq!(outcome(3, write("r1", 1)).await, Outcome::Ok(json!(1)));
    }

    #[tokio::test]
    async fn status_codes_are_classified_end_to_end() {
        let node = FakeNode::start(|request| match request.path.as_str() {
            "/kv/missing" => reply(404, r#"{"error":"key not found"}"#),
            "/kv/r1/cas" => reply(409, r#"{"error":"cas mismatch","value":0}"#),
            "/kv/busy" => reply(500, r#"{"error":"the node stopped"}"#),
            _ => reply(504, r#"{"error":"no answer within 5s"}"#),
        })
        .await;
        let mut client = client(&[("n1", &node.url)]).await;
        let cas = Op::Cas {
            key: "r1".into(),
            from: 1,
            to: 2,
        };
        let mut outcome = async |op: Op| client.invoke(&op).await.outcome;
        assert_eq!(outcome(read("missing")).await, Outcome::Ok(Value::Null));
        assert_eq!(outcome(cas).await, Outcome::Fail("cas-mismatch".into()));
        assert_eq!(
            outcome(write("busy", 1)).await,
            Outcome::Info("http 500".into())
        );
        assert_eq!(
            outcome(write("slow", 1)).await,
            Outcome::Info("http 504".into())
        );
    }

    #[test]
    fn bad_node_urls_are_rejected_with_the_reason() {
        let error = |url: &str| {
            HttpContractClients::new(&[Endpoint::new("n1", url)], TIMEOUT)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(error("127.0.0.11:8001").contains("node n1: bad client URL"));
        assert!(error("https://127.0.0.11:8001").contains("only http://"));
        assert!(error("http://127.0.0.11:8001/api").contains("has a path"));
        assert_eq!(error("http://127.0.0.11:8001/"), "");
        assert!(HttpContractClients::new(&[], TIMEOUT).is_err());
    }
}
