//! The clients of an etcd cluster, over its v3 JSON gateway.
//!
//! Each client is bound to a home member by its task number, as a Jepsen client is bound to
//! its node: every member forwards what needs the leader to it, so there are no redirects,
//! and each member's own behaviour (a follower that lost its leader, a stale serializable
//! read) is what the clients see.
//!
//! Keys, one etcd key per register and one per list element:
//! - register `r<N>`: read = range of the key (its value in decimal, `null` when missing),
//!   write = put, cas = a txn that puts `to` if the value equals `from`;
//! - list `l<N>`: append `v` = put `l<N>/<v, 20 digits>` = `v` (elements are unique, so each
//!   append creates its own key); read = every key under `l<N>/`, sorted by the revision that
//!   created it: the list, in the order the appends were committed.
//!
//! Every key-value request carries `Grpc-Metadata-hasleader: true`, which the gateway passes
//! on as gRPC metadata: a member that knows no leader then refuses at once (`no leader`,
//! certainly not done) instead of holding a write until its own request timeout (7 s) and
//! answering something that leaves it unknown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use faultline_history::ModelKind;
use faultline_workloads::{
    BoxFuture, Client, ClientFactory, Completion, Endpoint, Error, Op, Outcome, Purpose,
    model_for_key,
};
use reqwest::Url;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::classify::{Answer, classify};
use super::gateway::{
    Consistency, KvRequest, MEMBER_LIST_PATH, MemberListResponse, PutRequest, RangeRequest,
    RangeResponse, STATUS_PATH, StatusResponse, TxnRequest,
};

/// The header that makes a member without a leader refuse a request before handling it.
const REQUIRE_LEADER: (&str, &str) = ("grpc-metadata-hasleader", "true");

/// The clients of one etcd cluster; cheap to clone. Also asks members for their status and
/// their own copy of a list, for the harness.
#[derive(Clone)]
pub struct EtcdClients {
    shared: Arc<Shared>,
}

struct Shared {
    http: reqwest::Client,
    members: Vec<Member>,
    timeout: Duration,
    /// How the workload's reads read.
    workload_reads: Consistency,
    /// Member ids learnt from the member list: which of `members` each is.
    names: Mutex<HashMap<u64, String>>,
}

/// A member the clients talk to.
struct Member {
    name: String,
    /// Its client URL reduced to an origin (`http://127.0.0.11:2379`).
    origin: String,
}

/// What a member says of itself (`/v3/maintenance/status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// Its etcd member id.
    pub member_id: u64,
    /// Its Raft term.
    pub term: u64,
    /// The leader it knows: the name of one of the cluster's nodes, or the leader's member id
    /// in hex (as `etcdctl` shows ids) if it is none of them; `None` when it knows no leader.
    pub leader: Option<String>,
    /// Whether it is the leader itself.
    pub leads: bool,
    /// Its commit index.
    pub commit: u64,
    /// The index of the last entry it applied.
    pub applied: u64,
    /// What is wrong with it, in etcd's words (`etcdserver: no leader`).
    pub errors: Vec<String>,
}

impl EtcdClients {
    /// The clients of the members at `endpoints` (`http://HOST:PORT`, each named as the
    /// harness names the node), whose requests each take at most `timeout`; the workload's
    /// reads are `workload_reads` (final reads are always linearizable).
    ///
    /// Errors: no endpoints, a URL that is not `http://HOST:PORT`, or an HTTP client that
    /// cannot be set up.
    pub fn new(
        endpoints: &[Endpoint],
        timeout: Duration,
        workload_reads: Consistency,
    ) -> Result<EtcdClients, Error> {
        if endpoints.is_empty() {
            return Err(Error::NoNodes);
        }
        let members = endpoints.iter().map(member).collect::<Result<_, _>>()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            // A connection not made by then is given up as never sent (`fail`); what is left
            // of the timeout is for the answer, whose absence is `info` for a write.
            .connect_timeout(timeout / 2)
            .build()
            .map_err(Error::HttpClient)?;
        Ok(EtcdClients {
            shared: Arc::new(Shared {
                http,
                members,
                timeout,
                workload_reads,
                names: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Member `node`'s own copy of list `list`: a serializable range of its elements,
    /// answered from what that member applied, whether or not it knows a leader.
    pub async fn local_list(&self, node: &str, list: &str) -> Result<Vec<u64>> {
        let member = self.member(node)?;
        let prefix = element_prefix(list);
        let request = KvRequest::Range(RangeRequest::prefix(&prefix, Consistency::Serializable));
        let range: RangeResponse = self.ask(member, request.path(), &request).await?;
        range
            .list()
            .with_context(|| format!("{node}'s copy of {list}"))
    }

    /// What member `node` says of itself, its leader named after the cluster's nodes.
    pub async fn member_status(&self, node: &str) -> Result<MemberStatus> {
        let member = self.member(node)?;
        let status: StatusResponse = self.ask(member, STATUS_PATH, &Empty {}).await?;
        let leader = match status.leader() {
            Some(id) => Some(self.name_of(member, id).await),
            None => None,
        };
        Ok(MemberStatus {
            member_id: status.header.member_id,
            term: status.raft_term,
            leads: status
                .leader()
                .is_some_and(|id| id == status.header.member_id),
            leader,
            commit: status.raft_index,
            applied: status.raft_applied_index,
            errors: status.errors,
        })
    }

    fn member(&self, node: &str) -> Result<&Member> {
        let members = &self.shared.members;
        match members.iter().find(|member| member.name == node) {
            Some(member) => Ok(member),
            None => {
                let known: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                bail!(
                    "no etcd member is named {node:?} (known: {})",
                    known.join(", ")
                )
            }
        }
    }

    /// The node whose member id is `id`, learnt from `asked`'s member list the first time;
    /// the id in hex if it is none of the cluster's nodes.
    async fn name_of(&self, asked: &Member, id: u64) -> String {
        if let Some(name) = self.known_name(id) {
            return name;
        }
        // A member that failed to answer now is asked again next time.
        if let Ok(list) = self
            .ask::<MemberListResponse>(asked, MEMBER_LIST_PATH, &Empty {})
            .await
        {
            let mut names = self.shared.names.lock().unwrap_or_else(|e| e.into_inner());
            for listed in list.members {
                let ours = self.shared.members.iter().find(|member| {
                    listed
                        .client_urls
                        .iter()
                        .any(|url| origin(url).as_deref() == Some(member.origin.as_str()))
                });
                if let Some(ours) = ours {
                    names.insert(listed.id, ours.name.clone());
                }
            }
        }
        self.known_name(id).unwrap_or_else(|| format!("{id:x}"))
    }

    fn known_name(&self, id: u64) -> Option<String> {
        let names = self.shared.names.lock().unwrap_or_else(|e| e.into_inner());
        names.get(&id).cloned()
    }

    /// Posts `body` to `member`'s `path` and reads the answer, without asking for a leader:
    /// the status and a member's own copy are wanted most when it has none.
    async fn ask<T: DeserializeOwned>(
        &self,
        member: &Member,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T> {
        let url = format!("{}{path}", member.origin);
        let asking = || format!("asking etcd member {} ({url})", member.name);
        let response = self
            .shared
            .http
            .post(&url)
            .json(body)
            .timeout(self.shared.timeout)
            .send()
            .await
            .with_context(asking)?;
        let status = response.status();
        let bytes = response.bytes().await.with_context(asking)?;
        let text = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            bail!("{}: answered {status}: {text}", asking());
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: unexpected answer {text}", asking()))
    }
}

/// The body of requests that take no argument: `{}`.
#[derive(Serialize)]
struct Empty {}

impl ClientFactory for EtcdClients {
    fn open(&self, task: usize, purpose: Purpose) -> BoxFuture<'_, Result<Box<dyn Client>, Error>> {
        let client: Box<dyn Client> = Box::new(EtcdClient {
            shared: self.shared.clone(),
            home: task % self.shared.members.len(),
            reads: reads_for(purpose, self.shared.workload_reads),
        });
        Box::pin(async move { Ok(client) })
    }
}

/// How a client opened for `purpose` reads: the final reads decide which acknowledged
/// appends were lost, so they are linearizable whatever the workload's reads are.
fn reads_for(purpose: Purpose, workload_reads: Consistency) -> Consistency {
    match purpose {
        // Never asked for bound clients: the etcd clients bind none.
        Purpose::Workload | Purpose::Bound(_) => workload_reads,
        Purpose::FinalRead => Consistency::Linearizable,
    }
}

/// One client task's client.
struct EtcdClient {
    shared: Arc<Shared>,
    /// The index of its member in `shared.members`.
    home: usize,
    reads: Consistency,
}

impl Client for EtcdClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(self.execute(op))
    }
}

impl EtcdClient {
    async fn execute(&self, op: &Op) -> Completion {
        let member = &self.shared.members[self.home];
        let outcome = match request(op, self.reads) {
            Ok(request) => self.send(member, op, &request).await,
            // Nothing was sent.
            Err(reason) => Outcome::Fail(reason),
        };
        Completion::new(outcome, Some(member.name.clone()))
    }

    /// Sends `request` to `member` and classifies the answer.
    async fn send(&self, member: &Member, op: &Op, request: &KvRequest) -> Outcome {
        let response = self
            .shared
            .http
            .post(format!("{}{}", member.origin, request.path()))
            .header(REQUIRE_LEADER.0, REQUIRE_LEADER.1)
            .json(request)
            .timeout(self.shared.timeout)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return classify(op, Answer::from_error(&error)),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(body) => classify(
                op,
                Answer::Http {
                    status,
                    body: &body,
                },
            ),
            Err(error) => classify(op, Answer::from_error(&error)),
        }
    }
}

/// The gateway request that performs `op`, or why there is none.
fn request(op: &Op, reads: Consistency) -> Result<KvRequest, String> {
    let request = match (op, model_for_key(op.key())) {
        (Op::Read { key }, Some(ModelKind::CasRegister)) => {
            KvRequest::Range(RangeRequest::key(key, reads))
        }
        (Op::Read { key }, Some(ModelKind::ListAppend)) => {
            KvRequest::Range(RangeRequest::prefix(&element_prefix(key), reads))
        }
        (Op::Write { key, value }, Some(ModelKind::CasRegister)) => {
            KvRequest::Put(PutRequest::new(key, &value.to_string()))
        }
        (Op::Cas { key, from, to }, Some(ModelKind::CasRegister)) => KvRequest::Txn(
            TxnRequest::compare_and_put(key, &from.to_string(), &to.to_string()),
        ),
        (Op::Append { key, value }, Some(ModelKind::ListAppend)) => KvRequest::Put(
            PutRequest::new(&element_key(key, *value), &value.to_string()),
        ),
        _ => {
            return Err(format!(
                "{} of {:?} is not an etcd operation (expected read, write or cas of a \
                 register r<N>, read or append of a list l<N>)",
                op.f(),
                op.key()
            ));
        }
    };
    Ok(request)
}

/// The prefix of the keys of `list`'s elements.
fn element_prefix(list: &str) -> String {
    format!("{list}/")
}

/// The key of element `value` of `list`: zero-padded, so that an element's key never is a
/// prefix of another's and the keys list in numeric order in `etcdctl get --prefix`.
fn element_key(list: &str, value: u64) -> String {
    format!("{}{value:020}", element_prefix(list))
}

/// The member at `endpoint`, its URL checked.
fn member(endpoint: &Endpoint) -> Result<Member, Error> {
    Ok(Member {
        name: endpoint.name.clone(),
        origin: endpoint.origin()?,
    })
}

/// `url` reduced to its origin, if it is a URL.
fn origin(url: &str) -> Option<String> {
    Url::parse(url)
        .ok()
        .map(|url| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(op: Op, reads: Consistency) -> (&'static str, serde_json::Value) {
        let request = request(&op, reads).unwrap();
        (request.path(), serde_json::to_value(&request).unwrap())
    }

    #[test]
    fn registers_are_keys_and_lists_are_keys_under_a_prefix() {
        let read = |key: &str| Op::Read { key: key.into() };
        assert_eq!(
            body(read("r7"), Consistency::Linearizable),
            ("/v3/kv/range", json!({"key": "cjc="}))
        );
        // l7/ to l70: every element of l7, and none of l70's (l70/...).
        assert_eq!(
            body(read("l7"), Consistency::Serializable),
            (
                "/v3/kv/range",
                json!({"key": "bDcv", "range_end": "bDcw", "sort_order": "ASCEND",
                       "sort_target": "CREATE", "serializable": true})
            )
        );
        let append = Op::Append {
            key: "l7".into(),
            value: 42,
        };
        let (path, put) = body(append, Consistency::Linearizable);
        assert_eq!(path, "/v3/kv/put");
        assert_eq!(put["key"], json!(base64("l7/00000000000000000042")));
        assert_eq!(put["value"], json!(base64("42")));
        let cas = Op::Cas {
            key: "r7".into(),
            from: 1,
            to: 2,
        };
        let (path, txn) = body(cas, Consistency::Linearizable);
        assert_eq!(path, "/v3/kv/txn");
        assert_eq!(txn["compare"][0]["value"], json!(base64("1")));
        assert_eq!(
            txn["success"][0]["request_put"]["value"],
            json!(base64("2"))
        );
    }

    fn base64(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn element_keys_sort_like_their_numbers() {
        let keys: Vec<String> = [0, 9, 10, u64::MAX].map(|v| element_key("l1", v)).into();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys[3], "l1/18446744073709551615");
    }

    #[test]
    fn operations_that_fit_no_key_are_refused_without_sending() {
        let append_to_register = Op::Append {
            key: "r1".into(),
            value: 1,
        };
        let error = request(&append_to_register, Consistency::Linearizable).unwrap_err();
        assert!(error.contains(r#"append of "r1""#), "{error}");
        let unknown = Op::Read { key: "x1".into() };
        assert!(request(&unknown, Consistency::Linearizable).is_err());
    }

    #[test]
    fn final_reads_are_linearizable_whatever_the_workload_reads() {
        use Consistency::{Linearizable, Serializable};
        assert_eq!(reads_for(Purpose::Workload, Linearizable), Linearizable);
        assert_eq!(reads_for(Purpose::Workload, Serializable), Serializable);
        assert_eq!(reads_for(Purpose::FinalRead, Serializable), Linearizable);
    }

    #[test]
    fn bad_member_urls_are_rejected_with_the_reason() {
        let error = |url: &str| {
            let endpoints = [Endpoint::new("n1", url)];
            EtcdClients::new(
                &endpoints,
                Duration::from_secs(1),
                Consistency::Linearizable,
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        };
        assert!(error("127.0.0.11:2379").contains("node n1: bad client URL"));
        assert!(error("https://127.0.0.11:2379").contains("only http://"));
        assert!(error("http://127.0.0.11:2379/v3").contains("has a path"));
        assert_eq!(error("http://127.0.0.11:2379"), "");
        let none = EtcdClients::new(&[], Duration::from_secs(1), Consistency::Linearizable);
        assert!(none.is_err());
    }

    #[tokio::test]
    async fn each_task_has_a_home_member_and_nodes_are_known_by_name() {
        // Nothing listens there: every request is refused, and says where it went.
        let closed = |_| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let endpoints = [
            Endpoint::new("n1", closed(1)),
            Endpoint::new("n2", closed(2)),
        ];
        let clients = EtcdClients::new(
            &endpoints,
            Duration::from_secs(1),
            Consistency::Linearizable,
        )
        .unwrap();
        let read = Op::Read { key: "r1".into() };
        let mut asked = Vec::new();
        for task in 0..3 {
            let mut client = clients.open(task, Purpose::Workload).await.unwrap();
            asked.push(client.invoke(&read).await);
        }
        let refused = |node: &str| {
            Completion::new(
                Outcome::Fail("connection refused".into()),
                Some(node.into()),
            )
        };
        assert_eq!(asked, [refused("n1"), refused("n2"), refused("n1")]);

        let error = clients.member_status("n9").await.unwrap_err().to_string();
        assert_eq!(error, r#"no etcd member is named "n9" (known: n1, n2)"#);
    }
}
