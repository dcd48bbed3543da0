//! The client of Redis with Sentinel: it asks the sentinels which server is the primary, as
//! real clients do, and performs the workloads' operations there.
//!
//! Discovery follows Redis's guidelines for Sentinel clients: ask the sentinels in turn
//! `SENTINEL GET-MASTER-ADDR-BY-NAME`, starting with the one beside the client's home node (task
//! `i` is at home on node `i % nodes`), take the first address named, connect, and check with
//! `ROLE` that the server is a primary. A client keeps its connection while operations
//! succeed and asks again after any error, so it follows a failover as soon as a sentinel it
//! asks knows of it. A client whose home sentinel is cut off with the old primary keeps being
//! told the old primary, as a real client in that place would.
//!
//! Operations: a register read is `GET` (a missing key reads `null`), a write `SET`, a
//! compare-and-set the Lua script [`CAS_SCRIPT`] (atomic, one round trip); a list append is
//! `RPUSH`, a list read `LRANGE key 0 -1` (a missing list reads `[]`). Values are stored as
//! decimal strings.
//!
//! # What each outcome means
//!
//! Every server error reply comes from a check Redis makes before a command changes anything
//! (the script writes last), so it is a refusal. Reads change nothing, so whatever goes wrong
//! with one is a `fail`.
//!
//! | what happened | read | write, cas, append |
//! |---|---|---|
//! | the answer | `ok`, the value read | `ok`; a cas whose script answered 0: `fail` `cas-mismatch` |
//! | no sentinel named a primary | `fail` `no primary` | same |
//! | connecting (and `ROLE`) refused, timed out or failed: nothing sent | `fail` `connection refused`, `connect timeout`, `connect error` | same |
//! | the server named is not a primary (`ROLE`) | `fail` `not primary` | same |
//! | a server error reply: `-READONLY`, `-LOADING`, `-MASTERDOWN`, `-NOREPLICAS`, `-BUSY`, `-ERR`, ... | `fail`, its code in lower case (`readonly`, ...) | same |
//! | no answer within the timeout | `fail` `timeout` | `info` `timeout` |
//! | the connection lost, once the command was handed to it | `fail` `connection lost` | `info` `connection lost` |
//! | an answer of the wrong shape | `fail` `bad response` | `info` `bad response` |
//!
//! Besides the workloads' clients: [`role`] asks one server for its replication role (for the
//! harness's status poll), and [`local_list`] reads one server's own copy of a list (for the
//! divergence check).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use faultline_history::ModelKind;
use faultline_workloads::{
    BoxFuture, CAS_MISMATCH, Client, ClientFactory, Completion, Error, Op, Outcome, Purpose,
    model_for_key,
};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, RedisError, Value};
use serde_json::json;
use tokio::time::Instant;

/// Sets `KEYS[1]` to `ARGV[2]` if it holds `ARGV[1]`: answers 1 if it did, 0 if not. It
/// writes last, so an error (a replica's `-READONLY`) leaves the key as it was.
pub const CAS_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end";

/// One node: its redis-server and the sentinel beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisNode {
    /// Its name, as recorded in the history's `node` (`n1`, ...).
    pub name: String,
    /// Where its redis-server listens.
    pub server: SocketAddr,
    /// Where its redis-sentinel listens.
    pub sentinel: SocketAddr,
}

/// The clients of a Redis + Sentinel cluster; cheap to clone.
#[derive(Clone)]
pub struct RedisClients {
    nodes: Arc<[RedisNode]>,
    master_name: Arc<str>,
    timeout: Duration,
}

impl RedisClients {
    /// The clients of `nodes`, whose sentinels monitor the primary as `master_name`; each
    /// operation takes at most `timeout`, discovery included.
    ///
    /// Errors: no nodes.
    pub fn new(
        nodes: Vec<RedisNode>,
        master_name: &str,
        timeout: Duration,
    ) -> Result<RedisClients, Error> {
        if nodes.is_empty() {
            return Err(Error::NoNodes);
        }
        Ok(RedisClients {
            nodes: nodes.into(),
            master_name: master_name.into(),
            timeout,
        })
    }

    /// The primary's address as the first sentinel to answer names it, asking node `home`'s
    /// sentinel first and then the others in order; `None` if none named one by `deadline`.
    pub async fn discover(&self, home: usize, deadline: Instant) -> Option<SocketAddr> {
        // A sentinel that does not answer gets only its share of the time, so that the others
        // are asked too.
        let per_sentinel = self.timeout / 4;
        for offset in 0..self.nodes.len() {
            let sentinel = self.nodes[(home + offset) % self.nodes.len()].sentinel;
            let timeout = per_sentinel.min(deadline.saturating_duration_since(Instant::now()));
            if timeout.is_zero() {
                return None;
            }
            if let Ok(Some(primary)) = self.ask_sentinel(sentinel, timeout).await {
                return Some(primary);
            }
        }
        None
    }

    /// What one sentinel names as the primary (`None`: it knows no primary by that name).
    async fn ask_sentinel(
        &self,
        sentinel: SocketAddr,
        timeout: Duration,
    ) -> Result<Option<SocketAddr>> {
        let started = Instant::now();
        let mut connection = connect(sentinel, timeout, timeout).await?;
        connection.set_response_timeout(timeout.saturating_sub(started.elapsed()));
        let answer: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&*self.master_name)
            .query_async(&mut connection)
            .await?;
        answer.map(|(ip, port)| socket_addr(&ip, port)).transpose()
    }

    /// The name of the node whose server is at `addr`, or the address itself for a server not
    /// configured.
    fn name_of(&self, addr: SocketAddr) -> String {
        self.nodes
            .iter()
            .find(|node| node.server == addr)
            .map_or_else(|| addr.to_string(), |node| node.name.clone())
    }
}

impl ClientFactory for RedisClients {
    fn open(&self, task: usize, _: Purpose) -> BoxFuture<'_, Result<Box<dyn Client>, Error>> {
        // The primary is discovered by the first operation, within its timeout: a cluster
        // without one must not stop the run from opening its clients.
        let client: Box<dyn Client> = Box::new(RedisClient {
            clients: self.clone(),
            home: task % self.nodes.len(),
            primary: None,
        });
        Box::pin(async move { Ok(client) })
    }
}

/// One client task's client: its home node and its connection to the primary, if it has one.
struct RedisClient {
    clients: RedisClients,
    home: usize,
    primary: Option<Primary>,
}

/// A connection to the server that was the primary when it was made.
struct Primary {
    node: String,
    connection: MultiplexedConnection,
}

impl Client for RedisClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(self.execute(op))
    }
}

impl RedisClient {
    /// Performs `op` on the primary, found first if need be, and classifies how it ended.
    async fn execute(&mut self, op: &Op) -> Completion {
        let deadline = Instant::now() + self.clients.timeout;
        let mut primary = match self.primary.take() {
            Some(primary) => primary,
            None => match self.connect_primary(deadline).await {
                Ok(primary) => primary,
                Err(failure) => return failure,
            },
        };
        let node = Some(primary.node.clone());
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            // Finding the primary took all the time, and nothing was sent.
            self.primary = Some(primary);
            return Completion::new(Outcome::Fail("connect timeout".into()), node);
        }
        primary.connection.set_response_timeout(remaining);
        let outcome = match request(op).query_async(&mut primary.connection).await {
            Ok(value) => answer(op, value),
            Err(error) => command_failure(op, &error),
        };
        if is_success(&outcome) {
            self.primary = Some(primary);
        }
        Completion::new(outcome, node)
    }

    /// Asks the sentinels for the primary, connects to it and checks that it is one; a
    /// completion of `fail` if any of it goes wrong (nothing of the operation was sent).
    async fn connect_primary(&self, deadline: Instant) -> Result<Primary, Completion> {
        let clients = &self.clients;
        let Some(addr) = clients.discover(self.home, deadline).await else {
            return Err(Completion::new(Outcome::Fail("no primary".into()), None));
        };
        let node = clients.name_of(addr);
        let fail = |outcome: Outcome| Completion::new(outcome, Some(node.clone()));
        let remaining = deadline.saturating_duration_since(Instant::now());
        // A connection not made by then is given up as a `fail`, leaving the rest of the
        // time for the answer.
        let connect_timeout = (clients.timeout / 2).min(remaining);
        let mut connection = match connect(addr, connect_timeout, remaining).await {
            Ok(connection) => connection,
            Err(error) => return Err(fail(connect_failure(&error))),
        };
        connection.set_response_timeout(deadline.saturating_duration_since(Instant::now()));
        let role = match redis::cmd("ROLE").query_async(&mut connection).await {
            Ok(value) => parse_role(value),
            Err(error) => return Err(fail(connect_failure(&error))),
        };
        match role {
            Ok(Role::Primary { .. }) => Ok(Primary { node, connection }),
            Ok(_) => Err(fail(Outcome::Fail("not primary".into()))),
            Err(_) => Err(fail(Outcome::Fail("bad response".into()))),
        }
    }
}

/// The command that performs `op`.
fn request(op: &Op) -> Cmd {
    match op {
        Op::Read { key } if is_list(key) => Cmd::lrange(key, 0, -1),
        Op::Read { key } => Cmd::get(key),
        Op::Write { key, value } => Cmd::set(key, value),
        Op::Cas { key, from, to } => {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(CAS_SCRIPT).arg(1).arg(key).arg(from).arg(to);
            cmd
        }
        Op::Append { key, value } => Cmd::rpush(key, value),
    }
}

/// Whether `key` names a list (read with `LRANGE`) rather than a register.
fn is_list(key: &str) -> bool {
    model_for_key(key) == Some(ModelKind::ListAppend)
}

/// What the server's answer `value` to `op` means.
fn answer(op: &Op, value: Value) -> Outcome {
    let bad = || {
        if op.is_read() {
            Outcome::Fail("bad response".into())
        } else {
            Outcome::Info("bad response".into())
        }
    };
    match op {
        Op::Read { key } if is_list(key) => match redis::from_redis_value::<Vec<u64>>(value) {
            Ok(list) => Outcome::Ok(json!(list)),
            Err(_) => bad(),
        },
        Op::Read { .. } => match redis::from_redis_value::<Option<u64>>(value) {
            Ok(register) => Outcome::Ok(json!(register)),
            Err(_) => bad(),
        },
        Op::Write { .. } => match value {
            Value::Okay => Outcome::Ok(op.argument()),
            _ => bad(),
        },
        Op::Cas { .. } => match value {
            Value::Int(1) => Outcome::Ok(op.argument()),
            Value::Int(0) => Outcome::Fail(CAS_MISMATCH.into()),
            _ => bad(),
        },
        Op::Append { .. } => match value {
            Value::Int(length) if length > 0 => Outcome::Ok(op.argument()),
            _ => bad(),
        },
    }
}

/// What an error while connecting (or asking `ROLE`) means: nothing of the operation was
/// sent, so it is a `fail`.
fn connect_failure(error: &RedisError) -> Outcome {
    let reason = if error.is_connection_refusal() {
        "connection refused".to_string()
    } else if error.is_timeout() {
        "connect timeout".to_string()
    } else if let Some(code) = error.code() {
        code.to_lowercase()
    } else {
        "connect error".to_string()
    };
    Outcome::Fail(reason)
}

/// What an error after `op` was sent means.
pub(crate) fn command_failure(op: &Op, error: &RedisError) -> Outcome {
    if let Some(code) = error.code() {
        // A server error reply: Redis refused the command before changing anything.
        return Outcome::Fail(code.to_lowercase());
    }
    let reason = if error.is_timeout() {
        "timeout"
    } else if error.kind() == ErrorKind::Parse {
        "bad response"
    } else {
        "connection lost"
    };
    if op.is_read() {
        Outcome::Fail(reason.into())
    } else {
        Outcome::Info(reason.into())
    }
}

/// Whether the connection may be used for the next operation: the server answered as a primary
/// does.
fn is_success(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Ok(_) => true,
        Outcome::Fail(reason) => reason == CAS_MISMATCH,
        Outcome::Info(_) => false,
    }
}

/// A connection to `addr`, made within `connect_timeout`, whose answers time out after
/// `response_timeout`.
pub async fn connect(
    addr: SocketAddr,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> Result<MultiplexedConnection, RedisError> {
    let client = redis::Client::open((addr.ip().to_string(), addr.port()))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(response_timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// A server's replication role, as `ROLE` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// It takes writes.
    Primary {
        /// Its replication offset: how many bytes of changes it has produced.
        offset: u64,
        /// The replicas connected to it, by their listening address.
        replicas: Vec<SocketAddr>,
    },
    /// It copies `primary`.
    Replica {
        /// The server it replicates, as configured.
        primary: SocketAddr,
        /// Whether its link to the primary is up and in sync (`connected`), rather than
        /// connecting or transferring a full copy.
        connected: bool,
        /// How many bytes of the primary's changes it has applied; `None` before its first
        /// synchronisation.
        offset: Option<u64>,
    },
}

/// The replication role of the redis-server at `addr`.
///
/// Errors: no connection or answer within `timeout` (a stopped or cut-off server), or an
/// answer that is not a server's role (a sentinel's port, say).
pub async fn role(addr: SocketAddr, timeout: Duration) -> Result<Role> {
    let mut connection = connect(addr, timeout, timeout)
        .await
        .with_context(|| format!("connecting to the redis-server at {addr} to ask its role"))?;
    let value: Value = redis::cmd("ROLE")
        .query_async(&mut connection)
        .await
        .with_context(|| format!("asking the redis-server at {addr} its ROLE"))?;
    parse_role(value).with_context(|| format!("the ROLE of the redis-server at {addr}"))
}

/// The list `key` as the redis-server at `addr` holds it (a replica's own copy, too); `[]` if
/// it has none.
///
/// Errors: no connection or answer within `timeout`, or a key that holds no list of numbers.
pub async fn local_list(addr: SocketAddr, key: &str, timeout: Duration) -> Result<Vec<u64>> {
    let mut connection = connect(addr, timeout, timeout)
        .await
        .with_context(|| format!("connecting to the redis-server at {addr} to read {key}"))?;
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(&mut connection)
        .await
        .with_context(|| format!("LRANGE {key} 0 -1 on the redis-server at {addr}"))
}

/// Reads `ROLE`'s answer: `[master, offset, [[ip, port, offset], ...]]` or `[slave, ip, port,
/// state, offset]`.
fn parse_role(value: Value) -> Result<Role> {
    let Value::Array(fields) = value else {
        bail!("expected an array, got {value:?}");
    };
    let mut fields = fields.into_iter();
    let kind: String =
        redis::from_redis_value(fields.next().unwrap_or(Value::Nil)).context("the role's name")?;
    match kind.as_str() {
        "master" => {
            let offset = redis::from_redis_value(fields.next().unwrap_or(Value::Nil))
                .context("the primary's offset")?;
            let replicas: Vec<(String, u16, String)> =
                redis::from_redis_value(fields.next().unwrap_or(Value::Nil))
                    .context("the primary's replicas")?;
            let replicas = replicas
                .into_iter()
                .map(|(ip, port, _offset)| socket_addr(&ip, port))
                .collect::<Result<_>>()?;
            Ok(Role::Primary { offset, replicas })
        }
        "slave" => {
            let (ip, port, state, offset): (String, u16, String, i64) =
                redis::from_redis_value(Value::Array(fields.collect()))
                    .context("the replica's primary, link state and offset")?;
            Ok(Role::Replica {
                primary: socket_addr(&ip, port)?,
                connected: state == "connected",
                // -1 until the first synchronisation.
                offset: u64::try_from(offset).ok(),
            })
        }
        "sentinel" => Err(anyhow!("it is a sentinel, not a redis-server")),
        other => Err(anyhow!("unknown role {other:?}")),
    }
}

/// `ip:port` of an address Redis gave as text.
fn socket_addr(ip: &str, port: u16) -> Result<SocketAddr> {
    let ip: IpAddr = ip
        .parse()
        .with_context(|| format!("{ip:?} is not an IP address"))?;
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use std::io;

    use redis::parse_redis_value;

    use super::*;

    fn read(key: &str) -> Op {
        Op::Read { key: key.into() }
    }
    fn write() -> Op {
        Op::Write {
            key: "r1".into(),
            value: 3,
        }
    }
    fn cas() -> Op {
        Op::Cas {
            key: "r1".into(),
            from: 1,
            to: 2,
        }
    }
    fn append() -> Op {
        Op::Append {
            key: "l1".into(),
            value: 7,
        }
    }
    fn fail(reason: &str) -> Outcome {
        Outcome::Fail(reason.into())
    }
    fn info(reason: &str) -> Outcome {
        Outcome::Info(reason.into())
    }

    /// The value of a reply as Redis sends it on the wire.
    fn reply(wire: &str) -> Value {
        parse_redis_value(wire.as_bytes()).unwrap()
    }

    /// The error of an error reply as Redis sends it on the wire.
    fn error_reply(wire: &str) -> RedisError {
        reply(wire).extract_error().unwrap_err()
    }

    fn io_error(kind: io::ErrorKind) -> RedisError {
        io::Error::from(kind).into()
    }

    #[test]
    fn each_operation_is_its_command() {
        let packed = |op: &Op| String::from_utf8(request(op).get_packed_command()).unwrap();
        assert_eq!(packed(&read("r1")), "*2\r\n$3\r\nGET\r\n$2\r\nr1\r\n");
        assert_eq!(
            packed(&read("l1")),
            "*4\r\n$6\r\nLRANGE\r\n$2\r\nl1\r\n$1\r\n0\r\n$2\r\n-1\r\n"
        );
        assert_eq!(
            packed(&write()),
            "*3\r\n$3\r\nSET\r\n$2\r\nr1\r\n$1\r\n3\r\n"
        );
        assert_eq!(
            packed(&append()),
            "*3\r\n$5\r\nRPUSH\r\n$2\r\nl1\r\n$1\r\n7\r\n"
        );
        let cas = packed(&cas());
        assert!(cas.starts_with("*6\r\n$4\r\nEVAL\r\n"));
        assert!(cas.ends_with("\r\n$1\r\n1\r\n$2\r\nr1\r\n$1\r\n1\r\n$1\r\n2\r\n"));
    }

    #[test]
    fn answers_record_the_value_read_or_the_argument() {
        assert_eq!(
            answer(&read("r1"), reply("$1\r\n4\r\n")),
            Outcome::Ok(json!(4))
        );
        assert_eq!(
            answer(&read("r1"), reply("$-1\r\n")),
            Outcome::Ok(json!(null))
        );
        assert_eq!(
            answer(&read("l1"), reply("*2\r\n$1\r\n5\r\n$1\r\n3\r\n")),
            Outcome::Ok(json!([5, 3]))
        );
        assert_eq!(answer(&read("l1"), reply("*0\r\n")), Outcome::Ok(json!([])));
        assert_eq!(answer(&write(), reply("+OK\r\n")), Outcome::Ok(json!(3)));
        assert_eq!(answer(&cas(), reply(":1\r\n")), Outcome::Ok(json!([1, 2])));
        assert_eq!(answer(&append(), reply(":4\r\n")), Outcome::Ok(json!(7)));
    }

    #[test]
    fn a_cas_whose_script_answers_0_is_a_mismatch() {
        assert_eq!(answer(&cas(), reply(":0\r\n")), fail(CAS_MISMATCH));
    }

    #[test]
    fn answers_of_the_wrong_shape_fail_reads_and_leave_writes_unknown() {
        assert_eq!(
            answer(&read("r1"), reply("$3\r\nabc\r\n")),
            fail("bad response")
        );
        assert_eq!(answer(&read("l1"), reply(":3\r\n")), fail("bad response"));
        assert_eq!(answer(&write(), reply(":1\r\n")), info("bad response"));
        assert_eq!(answer(&cas(), reply(":7\r\n")), info("bad response"));
        assert_eq!(answer(&append(), reply("+OK\r\n")), info("bad response"));
    }

    #[test]
    fn server_error_replies_are_refusals_of_every_operation() {
        let replies = [
            (
                "-READONLY You can't write against a read only replica.\r\n",
                "readonly",
            ),
            (
                "-LOADING Redis is loading the dataset in memory\r\n",
                "loading",
            ),
            (
                "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
                "masterdown",
            ),
            (
                "-NOREPLICAS Not enough good replicas to write.\r\n",
                "noreplicas",
            ),
            (
                "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.\r\n",
                "busy",
            ),
            ("-ERR Error running script\r\n", "err"),
            (
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                "wrongtype",
            ),
        ];
        for (wire, reason) in replies {
            let error = error_reply(wire);
            for op in [read("r1"), read("l1"), write(), cas(), append()] {
                assert_eq!(
                    command_failure(&op, &error),
                    fail(reason),
                    "{wire} to {op:?}"
                );
            }
        }
    }

    #[test]
    fn no_answer_leaves_writes_unknown_and_fails_reads() {
        let cases = [
            (io_error(io::ErrorKind::TimedOut), "timeout"),
            (io_error(io::ErrorKind::ConnectionReset), "connection lost"),
            (io_error(io::ErrorKind::BrokenPipe), "connection lost"),
            (io_error(io::ErrorKind::UnexpectedEof), "connection lost"),
            (
                redis::parse_redis_value(b"?garbage\r\n").unwrap_err(),
                "bad response",
            ),
        ];
        for (error, reason) in cases {
            for op in [write(), cas(), append()] {
                assert_eq!(command_failure(&op, &error), info(reason), "{op:?}");
            }
            for op in [read("r1"), read("l1")] {
                assert_eq!(command_failure(&op, &error), fail(reason), "{op:?}");
            }
        }
    }

    #[test]
    fn errors_while_connecting_fail_every_operation() {
        assert_eq!(
            connect_failure(&io_error(io::ErrorKind::ConnectionRefused)),
            fail("connection refused")
        );
        assert_eq!(
            connect_failure(&io_error(io::ErrorKind::TimedOut)),
            fail("connect timeout")
        );
        assert_eq!(
            connect_failure(&io_error(io::ErrorKind::HostUnreachable)),
            fail("connect error")
        );
        assert_eq!(
            connect_failure(&error_reply(
                "-LOADING Redis is loading the dataset in memory\r\n"
            )),
            fail("loading")
        );
    }

    #[test]
    fn only_answers_as_a_primary_gives_keep_the_connection() {
        assert!(is_success(&Outcome::Ok(json!(1))));
        assert!(is_success(&fail(CAS_MISMATCH)));
        assert!(!is_success(&fail("readonly")));
        assert!(!is_success(&info("timeout")));
    }

    #[test]
    fn roles_are_read_as_redis_7_answers_them() {
        // Captured from redis-server 7.0.15.
        let primary = reply(
            "*3\r\n$6\r\nmaster\r\n:868\r\n*2\r\n\
             *3\r\n$10\r\n127.0.0.42\r\n$5\r\n17002\r\n$3\r\n868\r\n\
             *3\r\n$10\r\n127.0.0.43\r\n$5\r\n17003\r\n$3\r\n868\r\n",
        );
        assert_eq!(
            parse_role(primary).unwrap(),
            Role::Primary {
                offset: 868,
                replicas: vec![
                    "127.0.0.42:17002".parse().unwrap(),
                    "127.0.0.43:17003".parse().unwrap()
                ],
            }
        );
        let replica = reply(
            "*5\r\n$5\r\nslave\r\n$10\r\n127.0.0.41\r\n:17001\r\n$9\r\nconnected\r\n:868\r\n",
        );
        assert_eq!(
            parse_role(replica).unwrap(),
            Role::Replica {
                primary: "127.0.0.41:17001".parse().unwrap(),
                connected: true,
                offset: Some(868),
            }
        );
        let syncing = reply(
            "*5\r\n$5\r\nslave\r\n$10\r\n127.0.0.41\r\n:17001\r\n$10\r\nconnecting\r\n:-1\r\n",
        );
        assert_eq!(
            parse_role(syncing).unwrap(),
            Role::Replica {
                primary: "127.0.0.41:17001".parse().unwrap(),
                connected: false,
                offset: None,
            }
        );
        let lone = reply("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
        assert_eq!(
            parse_role(lone).unwrap(),
            Role::Primary {
                offset: 0,
                replicas: vec![]
            }
        );
    }

    #[test]
    fn answers_that_are_no_server_role_are_errors() {
        let error = |wire: &str| format!("{:#}", parse_role(reply(wire)).unwrap_err());
        assert!(error("*2\r\n$8\r\nsentinel\r\n*1\r\n$9\r\nfaultline\r\n").contains("sentinel"));
        assert!(error("+OK\r\n").contains("expected an array"));
        assert!(error("*1\r\n$7\r\nunknown\r\n").contains("unknown role"));
        assert!(
            error("*5\r\n$5\r\nslave\r\n$9\r\nlocalhost\r\n:1\r\n$9\r\nconnected\r\n:0\r\n")
                .contains("not an IP address")
        );
    }

    #[tokio::test]
    async fn no_answering_sentinel_means_no_primary() {
        // A port nobody listens on: every sentinel refuses.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap();
        drop(listener);
        let node = |name: &str| RedisNode {
            name: name.into(),
            server: closed,
            sentinel: closed,
        };
        let clients = RedisClients::new(
            vec![node("n1"), node("n2")],
            "faultline",
            Duration::from_millis(200),
        )
        .unwrap();
        let mut client = clients.open(0, Purpose::Workload).await.unwrap();
        let completion = client.invoke(&write()).await;
        assert_eq!(completion, Completion::new(fail("no primary"), None));
        assert!(RedisClients::new(vec![], "faultline", Duration::from_secs(1)).is_err());
    }
}
