//! Running the clients: `concurrency` tasks, and the node-bound pairs the system's clients
//! offer ([`ClientFactory::bound_pairs`]: a reader and a writer, each talking to one node
//! only), each performing one operation at a time until the deadline or cancellation, every
//! invocation and completion recorded; then, once the faults are healed, a final read of
//! every list key.
//!
//! Process ids follow the history's rules: task `i` starts as process `i` (the bound pairs'
//! tasks come after the workload's), and after an `info` it carries on as its old id plus the
//! number of tasks, since the old operation may still be in flight. An operation under way when the run stops is completed (or times out as
//! `info`) before [`run_clients`] returns, so no invocation is left without its completion.
//!
//! Clients come from a [`ClientFactory`] and follow the rules in [`crate::client`]: each task
//! opens its client before its first operation, drops it after an `info` and opens a fresh
//! one, and retries a failed open after a growing pause until the deadline. Every call to a
//! client or the factory is cut off [`BACKSTOP_MARGIN`] after the client timeout, so a client
//! that hangs costs an `info`, never the run.

use std::collections::HashSet;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use faultline_history::{EventType, Process};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::client::{Client, ClientFactory, Completion, NOT_THE_LEADER, Purpose};
use crate::error::Error;
use crate::generator::{Generator, Role, SharedKeys};
use crate::op::Op;
use crate::options::{WorkloadKind, WorkloadOptions};
use crate::outcome::Outcome;
use crate::rate::RateLimit;
use crate::recorder::{Entry, Recorder};

/// How long after the client timeout the runner gives up on a client's answer (recorded as
/// `info` `timeout`) or on opening a client. A client should end every operation within the
/// timeout itself, with its own classification (a connect timeout is a `fail`); this is the
/// backstop for one that does not.
pub const BACKSTOP_MARGIN: Duration = Duration::from_millis(250);

/// Bounds of the pause between two attempts to open a client. The first pause is the error
/// backoff and each next one twice the last, so a client that cannot start is not retried
/// hundreds of times a second, nor left waiting long once it can.
const OPEN_RETRY_PAUSE: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// How long a node-bound writer waits after its node refused a write because it does not
/// lead ([`NOT_THE_LEADER`]) before it asks again. Short, so that a node that has just won an
/// election is written to within a few milliseconds, while the leader it replaced may still
/// answer reads under a lease (`lease-no-drift`'s window is a few tens of milliseconds).
/// Every other error waits the error backoff, as bound readers always do: what they are for
/// is reading from a leader, which answers them.
const BOUND_WRITER_RETRY: Duration = Duration::from_millis(5);

/// Runs `options.concurrency` clients opened by `clients`, and its bound pairs, until
/// `deadline` or until `cancel`
/// completes (e.g. on Ctrl-C), recording into `recorder`. It returns once every operation
/// under way has completed: at most `options.client_timeout` plus [`BACKSTOP_MARGIN`] after
/// the deadline or the cancellation. The result keeps what [`ClientRun::final_reads`] needs.
///
/// Errors: invalid options (before anything runs), or a client task that panicked. Clients
/// that cannot be opened are not an error: the run goes on without them, retrying, and
/// [`ClientRun::failed_opens`] says why.
pub async fn run_clients(
    options: &WorkloadOptions,
    clients: Arc<dyn ClientFactory>,
    recorder: Arc<Recorder>,
    keys: &KeysInUse,
    deadline: Instant,
    cancel: impl Future<Output = ()>,
) -> Result<ClientRun, Error> {
    options.validate()?;
    let keys = keys.0.clone();
    // The workload's tasks, then each bound pair's reader and writer.
    let tasks_roles: Vec<(Purpose, Role)> =
        (0..options.concurrency)
            .map(|_| (Purpose::Workload, Role::Any))
            .chain((0..clients.bound_pairs()).flat_map(|pair| {
                [Role::Reads, Role::Writes].map(|role| (Purpose::Bound(pair), role))
            }))
            .collect();
    let context = Arc::new(Context {
        clients,
        recorder,
        tasks: tasks_roles.len() as u64,
        backstop: options.client_timeout + BACKSTOP_MARGIN,
        backoff: options.error_backoff,
        deadline,
        rate: options.rate.map(RateLimit::new),
        failed_opens: Mutex::new(FailedOpens::default()),
    });
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for (task, &(purpose, role)) in tasks_roles.iter().enumerate() {
        let process = ClientProcess {
            task,
            id: task as u64,
            client: None,
        };
        let generator = Generator::new(options, task, role, keys.clone());
        tasks.spawn(run_client(
            process,
            purpose,
            generator,
            context.clone(),
            stopped.clone(),
        ));
    }

    let mut cancel = pin!(cancel);
    let mut cancelled = false;
    let mut processes = Vec::with_capacity(tasks_roles.len());
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(joined) => processes.push(joined.map_err(|e| Error::ClientTask(e.to_string()))?),
                None => break,
            },
            () = &mut cancel, if !cancelled => {
                cancelled = true;
                stop.send_replace(true);
            }
        }
    }
    processes.sort_by_key(|process| process.task);
    Ok(ClientRun {
        context,
        keys,
        kind: options.kind,
        processes,
    })
}

/// The keys a run's clients hand out, shared with whoever watches the run while it goes on
/// (the harness reads the lists back from every node). Make one per run with the run's
/// options and pass it to [`run_clients`].
#[derive(Clone)]
pub struct KeysInUse(Arc<SharedKeys>);

impl KeysInUse {
    /// The keys of a run with these options; none handed out yet.
    pub fn new(options: &WorkloadOptions) -> KeysInUse {
        KeysInUse(Arc::new(SharedKeys::new(options)))
    }

    /// Every list key handed out so far, oldest first.
    pub fn list_keys(&self) -> Vec<String> {
        self.0.list_keys_used()
    }
}

/// How often opening a client failed in a run (see [`ClientRun::failed_opens`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailedOpens {
    /// Failed attempts, including those that took too long.
    pub count: u64,
    /// The last one's error.
    pub last: String,
}

/// What a finished run keeps for its final reads.
pub struct ClientRun {
    context: Arc<Context>,
    keys: Arc<SharedKeys>,
    kind: WorkloadKind,
    /// Each task's process, by task.
    processes: Vec<ClientProcess>,
}

/// The outcome of [`ClientRun::final_reads`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinalReads {
    /// List keys that got an `ok` read, in key order.
    pub read: Vec<String>,
    /// List keys that did not before the deadline (the lost-writes checker will call them
    /// unknown), in key order.
    pub unread: Vec<String>,
}

impl ClientRun {
    /// Every list key the run used, in order: the keys the final reads read.
    pub fn list_keys(&self) -> Vec<String> {
        self.keys.list_keys_used()
    }

    /// How often opening a client failed, so far, with the last error; `None` if it never
    /// did. A run whose clients could not be opened has few operations or none, and this says
    /// why.
    pub fn failed_opens(&self) -> Option<FailedOpens> {
        let failed = self.context.failed_opens.lock();
        let failed = failed.unwrap_or_else(PoisonError::into_inner);
        (failed.count > 0).then(|| failed.clone())
    }

    /// Asks whether the cluster takes writes again: one client writes a key nobody used
    /// (recorded like every operation, and checked with them), retrying until it is
    /// acknowledged or `deadline` passes. Returns whether it was acknowledged. Call it before
    /// [`ClientRun::final_reads`], which then reads the probe's list back.
    pub async fn probe(&mut self, deadline: Instant) -> bool {
        let Some(process) = self.processes.first_mut() else {
            return false;
        };
        let context = &self.context;
        while Instant::now() < deadline {
            // A client first, so that no probe key is handed out for a write never sent.
            if !process.open(context, Purpose::Workload, deadline).await {
                break;
            }
            let op = self.keys.probe_write(self.kind);
            if let Some(Outcome::Ok(_)) = process
                .perform(context, Purpose::Workload, &op, deadline)
                .await
            {
                return true;
            }
            sleep_until((Instant::now() + context.backoff).min(deadline)).await;
        }
        false
    }

    /// Reads every list key the run used, through the leader (a linearizable read, confirmed
    /// by a quorum), retrying each until it gets an `ok` or `deadline` passes. Call it after
    /// the faults are healed; the reads are recorded into the same recorder, by the run's
    /// client processes with clients opened for [`Purpose::FinalRead`], so they feed the
    /// lost-writes checker. Returns at most `client_timeout` plus [`BACKSTOP_MARGIN`] after
    /// the deadline.
    pub async fn final_reads(&mut self, deadline: Instant) -> Result<FinalReads, Error> {
        let keys = self.list_keys();
        let readers = self.processes.len().min(keys.len());
        let queue = Arc::new(Mutex::new(ReadQueue {
            keys: keys.clone(),
            in_flight: 0,
            readers,
        }));
        let mut tasks = JoinSet::new();
        for process in self.processes.drain(..readers) {
            tasks.spawn(read_keys(
                process,
                queue.clone(),
                self.context.clone(),
                deadline,
            ));
        }
        let mut read = HashSet::new();
        while let Some(joined) = tasks.join_next().await {
            let (process, keys_read) = joined.map_err(|e| Error::ClientTask(e.to_string()))?;
            self.processes.push(process);
            read.extend(keys_read);
        }
        self.processes.sort_by_key(|process| process.task);
        let (read, unread) = keys.into_iter().partition(|key| read.contains(key));
        Ok(FinalReads { read, unread })
    }
}

/// What every client task shares.
struct Context {
    clients: Arc<dyn ClientFactory>,
    recorder: Arc<Recorder>,
    /// How many client tasks run: the step of a task's process ids.
    tasks: u64,
    /// The longest a call to a client or to the factory may take: the client timeout plus
    /// [`BACKSTOP_MARGIN`].
    backstop: Duration,
    backoff: Duration,
    deadline: Instant,
    rate: Option<RateLimit>,
    failed_opens: Mutex<FailedOpens>,
}

impl Context {
    fn note_failed_open(&self, error: &Error) {
        let mut failed = self
            .failed_opens
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        failed.count += 1;
        failed.last = error.to_string();
    }
}

/// One client task: its process id now, and its client.
struct ClientProcess {
    task: usize,
    id: u64,
    /// `None` before the first operation and after an `info`.
    client: Option<OpenClient>,
}

/// A client, and what it was opened for.
struct OpenClient {
    purpose: Purpose,
    client: Box<dyn Client>,
}

impl ClientProcess {
    /// Makes sure the process has a client opened for `purpose` (see [`open_client`]);
    /// `false` if none could be opened before `deadline`.
    async fn open(&mut self, context: &Context, purpose: Purpose, deadline: Instant) -> bool {
        open_client(&mut self.client, self.task, context, purpose, deadline)
            .await
            .is_some()
    }

    /// Performs `op` with a client opened for `purpose` (opening one first if need be),
    /// recording its invocation and completion. A client that does not answer within the
    /// backstop is given up as `info` `timeout`. After an `info` the process takes its next
    /// id and drops its client, which may still have the operation in flight. `None` if no
    /// client could be opened before `deadline`: then nothing was invoked.
    async fn perform(
        &mut self,
        context: &Context,
        purpose: Purpose,
        op: &Op,
        deadline: Instant,
    ) -> Option<Outcome> {
        let client = open_client(&mut self.client, self.task, context, purpose, deadline).await?;
        let process = Process::Client(self.id);
        let event = |kind, value, error, node| Entry {
            process,
            kind,
            f: op.f().to_string(),
            key: Some(op.key().to_string()),
            value,
            error,
            node,
            final_read: purpose == Purpose::FinalRead,
        };
        context
            .recorder
            .record(event(EventType::Invoke, op.argument(), None, None));
        let invoked = tokio::time::timeout(context.backstop, client.invoke(op)).await;
        let Completion { outcome, node } =
            invoked.unwrap_or_else(|_| Completion::new(Outcome::info("timeout"), None));
        let completion = match &outcome {
            Outcome::Ok(value) => event(EventType::Ok, value.clone(), None, node),
            Outcome::Fail(reason) => {
                event(EventType::Fail, op.argument(), Some(reason.clone()), node)
            }
            Outcome::Info(reason) => {
                event(EventType::Info, op.argument(), Some(reason.clone()), node)
            }
        };
        context.recorder.record(completion);
        if let Outcome::Info(_) = outcome {
            self.id += context.tasks;
            self.client = None;
        }
        Some(outcome)
    }
}

/// The client in `slot` if it was opened for `purpose`; otherwise a new one for `task`
/// (dropping the old), the attempts retried after a growing pause and each cut off at the
/// backstop. `None` if none could be opened before `deadline`.
async fn open_client<'a>(
    slot: &'a mut Option<OpenClient>,
    task: usize,
    context: &Context,
    purpose: Purpose,
    deadline: Instant,
) -> Option<&'a mut (dyn Client + 'static)> {
    if slot.as_ref().is_some_and(|open| open.purpose != purpose) {
        *slot = None;
    }
    let (shortest, longest) = OPEN_RETRY_PAUSE;
    let mut pause = context.backoff.clamp(shortest, longest);
    while slot.is_none() {
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        let opening = context.clients.open(task, purpose);
        let error = match timeout_at((now + context.backstop).min(deadline), opening).await {
            Ok(Ok(client)) => {
                *slot = Some(OpenClient { purpose, client });
                continue;
            }
            Ok(Err(error)) => error,
            Err(_) if Instant::now() >= deadline => return None,
            Err(_) => Error::OpenClient(format!("it took longer than {:?}", context.backstop)),
        };
        context.note_failed_open(&error);
        sleep_until((Instant::now() + pause).min(deadline)).await;
        pause = (pause * 2).min(longest);
    }
    slot.as_mut().map(|open| open.client.as_mut())
}

/// One client task: operations from `generator` with a client opened for `purpose`, until
/// the deadline or `stopped`.
async fn run_client(
    mut process: ClientProcess,
    purpose: Purpose,
    mut generator: Generator,
    context: Arc<Context>,
    mut stopped: watch::Receiver<bool>,
) -> ClientProcess {
    while !*stopped.borrow() && Instant::now() < context.deadline {
        // A client first, so that the rate's slot and the operation do not wait for one.
        let opened = tokio::select! {
            opened = process.open(&context, purpose, context.deadline) => opened,
            _ = stopped.wait_for(|stopped| *stopped) => false,
        };
        if !opened {
            break;
        }
        if let Some(rate) = &context.rate {
            let start = rate.reserve();
            if start >= context.deadline || !pause_until(start, &mut stopped).await {
                break;
            }
        }
        let op = generator.next_op();
        let performed = process
            .perform(&context, purpose, &op, context.deadline)
            .await;
        let Some(outcome) = performed else {
            // No client before the deadline: the operation was never invoked.
            generator.did_not_happen(&op);
            break;
        };
        if outcome.certainly_did_not_happen() {
            generator.did_not_happen(&op);
        }
        if outcome.is_error() {
            let backoff = match (purpose, generator.role(), &outcome) {
                (Purpose::Bound(_), Role::Writes, Outcome::Fail(reason))
                    if reason == NOT_THE_LEADER =>
                {
                    context.backoff.min(BOUND_WRITER_RETRY)
                }
                _ => context.backoff,
            };
            let resume = (Instant::now() + backoff).min(context.deadline);
            if !pause_until(resume, &mut stopped).await {
                break;
            }
        }
    }
    process
}

/// Sleeps until `until`; `false` if told to stop first.
async fn pause_until(until: Instant, stopped: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = sleep_until(until) => true,
        _ = stopped.wait_for(|stopped| *stopped) => false,
    }
}

/// One final-read task: takes keys from `queue` and reads each until it gets an `ok` or
/// the deadline passes. Returns the keys it read.
/// The keys the final reads share out, and who still reads them.
struct ReadQueue {
    /// Keys not read yet and not being read.
    keys: Vec<String>,
    /// Keys a reader is reading now.
    in_flight: usize,
    /// Readers still reading.
    readers: usize,
}

/// What a final reader does next.
enum Next {
    Read(String),
    /// Others are reading the last keys, and may hand one back.
    Wait,
    Stop,
}

impl ReadQueue {
    fn next(&mut self) -> Next {
        match self.keys.pop() {
            Some(key) => {
                self.in_flight += 1;
                Next::Read(key)
            }
            None if self.in_flight > 0 => Next::Wait,
            None => Next::Stop,
        }
    }

    /// Hands back a key whose read failed, for another reader (first in line, after the
    /// keys never tried). Whether this reader should leave it to them: it should while
    /// others read, as its client's node may be the one that cannot answer (killed, or
    /// its host lost).
    fn hand_back(&mut self, key: String) -> bool {
        self.in_flight -= 1;
        self.keys.insert(0, key);
        self.readers > 1
    }
}

async fn read_keys(
    mut process: ClientProcess,
    queue: Arc<Mutex<ReadQueue>>,
    context: Arc<Context>,
    deadline: Instant,
) -> (ClientProcess, Vec<String>) {
    let queue = || queue.lock().unwrap_or_else(PoisonError::into_inner);
    let mut read = Vec::new();
    while Instant::now() < deadline {
        let next = queue().next();
        let key = match next {
            Next::Read(key) => key,
            Next::Wait => {
                sleep_until((Instant::now() + context.backoff).min(deadline)).await;
                continue;
            }
            Next::Stop => break,
        };
        let op = Op::Read { key: key.clone() };
        match process
            .perform(&context, Purpose::FinalRead, &op, deadline)
            .await
        {
            Some(Outcome::Ok(_)) => {
                queue().in_flight -= 1;
                read.push(key);
            }
            Some(_) => {
                let others_read = queue().hand_back(key);
                if others_read {
                    break;
                }
                sleep_until((Instant::now() + context.backoff).min(deadline)).await;
            }
            // No client before the deadline: this key and the rest stay unread.
            None => {
                queue().hand_back(key);
                break;
            }
        }
    }
    queue().readers -= 1;
    (process, read)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use faultline_checker::{CheckOptions, Verdict, check};
    use faultline_history::{Event, History, ModelKind, operations};
    use serde_json::{Value, json};

    use super::*;
    use crate::client::BoxFuture;
    use crate::fake_node::{FakeNode, Reply, Request, json as reply};
    use crate::http::{Endpoint, HttpContractClients};
    use crate::options::WorkloadKind;

    /// A correct key-value node in memory: every request applied atomically, in order.
    fn correct_node() -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
        let store: Mutex<HashMap<String, Value>> = Mutex::new(HashMap::new());
        move |request| {
            let mut store = store.lock().unwrap();
            let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
            let path: Vec<&str> = request.path.trim_start_matches("/kv/").split('/').collect();
            let key = path[0].to_string();
            match (request.method.as_str(), path.get(1).copied()) {
                ("GET", None) => match store.get(&key) {
                    Some(value) => reply(200, &json!({ "key": key, "value": value }).to_string()),
                    None => reply(404, r#"{"error":"key not found"}"#),
                },
                ("PUT", None) => {
                    store.insert(key, body["value"].clone());
                    reply(200, r#"{"ok":true}"#)
                }
                ("POST", Some("cas")) => {
                    let current = store.get(&key).cloned().unwrap_or(Value::Null);
                    if current == body["from"] {
                        store.insert(key, body["to"].clone());
                        reply(200, r#"{"ok":true}"#)
                    } else {
                        reply(
                            409,
                            &json!({ "error": "cas mismatch", "value": current }).to_string(),
                        )
                    }
                }
                ("POST", Some("append")) => {
                    let list = store.entry(key).or_insert_with(|| json!([]));
                    list.as_array_mut().unwrap().push(body["value"].clone());
                    reply(200, r#"{"ok":true}"#)
                }
                _ => reply(400, r#"{"error":"bad request"}"#),
            }
        }
    }

    fn options(kind: WorkloadKind) -> WorkloadOptions {
        WorkloadOptions {
            kind,
            concurrency: 4,
            keys: 2,
            ops_per_key: 30,
            client_timeout: Duration::from_millis(200),
            error_backoff: Duration::from_millis(5),
            ..WorkloadOptions::default()
        }
    }

    /// Runs the clients of the HTTP contract against `node` for `length`.
    async fn run(
        options: &WorkloadOptions,
        node: &FakeNode,
        length: Duration,
        cancel: impl Future<Output = ()>,
    ) -> (ClientRun, Arc<Recorder>) {
        let nodes = [Endpoint::new("n1", &node.url)];
        let clients = HttpContractClients::new(&nodes, options.client_timeout).unwrap();
        run_with(options, Arc::new(clients), length, cancel).await
    }

    /// Runs `clients` for `length`.
    async fn run_with(
        options: &WorkloadOptions,
        clients: Arc<dyn ClientFactory>,
        length: Duration,
        cancel: impl Future<Output = ()>,
    ) -> (ClientRun, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::in_memory(std::time::Instant::now()));
        let deadline = Instant::now() + length;
        let keys = KeysInUse::new(options);
        let run = run_clients(options, clients, recorder.clone(), &keys, deadline, cancel);
        // Bounded, so that a hang fails the test instead of stalling it.
        let run = tokio::time::timeout(Duration::from_secs(30), run).await;
        (run.unwrap().unwrap(), recorder)
    }

    fn never() -> std::future::Pending<()> {
        std::future::pending()
    }

    /// Every invocation has exactly one completion, by the same process, and no process
    /// performs anything after an `info`.
    fn assert_well_formed(history: &History) {
        operations(history).unwrap();
        let mut in_flight: HashMap<Process, &Event> = HashMap::new();
        let mut retired = HashSet::new();
        for event in history.events() {
            assert!(!retired.contains(&event.process), "{event:?} after an info");
            if event.kind == EventType::Invoke {
                assert!(in_flight.insert(event.process, event).is_none());
            } else {
                assert!(in_flight.remove(&event.process).is_some(), "{event:?}");
                if event.kind == EventType::Info {
                    retired.insert(event.process);
                }
            }
        }
        assert!(
            in_flight.is_empty(),
            "invocations left without completion: {in_flight:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn histories_against_a_correct_node_check_valid_with_no_lost_writes() {
        let node = FakeNode::start(correct_node()).await;
        let options = options(WorkloadKind::Mixed);
        let (mut run, recorder) = run(&options, &node, Duration::from_millis(500), never()).await;
        let final_reads = run
            .final_reads(Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(final_reads.read, run.list_keys());
        assert!(final_reads.unread.is_empty());
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);

        let checked = check(&history, None, &CheckOptions::default()).unwrap();
        let models: Vec<_> = checked.linearizability.iter().map(|r| r.model).collect();
        assert_eq!(models, [ModelKind::CasRegister, ModelKind::ListAppend]);
        assert_eq!(checked.valid, Verdict::Valid, "{checked:?}");
        let lost = checked.lost_writes.unwrap();
        assert!(lost.acknowledged > 0);
        // Each list is judged by its final read, which the history marks as such.
        for key in &lost.keys {
            let read = key.final_read.expect("a final read");
            assert!(history.events()[read as usize].final_read, "{key:?}");
        }
        assert!(
            history
                .events()
                .iter()
                .any(|e| e.f == "read" && !e.final_read)
        );
        assert_eq!(lost.keys.len(), run.list_keys().len());
        // Node names are recorded on completions.
        let completion = history
            .events()
            .iter()
            .find(|e| e.kind == EventType::Ok)
            .unwrap();
        assert_eq!(completion.node.as_deref(), Some("n1"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_an_info_a_client_carries_on_under_a_new_process_id() {
        // Every third request gets no answer.
        let requests = AtomicUsize::new(0);
        let node = FakeNode::start(
            move |_| match requests.fetch_add(1, Ordering::Relaxed) % 3 {
                2 => Reply::Hang,
                _ => reply(200, r#"{"ok":true,"key":"r0","value":1}"#),
            },
        )
        .await;
        let options = WorkloadOptions {
            client_timeout: Duration::from_millis(50),
            ..options(WorkloadKind::Register)
        };
        let (_, recorder) = run(&options, &node, Duration::from_millis(600), never()).await;
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);

        // Each task's ids, in order: it starts as its task number, and moves on by the
        // number of tasks right after an info.
        let concurrency = tasks(&options) as u64;
        let mut current: HashMap<u64, (u64, EventType)> = HashMap::new();
        let mut moves = 0;
        for event in history.events() {
            let Process::Client(id) = event.process else {
                continue;
            };
            let task = id % concurrency;
            match current.get(&task) {
                None => assert_eq!(id, task),
                Some(&(previous, _)) if previous == id => {}
                Some(&(previous, last)) => {
                    assert_eq!((id, last), (previous + concurrency, EventType::Info));
                    moves += 1;
                }
            }
            current.insert(task, (id, event.kind));
            if event.kind == EventType::Info {
                assert_eq!(event.error.as_deref(), Some("timeout"));
            }
        }
        assert!(moves > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelling_completes_the_operations_under_way() {
        let node = FakeNode::start(|_| Reply::Hang).await;
        let options = options(WorkloadKind::Append);
        // Cancel once every client has an operation under way.
        let cancel = async {
            while node.requests().len() < tasks(&options) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let (_, recorder) = run(&options, &node, Duration::from_secs(3600), cancel).await;
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);
        let infos = history
            .events()
            .iter()
            .filter(|e| e.kind == EventType::Info)
            .count();
        assert_eq!(infos, tasks(&options), "one timed-out operation per client");
    }

    /// How many client tasks run against one node: the workload's, and the node's bound
    /// pair.
    fn tasks(options: &WorkloadOptions) -> usize {
        options.concurrency + 2
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_nodes_bound_pair_has_a_reader_and_a_writer_after_the_workloads_clients() {
        let node = FakeNode::start(correct_node()).await;
        let options = options(WorkloadKind::Mixed);
        let (_, recorder) = run(&options, &node, Duration::from_millis(300), never()).await;
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);
        let ops_of = |process: u64| -> BTreeSet<&str> {
            history
                .events()
                .iter()
                .filter(|e| e.process == Process::Client(process) && e.kind == EventType::Invoke)
                .map(|e| e.f.as_str())
                .collect()
        };
        let reader = options.concurrency as u64;
        assert_eq!(ops_of(reader), BTreeSet::from(["read"]));
        assert_eq!(
            ops_of(reader + 1),
            BTreeSet::from(["append", "cas", "write"])
        );
        let workload: BTreeSet<&str> = (0..reader).flat_map(ops_of).collect();
        assert_eq!(workload, BTreeSet::from(["append", "cas", "read", "write"]));
        assert!(ops_of(reader + 2).is_empty(), "one pair for one node");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_rate_limit_bounds_operations_over_all_clients() {
        let node = FakeNode::start(correct_node()).await;
        let options = WorkloadOptions {
            rate: Some(10.0),
            ..options(WorkloadKind::Register)
        };
        let (_, recorder) = run(&options, &node, Duration::from_millis(500), never()).await;
        let invoked = recorder.counts().invoke;
        // Starts are 100 ms apart, all before the deadline.
        assert!((1..=5).contains(&invoked), "{invoked} operations");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn final_reads_retry_until_a_read_succeeds_or_time_runs_out() {
        // Two refusals before each key's read succeeds; key l1 never answers.
        let reads = Mutex::new(HashMap::<String, usize>::new());
        let correct = correct_node();
        let node = FakeNode::start(move |request| {
            if request.method != "GET" {
                return correct(request);
            }
            if request.path == "/kv/l1" {
                return reply(503, r#"{"error":"no leader"}"#);
            }
            let mut reads = reads.lock().unwrap();
            let count = reads.entry(request.path.clone()).or_default();
            *count += 1;
            if *count <= 2 {
                reply(503, r#"{"error":"no leader"}"#)
            } else {
                correct(request)
            }
        })
        .await;
        let options = WorkloadOptions {
            keys: 3,
            ..options(WorkloadKind::Append)
        };
        let (mut run, recorder) = run(&options, &node, Duration::from_millis(200), never()).await;
        let keys = run.list_keys();
        assert!(keys.contains(&"l1".to_string()));
        let final_reads = run
            .final_reads(Instant::now() + Duration::from_millis(500))
            .await
            .unwrap();
        assert_eq!(final_reads.unread, ["l1"]);
        assert_eq!(final_reads.read.len(), keys.len() - 1);
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);
        let lost = check(&history, None, &CheckOptions::default())
            .unwrap()
            .lost_writes
            .unwrap();
        assert_eq!(lost.valid, Verdict::Unknown, "l1 has no final read");
        assert!(
            lost.keys
                .iter()
                .all(|key| key.key.as_deref() == Some("l1") || key.valid == Verdict::Valid)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn final_reads_go_around_a_node_that_no_longer_answers() {
        // Two nodes over one store; after the workload, n2 refuses every read (killed, or
        // its host lost): its clients hand their keys to n1's.
        let store = Arc::new(correct_node());
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let n1 = FakeNode::start({
            let store = store.clone();
            move |request| store(request)
        })
        .await;
        let n2 = FakeNode::start({
            let (store, lost) = (store.clone(), lost.clone());
            move |request| {
                if request.method == "GET" && lost.load(Ordering::SeqCst) {
                    return reply(503, r#"{"error":"no leader"}"#);
                }
                store(request)
            }
        })
        .await;
        let options = WorkloadOptions {
            keys: 6,
            ..options(WorkloadKind::Append)
        };
        let nodes = [Endpoint::new("n1", &n1.url), Endpoint::new("n2", &n2.url)];
        let clients = HttpContractClients::new(&nodes, options.client_timeout).unwrap();
        let (mut run, recorder) = run_with(
            &options,
            Arc::new(clients),
            Duration::from_millis(300),
            never(),
        )
        .await;
        lost.store(true, Ordering::SeqCst);
        let final_reads = run
            .final_reads(Instant::now() + Duration::from_secs(3))
            .await
            .unwrap();
        assert!(final_reads.unread.is_empty(), "{:?}", final_reads.unread);
        assert_eq!(final_reads.read.len(), run.list_keys().len());
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);
        let lost_writes = check(&history, None, &CheckOptions::default())
            .unwrap()
            .lost_writes
            .unwrap();
        assert_eq!(lost_writes.valid, Verdict::Valid);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_probe_writes_a_fresh_key_that_the_final_reads_read_back() {
        // Once the run is over, the first three writes are refused.
        let refusing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tries = AtomicUsize::new(0);
        let correct = correct_node();
        let node = FakeNode::start({
            let refusing = refusing.clone();
            move |request| {
                let refused = refusing.load(Ordering::SeqCst)
                    && request.method != "GET"
                    && tries.fetch_add(1, Ordering::SeqCst) < 3;
                if refused {
                    return reply(503, r#"{"error":"no leader"}"#);
                }
                correct(request)
            }
        })
        .await;
        let options = options(WorkloadKind::Append);
        let (mut run, recorder) = run(&options, &node, Duration::from_millis(200), never()).await;
        let before = run.list_keys();
        refusing.store(true, Ordering::SeqCst);
        assert!(run.probe(Instant::now() + Duration::from_secs(5)).await);
        let probe_key = run.list_keys().last().cloned().unwrap();
        assert!(!before.contains(&probe_key), "the probe takes a fresh key");
        let final_reads = run
            .final_reads(Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
        assert!(final_reads.read.contains(&probe_key));
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);
        let lost = check(&history, None, &CheckOptions::default())
            .unwrap()
            .lost_writes
            .unwrap();
        assert_eq!(lost.valid, Verdict::Valid);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_probe_gives_up_on_a_cluster_that_never_takes_a_write() {
        let node = FakeNode::start(|_| reply(503, r#"{"error":"no leader"}"#)).await;
        let options = options(WorkloadKind::Register);
        let (mut run, recorder) = run(&options, &node, Duration::from_millis(100), never()).await;
        let deadline = Instant::now() + Duration::from_millis(300);
        assert!(!run.probe(deadline).await);
        assert!(Instant::now() >= deadline);
        let history = recorder.finish().unwrap();
        assert!(history.events().iter().any(|e| e.f == "write"));
    }

    /// What a scripted client does with an operation.
    #[derive(Clone, Copy)]
    enum Step {
        /// Answer `ok`.
        Ok,
        /// Answer `info` with this reason.
        Info(&'static str),
        /// Never answer.
        Hang,
    }

    /// How a scripted system behaves.
    #[derive(Clone, Copy)]
    struct Script {
        /// What client number `c` (numbered as opened, from 0) does with its `n`th operation.
        step: fn(c: usize, n: usize) -> Step,
        /// How many attempts to open a client fail before the first one succeeds.
        failing_opens: usize,
        /// Whether a failing attempt hangs instead of returning an error.
        open_hangs: bool,
    }

    impl Script {
        fn answering(step: fn(usize, usize) -> Step) -> Script {
            Script {
                step,
                failing_opens: 0,
                open_hangs: false,
            }
        }
    }

    /// The test double of a system's clients, in memory and run by a [`Script`]. Each client
    /// names itself `c<number>` as the node of its completions, so the history tells which
    /// client performed what.
    struct ScriptedClients {
        script: Script,
        /// Attempts to open a client so far.
        attempts: AtomicUsize,
        /// What each client was opened for, by number.
        opened: Mutex<Vec<Purpose>>,
        /// Clients dropped so far.
        closed: Arc<AtomicUsize>,
    }

    struct ScriptedClient {
        number: usize,
        performed: usize,
        step: fn(usize, usize) -> Step,
        closed: Arc<AtomicUsize>,
    }

    impl ScriptedClients {
        fn new(script: Script) -> Arc<ScriptedClients> {
            Arc::new(ScriptedClients {
                script,
                attempts: AtomicUsize::new(0),
                opened: Mutex::new(Vec::new()),
                closed: Arc::new(AtomicUsize::new(0)),
            })
        }

        fn opened(&self) -> Vec<Purpose> {
            self.opened.lock().unwrap().clone()
        }

        fn closed(&self) -> usize {
            self.closed.load(Ordering::SeqCst)
        }
    }

    impl ClientFactory for ScriptedClients {
        fn open(
            &self,
            _: usize,
            purpose: Purpose,
        ) -> BoxFuture<'_, Result<Box<dyn Client>, Error>> {
            Box::pin(async move {
                // Opening takes a moment, as starting a program or connecting does.
                tokio::time::sleep(Duration::from_millis(1)).await;
                if self.attempts.fetch_add(1, Ordering::SeqCst) < self.script.failing_opens {
                    if self.script.open_hangs {
                        std::future::pending::<()>().await;
                    }
                    return Err(Error::OpenClient("the program would not start".into()));
                }
                let mut opened = self.opened.lock().unwrap();
                opened.push(purpose);
                let client: Box<dyn Client> = Box::new(ScriptedClient {
                    number: opened.len() - 1,
                    performed: 0,
                    step: self.script.step,
                    closed: self.closed.clone(),
                });
                Ok(client)
            })
        }
    }

    impl Client for ScriptedClient {
        fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
            Box::pin(async move {
                // Each answer takes a moment, so that (virtual) time moves on.
                tokio::time::sleep(Duration::from_millis(1)).await;
                let step = (self.step)(self.number, self.performed);
                self.performed += 1;
                let outcome = match step {
                    Step::Ok => Outcome::Ok(op.argument()),
                    Step::Info(reason) => Outcome::info(reason),
                    Step::Hang => std::future::pending().await,
                };
                Completion::new(outcome, Some(format!("c{}", self.number)))
            })
        }
    }

    impl Drop for ScriptedClient {
        fn drop(&mut self) {
            self.closed.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The completions of `history`, with the number of the scripted client that answered
    /// (`None` where the runner gave up on it).
    fn completions(history: &History) -> Vec<(&Event, Option<usize>)> {
        let number = |node: &str| node.strip_prefix('c').and_then(|n| n.parse().ok());
        history
            .events()
            .iter()
            .filter(|event| event.kind != EventType::Invoke)
            .map(|event| (event, event.node.as_deref().and_then(number)))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_info_the_task_carries_on_as_a_new_process_with_a_new_client() {
        // Every client's third answer is an info.
        let clients = ScriptedClients::new(Script::answering(|_, n| match n {
            2 => Step::Info("connection lost"),
            _ => Step::Ok,
        }));
        let options = options(WorkloadKind::Register);
        let (run, recorder) = run_with(
            &options,
            clients.clone(),
            Duration::from_millis(300),
            never(),
        )
        .await;
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);

        let mut process_of_client = HashMap::new();
        let mut client_of_process = HashMap::new();
        let mut retired = HashSet::new();
        for (event, client) in completions(&history) {
            let client = client.expect("every scripted client answers");
            assert!(!retired.contains(&client), "c{client} used after its info");
            let process = *process_of_client.entry(client).or_insert(event.process);
            assert_eq!(process, event.process, "c{client} served two processes");
            let used = *client_of_process.entry(event.process).or_insert(client);
            assert_eq!(used, client, "{:?} used two clients", event.process);
            if event.kind == EventType::Info {
                retired.insert(client);
            }
        }
        assert!(retired.len() > options.concurrency, "{retired:?}");
        // One client opened per process, and each one that answered info was dropped.
        assert_eq!(clients.opened().len(), client_of_process.len());
        assert!(clients.opened().iter().all(|p| *p == Purpose::Workload));
        assert_eq!(clients.closed(), retired.len());
        assert_eq!(run.failed_opens(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_answers_is_given_up_as_info_and_replaced() {
        // The first client of each task hangs on its first operation; later clients answer.
        let options = options(WorkloadKind::Register);
        let clients = ScriptedClients::new(Script::answering(|c, n| match (c, n) {
            (0..4, 0) => Step::Hang,
            _ => Step::Ok,
        }));
        let (_run, recorder) =
            run_with(&options, clients.clone(), Duration::from_secs(1), never()).await;
        // The hung clients were dropped; the run still holds the others.
        assert_eq!(clients.closed(), options.concurrency);
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);

        let completions = completions(&history);
        let given_up: Vec<_> = completions
            .iter()
            .filter(|(_, client)| client.is_none())
            .map(|(event, _)| (event.process, event.kind, event.error.as_deref()))
            .collect();
        let expected: Vec<_> = (0..options.concurrency as u64)
            .map(|task| (Process::Client(task), EventType::Info, Some("timeout")))
            .collect();
        assert_eq!(given_up.len(), expected.len(), "{given_up:?}");
        assert!(
            expected.iter().all(|e| given_up.contains(e)),
            "{given_up:?}"
        );
        // Each task carried on with a new client, as its next process.
        for task in 0..options.concurrency as u64 {
            let next = Process::Client(task + options.concurrency as u64);
            assert!(
                completions
                    .iter()
                    .any(|(event, client)| event.process == next
                        && event.kind == EventType::Ok
                        && client.is_some_and(|c| c >= options.concurrency)),
                "task {task} did not carry on"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opening_a_client_is_retried_until_it_succeeds() {
        let clients = ScriptedClients::new(Script {
            failing_opens: 6,
            ..Script::answering(|_, _| Step::Ok)
        });
        let options = options(WorkloadKind::Register);
        let (run, recorder) =
            run_with(&options, clients.clone(), Duration::from_secs(2), never()).await;
        assert_eq!(
            run.failed_opens(),
            Some(FailedOpens {
                count: 6,
                last: "cannot open a client: the program would not start".into(),
            })
        );
        assert_eq!(clients.opened().len(), options.concurrency);
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);
        for task in 0..options.concurrency as u64 {
            assert!(
                history
                    .events()
                    .iter()
                    .any(|e| e.process == Process::Client(task) && e.kind == EventType::Ok),
                "task {task} never performed an operation"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_whose_clients_never_open_ends_at_its_deadline_and_says_why() {
        // Every attempt hangs: the backstop cuts each one off.
        let clients = ScriptedClients::new(Script {
            failing_opens: usize::MAX,
            open_hangs: true,
            ..Script::answering(|_, _| Step::Ok)
        });
        let options = options(WorkloadKind::Append);
        let backstop = options.client_timeout + BACKSTOP_MARGIN;
        let deadline = Instant::now() + Duration::from_secs(1);
        let (mut run, recorder) =
            run_with(&options, clients.clone(), Duration::from_secs(1), never()).await;
        assert!(Instant::now() <= deadline + backstop);
        let failed = run.failed_opens().unwrap();
        assert!(failed.count >= options.concurrency as u64, "{failed:?}");
        assert_eq!(
            failed.last,
            format!("cannot open a client: it took longer than {backstop:?}")
        );

        // The probe and the final reads go the same way, and end at their deadlines too.
        let deadline = Instant::now() + Duration::from_millis(500);
        assert!(!run.probe(deadline).await);
        assert!(Instant::now() <= deadline + backstop);
        let final_reads = run.final_reads(deadline).await.unwrap();
        assert_eq!(final_reads, FinalReads::default());
        assert!(clients.opened().is_empty());
        assert!(recorder.finish().unwrap().events().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn final_reads_use_clients_opened_for_final_reads() {
        let clients = ScriptedClients::new(Script::answering(|_, _| Step::Ok));
        let options = options(WorkloadKind::Append);
        let (mut run, recorder) = run_with(
            &options,
            clients.clone(),
            Duration::from_millis(100),
            never(),
        )
        .await;
        assert!(run.probe(Instant::now() + Duration::from_secs(1)).await);
        let final_reads = run
            .final_reads(Instant::now() + Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(final_reads.read, run.list_keys());
        let history = recorder.finish().unwrap();
        assert_well_formed(&history);

        let opened = clients.opened();
        let purpose = |client: Option<usize>| opened[client.unwrap()];
        let mut keys_read_finally = Vec::new();
        for (event, client) in completions(&history) {
            if purpose(client) == Purpose::FinalRead {
                assert_eq!(event.f, "read");
                keys_read_finally.extend(event.key.clone());
            }
        }
        keys_read_finally.sort();
        let mut keys = run.list_keys();
        keys.sort();
        assert_eq!(keys_read_finally, keys);
        // The probe is a write of the workload.
        let probe = history.events().iter().rev().find(|e| e.f == "append");
        let probe = probe.and_then(|e| e.node.as_deref()).unwrap();
        assert_eq!(
            opened[probe[1..].parse::<usize>().unwrap()],
            Purpose::Workload
        );
    }
}
