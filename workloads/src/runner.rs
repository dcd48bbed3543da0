//! Running the clients: `concurrency` tasks, each performing one operation at a time until
//! the deadline or cancellation, every invocation and completion recorded; then, once the
//! faults are healed, a final read of every list key.
//!
//! Process ids follow the history's rules: task `i` starts as process `i`, and after an
//! `info` it carries on as its old id plus `concurrency`, since the old operation may still
//! be in flight. An operation under way when the run stops is completed (or times out as
//! `info`) before [`run_clients`] returns, so no invocation is left without its completion.

use std::collections::HashSet;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};

use faultline_checker::{EventType, Process};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::client::{Client, ClientFactory, Completion, Purpose};
use crate::error::Error;
use crate::generator::{Generator, SharedKeys};
use crate::http::{Endpoint, HttpContractClients};
use crate::op::Op;
use crate::options::{WorkloadKind, WorkloadOptions};
use crate::outcome::Outcome;
use crate::rate::RateLimit;
use crate::recorder::{Entry, Recorder};

/// Runs `options.concurrency` clients against `nodes` until `deadline` or until `cancel`
/// completes (e.g. on Ctrl-C), recording into `recorder`. It returns once every operation
/// under way has completed: at most `options.client_timeout` after the deadline or the
/// cancellation. The result keeps what [`ClientRun::final_reads`] needs.
///
/// Errors: invalid options or node URLs (before anything runs), or a client task that
/// panicked.
pub async fn run_clients(
    options: &WorkloadOptions,
    nodes: &[Endpoint],
    recorder: Arc<Recorder>,
    keys: &KeysInUse,
    deadline: Instant,
    cancel: impl Future<Output = ()>,
) -> Result<ClientRun, Error> {
    options.validate()?;
    let clients = HttpContractClients::new(nodes, options.client_timeout)?;
    let keys = keys.0.clone();
    let context = Arc::new(Context {
        recorder,
        concurrency: options.concurrency as u64,
        backoff: options.error_backoff,
        deadline,
        rate: options.rate.map(RateLimit::new),
    });
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for task in 0..options.concurrency {
        let process = ClientProcess {
            task,
            id: task as u64,
            client: clients.open(task, Purpose::Workload).await?,
        };
        let generator = Generator::new(options, task, keys.clone());
        tasks.spawn(run_client(
            process,
            generator,
            context.clone(),
            stopped.clone(),
        ));
    }

    let mut cancel = pin!(cancel);
    let mut cancelled = false;
    let mut processes = Vec::with_capacity(options.concurrency);
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

    /// Asks whether the cluster takes writes again: one client writes a key nobody used
    /// (recorded like every operation, and checked with them), retrying until it is
    /// acknowledged or `deadline` passes. Returns whether it was acknowledged. Call it before
    /// [`ClientRun::final_reads`], which then reads the probe's list back.
    pub async fn probe(&mut self, deadline: Instant) -> bool {
        let Some(process) = self.processes.first_mut() else {
            return false;
        };
        while Instant::now() < deadline {
            let op = self.keys.probe_write(self.kind);
            if let Outcome::Ok(_) = perform(&self.context, process, op).await {
                return true;
            }
            sleep_until((Instant::now() + self.context.backoff).min(deadline)).await;
        }
        false
    }

    /// Reads every list key the run used, through the leader (a linearizable read, confirmed
    /// by a quorum), retrying each until it gets an `ok` or `deadline` passes. Call it after
    /// the faults are healed; the reads are recorded into the same recorder, by the run's
    /// client processes, so they feed the lost-writes checker. Returns at most
    /// `client_timeout` after the deadline.
    pub async fn final_reads(&mut self, deadline: Instant) -> Result<FinalReads, Error> {
        let keys = self.list_keys();
        let queue = Arc::new(Mutex::new(keys.clone()));
        let readers = self.processes.len().min(keys.len());
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
    recorder: Arc<Recorder>,
    concurrency: u64,
    backoff: std::time::Duration,
    deadline: Instant,
    rate: Option<RateLimit>,
}

/// One client task: its process id now, and its client.
struct ClientProcess {
    task: usize,
    id: u64,
    client: Box<dyn Client>,
}

/// One client task: operations from `generator` until the deadline or `stopped`.
async fn run_client(
    mut process: ClientProcess,
    mut generator: Generator,
    context: Arc<Context>,
    mut stopped: watch::Receiver<bool>,
) -> ClientProcess {
    while !*stopped.borrow() && Instant::now() < context.deadline {
        if let Some(rate) = &context.rate {
            let start = rate.reserve();
            if start >= context.deadline || !pause_until(start, &mut stopped).await {
                break;
            }
        }
        let op = generator.next_op();
        let outcome = perform(&context, &mut process, op.clone()).await;
        if outcome.certainly_did_not_happen() {
            generator.did_not_happen(&op);
        }
        if outcome.is_error() {
            let resume = (Instant::now() + context.backoff).min(context.deadline);
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
async fn read_keys(
    mut process: ClientProcess,
    queue: Arc<Mutex<Vec<String>>>,
    context: Arc<Context>,
    deadline: Instant,
) -> (ClientProcess, Vec<String>) {
    let next_key = || queue.lock().unwrap_or_else(PoisonError::into_inner).pop();
    let mut read = Vec::new();
    while let Some(key) = next_key() {
        while Instant::now() < deadline {
            let op = Op::Read { key: key.clone() };
            if let Outcome::Ok(_) = perform(&context, &mut process, op).await {
                read.push(key);
                break;
            }
            sleep_until((Instant::now() + context.backoff).min(deadline)).await;
        }
    }
    (process, read)
}

/// Performs `op` as `process`, recording its invocation and completion; after an `info`
/// the process takes its next id.
async fn perform(context: &Context, process: &mut ClientProcess, op: Op) -> Outcome {
    let event = |kind, value, error, node| Entry {
        process: Process::Client(process.id),
        kind,
        f: op.f().to_string(),
        key: Some(op.key().to_string()),
        value,
        error,
        node,
    };
    context
        .recorder
        .record(event(EventType::Invoke, op.argument(), None, None));
    let Completion { outcome, node } = process.client.invoke(&op).await;
    let completion = match &outcome {
        Outcome::Ok(value) => event(EventType::Ok, value.clone(), None, node),
        Outcome::Fail(reason) => event(EventType::Fail, op.argument(), Some(reason.clone()), node),
        Outcome::Info(reason) => event(EventType::Info, op.argument(), Some(reason.clone()), node),
    };
    context.recorder.record(completion);
    if let Outcome::Info(_) = outcome {
        process.id += context.concurrency;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use faultline_checker::{
        CheckOptions, Event, History, ModelKind, Verdict, check_history, lost_writes, operations,
    };
    use serde_json::{Value, json};

    use super::*;
    use crate::fake_node::{FakeNode, Reply, Request, json as reply};
    use crate::keys::split_by_model;
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

    async fn run(
        options: &WorkloadOptions,
        node: &FakeNode,
        length: Duration,
        cancel: impl Future<Output = ()>,
    ) -> (ClientRun, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::in_memory(std::time::Instant::now()));
        let nodes = [Endpoint::new("n1", &node.url)];
        let deadline = Instant::now() + length;
        let keys = KeysInUse::new(options);
        let run = run_clients(options, &nodes, recorder.clone(), &keys, deadline, cancel);
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

        let split = split_by_model(&history).unwrap();
        assert_eq!(split.len(), 2, "mixed uses registers and lists");
        for (model, part) in &split {
            let checked = check_history(part, *model, &CheckOptions::default()).unwrap();
            assert_eq!(checked.valid, Verdict::Valid, "{model}");
            if *model == ModelKind::ListAppend {
                let lost = lost_writes(part).unwrap();
                assert_eq!(lost.valid, Verdict::Valid);
                assert!(lost.acknowledged > 0);
                assert_eq!(lost.keys.len(), run.list_keys().len());
            }
        }
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

        // Each task's ids, in order: it starts as its task number, and moves on by
        // `concurrency` right after an info.
        let concurrency = options.concurrency as u64;
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
            while node.requests().len() < options.concurrency {
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
        assert_eq!(
            infos, options.concurrency,
            "one timed-out operation per client"
        );
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
        let lost = lost_writes(&split_by_model(&history).unwrap()[0].1).unwrap();
        assert_eq!(lost.valid, Verdict::Unknown, "l1 has no final read");
        assert!(
            lost.keys
                .iter()
                .all(|key| key.key.as_deref() == Some("l1") || key.valid == Verdict::Valid)
        );
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
        let lost = lost_writes(&split_by_model(&history).unwrap()[0].1).unwrap();
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
}
