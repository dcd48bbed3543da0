//! What a system's client must do for the runner: perform one operation and say what became
//! of it. The runner, the recorder and the checkers know nothing else of the system, so any
//! system whose client implements [`Client`] and [`ClientFactory`] is tested the same way
//! (Jepsen's split of a test into a database and its client).
//!
//! # What each outcome must mean
//!
//! The checker trusts the classification, so an implementation must draw the lines exactly:
//!
//! - [`Outcome::Ok`]: the operation took effect (a read saw this value). The value is the
//!   value read for a read, the argument ([`Op::argument`]) otherwise.
//! - [`Outcome::Fail`]: the operation certainly took no effect: the request never reached
//!   the system (connection refused), or the system refused it before acting on it (no
//!   leader). A compare-and-set whose comparison failed is `fail` with the reason
//!   [`CAS_MISMATCH`](crate::CAS_MISMATCH) exactly: the checker uses what it observed.
//! - [`Outcome::Info`]: anything that does not prove one of the two: a timeout, a connection
//!   lost after the request was sent, an answer that cannot be read. An `info` is always
//!   safe; a `fail` that did happen makes a correct system look broken.
//!
//! # How the runner uses them
//!
//! - It opens a client for each client task ([`ClientFactory::open`]) and performs one
//!   operation at a time with it.
//! - A client should end every [`Client::invoke`] within the run's client timeout; the runner
//!   gives up on one that has not [`crate::BACKSTOP_MARGIN`] later and records `info`
//!   `timeout`.
//! - After an `info` it drops the client and opens a new one: the old one may still have the
//!   operation in flight, so nothing it says next could be trusted. Dropping a client closes
//!   it (one that owns a process kills it on drop).
//! - An `open` that fails, or takes longer than an operation may, is retried after a growing
//!   pause until the deadline; [`crate::ClientRun::failed_opens`] keeps the last error.

use std::future::Future;
use std::pin::Pin;

use crate::error::Error;
use crate::op::Op;
use crate::outcome::Outcome;

/// The reason of the `fail` a node-bound client records when its node sends it elsewhere
/// ([`Purpose::Bound`]): the node does not lead, and refused the operation.
pub const NOT_THE_LEADER: &str = "not the leader";

/// A boxed future that can move between threads: what the traits here return, so that they
/// can be used as `dyn` objects and the runner is compiled once for every system.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How an operation ended, and which node answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// What became of the operation.
    pub outcome: Outcome,
    /// The node whose answer decided it (recorded as the history's `node`), if known.
    pub node: Option<String>,
}

impl Completion {
    /// An operation that ended with `outcome`, as `node` answered.
    pub fn new(outcome: Outcome, node: Option<String>) -> Completion {
        Completion { outcome, node }
    }
}

/// One client task's connection to the system under test.
pub trait Client: Send {
    /// Performs `op` and classifies how it ended (see the module's documentation for what
    /// `ok`, `fail` and `info` must mean). Never longer than the run's client timeout.
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion>;
}

/// What a client is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// The run's operations, and the probe that asks whether the cluster takes writes again.
    Workload,
    /// The run's operations, sent to one node only and never redirected: the home of task
    /// number `slot`, as [`ClientFactory::open`] would home it at each operation (so the
    /// node changes only as the members do). What that node alone answers is what the client sees, as a Jepsen client bound
    /// to its node: a leader cut off from the others, still serving reads; the new leader
    /// taking writes while the old one still answers. A node that sends the client elsewhere
    /// (it does not lead) refused the operation: `fail`. Asked only of a system that
    /// [binds clients](ClientFactory::bound_pairs).
    Bound(usize),
    /// The final reads of every list after the faults are healed: they decide which
    /// acknowledged writes were lost, so they must be linearizable even where the workload's
    /// reads are not (a system may be tested with weaker reads on purpose).
    FinalRead,
}

/// Opens the clients of one system. A factory is built with the run's client timeout, and
/// its clients keep to it.
pub trait ClientFactory: Send + Sync {
    /// A new client for client task number `task` (from 0; a system may bind each task to a
    /// home node by it), for `purpose`. Called again for the same task after every `info`.
    fn open(&self, task: usize, purpose: Purpose) -> BoxFuture<'_, Result<Box<dyn Client>, Error>>;

    /// How many pairs of node-bound clients ([`Purpose::Bound`]) the runner runs beside the
    /// workload's: in each pair one only reads and one only writes, bound to the same node
    /// (pair `n` to the home of task `n`). The reader never waits on a write, so it goes on
    /// reading from a node whose writes hang (a leader cut off from the others); the writer
    /// writes through its own node only. Default: none, for a system whose clients cannot be
    /// bound to one node.
    fn bound_pairs(&self) -> usize {
        0
    }
}
