//! Checking a whole history for linearizability: split it by key (P-compositionality: a
//! history is linearizable if and only if each key's operations are), search the partitions in
//! parallel on all cores within one time budget, and gather a verdict per key and a
//! counterexample per non-linearizable key.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use faultline_history::{History, Location, Operation, Outcome, operations};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stateright::semantics::SequentialSpec;

use crate::budget::{Budget, Deadline, Stop};
use crate::counterexample::{Counterexample, Observable, counterexample};
use crate::error::Error;
use crate::model::cas_register::CasRegisterReader;
use crate::model::fifo_queue::FifoQueueReader;
use crate::model::keyed::KeyedReader;
use crate::model::kv::KvReader;
use crate::model::list_append::ListAppendReader;
use crate::model::multi_register::MultiRegisterReader;
use crate::model::mutex::MutexReader;
use crate::model::register::RegisterReader;
use crate::model::set::SetReader;
use crate::model::unordered_queue::UnorderedQueueReader;
use crate::model::{ModelKind, Reader};
use crate::verdict::Verdict;
use crate::wgl::{ModelOperation, Progress, Search, SearchResult};

/// How to check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckOptions {
    /// How long the check may take.
    pub budget: Budget,
    /// The value every key starts with (the model's default, e.g. `null`, if `None`).
    pub initial: Option<Value>,
    /// Check the whole history as one partition, with one object per key, instead of each
    /// key alone (false, the default): the same verdict, slower; for comparison.
    pub whole: bool,
}

/// The outcome of a linearizability check, as the report draws it. In JSON (`valid` is
/// `true`, `false` or `"unknown"`; `key` is `null` for a history without keys; an operation's
/// `return` is `null` if unknown, its `outcome` `ok`, `info` or `cas-mismatch`; ids are the
/// `index` of each operation's invocation; `prefix` is in linearization order):
///
/// ```json
/// {"valid": false, "model": "cas-register", "operations": 5, "seconds": 0.0013,
///  "keys": [{"key": "a", "valid": true, "operations": 1, "seconds": 0.00002},
///           {"key": "b", "valid": false, "operations": 4, "seconds": 0.00004}],
///  "undecided": [],
///  "counterexamples": [
///    {"key": "b",
///     "operations": [
///       {"id": 2, "process": 1, "f": "write", "key": "b", "value": 1,
///        "call": 2, "return": 3, "outcome": "ok"},
///       {"id": 4, "process": 1, "f": "cas", "key": "b", "value": [1, 2],
///        "call": 4, "return": 5, "outcome": "ok"},
///       {"id": 6, "process": 2, "f": "read", "key": "b", "value": 1,
///        "call": 6, "return": 8, "outcome": "ok"},
///       {"id": 7, "process": 3, "f": "cas", "key": "b", "value": [2, 3],
///        "call": 7, "return": 9, "outcome": "cas-mismatch"}],
///     "prefix": [2, 4],
///     "state": 2,
///     "rejected": [{"id": 6, "reason": "read returned 1 but the value was 2"},
///                  {"id": 7, "reason": "cas [2,3] failed its comparison but the value was 2"}]}]}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// `true`, `false` or `"unknown"`.
    pub valid: Verdict,
    /// The model checked against.
    pub model: ModelKind,
    /// How many operations the history has (failed ones removed).
    pub operations: usize,
    /// Wall time of the whole check.
    pub seconds: f64,
    /// Each key's verdict, by key.
    pub keys: Vec<KeyResult>,
    /// The keys the budget left undecided.
    pub undecided: Vec<Option<String>>,
    /// Why they are undecided: `timeout`, `memory-limit` or `after-invalid` (the time left
    /// once another key was found invalid was spent); absent if every key was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stop>,
    /// One per non-linearizable key, by key; or, once
    /// [`CheckResult::keep_earliest_counterexamples`] kept the earliest, in the order they
    /// were detected.
    pub counterexamples: Vec<Counterexample>,
    /// How many counterexamples were left out to keep the result readable.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub counterexamples_left_out: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

impl CheckResult {
    /// Keeps the `count` counterexamples that were detected first, in that order, and counts
    /// the others: a system that breaks everywhere (thousands of invalid keys) would
    /// otherwise leave results and reports of hundreds of megabytes that say the same thing.
    /// Every key's verdict stays in `keys`.
    pub fn keep_earliest_counterexamples(&mut self, count: usize) {
        self.counterexamples
            .sort_by_key(|example| example.detected_at().unwrap_or((u64::MAX, u64::MAX)));
        let left_out = self.counterexamples.len().saturating_sub(count);
        self.counterexamples.truncate(count);
        self.counterexamples_left_out += left_out;
    }
}

/// One key's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyResult {
    /// The key (`null` for a history without keys, or for the whole history checked at once).
    pub key: Option<String>,
    /// `true`, `false` or `"unknown"`.
    pub valid: Verdict,
    /// How many operations it has.
    pub operations: usize,
    /// Wall time of its search.
    pub seconds: f64,
}

/// One partition for [`check_operations`]: a model's initial state and operations on it.
pub struct Partition<M: SequentialSpec> {
    /// The state before any operation.
    pub init: M,
    /// The operations, in any order.
    pub operations: Vec<ModelOperation<M>>,
}

/// The outcome of one partition's search.
pub struct PartitionOutcome<M> {
    /// Linearizable, not (with where the search got stuck), or stopped by the budget.
    pub result: SearchResult<M>,
    /// Wall time of the search.
    pub elapsed: Duration,
}

/// Checks partitions of operations on any model, in parallel on all cores, within `budget`
/// for all of them together. The outcomes are in the order of `partitions`.
///
/// The searches run in rounds: each undecided partition gets a slice of steps per round,
/// twice as many as in the round before. So partitions that are quick to decide are decided
/// first, whatever their order, and an invalid one soon brings the deadline forward.
pub fn check_operations<M>(partitions: &[Partition<M>], budget: Budget) -> Vec<PartitionOutcome<M>>
where
    M: SequentialSpec<Op: Sync, Ret: Sync> + Clone + Eq + Hash + Send + Sync,
{
    let deadline = Deadline::new(&budget);
    let mut tasks: Vec<Task<M>> = partitions
        .iter()
        .map(|partition| Task {
            partition,
            search: None,
            result: None,
            elapsed: Duration::ZERO,
        })
        .collect();
    let mut slice = FIRST_SLICE;
    while tasks.iter().any(|task| task.result.is_none()) {
        tasks
            .par_iter_mut()
            .with_max_len(1)
            .for_each(|task| task.run(slice, &deadline, budget.after_invalid));
        slice = slice.saturating_mul(2);
    }
    tasks
        .into_iter()
        .map(|task| PartitionOutcome {
            result: task
                .result
                .unwrap_or_else(|| SearchResult::Stopped(deadline.cause())),
            elapsed: task.elapsed,
        })
        .collect()
}

/// Steps in the first round of [`check_operations`].
const FIRST_SLICE: u64 = 1 << 14;

/// One partition: its search while it runs (created on its first slice, so that memory goes
/// only to the searches under way), its result once it has ended, and the time it took.
struct Task<'a, M: SequentialSpec> {
    partition: &'a Partition<M>,
    search: Option<Box<Search<'a, M>>>,
    result: Option<SearchResult<M>>,
    elapsed: Duration,
}

impl<M> Task<'_, M>
where
    M: SequentialSpec + Clone + Eq + Hash,
{
    /// Runs the search, unless it has ended, for `slice` more steps.
    fn run(&mut self, slice: u64, deadline: &Deadline, after_invalid: Option<Duration>) {
        if self.result.is_some() {
            return;
        }
        let started = Instant::now();
        let search = self.search.take().unwrap_or_else(|| {
            Box::new(Search::new(
                &self.partition.init,
                &self.partition.operations,
            ))
        });
        match search.run(slice, deadline) {
            Progress::Paused(search) => self.search = Some(search),
            Progress::Done(result) => {
                if let (SearchResult::NotLinearizable(_), Some(after_invalid)) =
                    (&result, after_invalid)
                {
                    deadline.bring_forward(after_invalid, Stop::AfterInvalid);
                }
                self.result = Some(result);
            }
        }
        self.elapsed += started.elapsed();
    }
}

/// Checks a history against one of the built-in models: every key with `model` (see
/// [`crate::check()`] for each key with its own).
pub fn check_history(
    history: &History,
    model: ModelKind,
    options: &CheckOptions,
) -> Result<CheckResult, Error> {
    let started = Instant::now();
    let operations = operations(history)?;
    check_model(operations.iter().collect(), model, options, started)
}

/// Checks `operations` against `model`, within what is left at the time of `options.budget`
/// counted from `started`: checks of several models, one after another from one start, share
/// one budget. (`operations` is taken, to be dropped once split into partitions: ten million
/// references are 80 MB.)
pub(crate) fn check_model(
    operations: Vec<&Operation>,
    model: ModelKind,
    options: &CheckOptions,
    started: Instant,
) -> Result<CheckResult, Error> {
    let model_started = Instant::now();
    let count = operations.len();
    let partitions = partitions(operations, options.whole);
    let checked = match model {
        ModelKind::Register => check_with::<RegisterReader>(&partitions, options, started),
        ModelKind::CasRegister => check_with::<CasRegisterReader>(&partitions, options, started),
        ModelKind::Kv => check_with::<KvReader>(&partitions, options, started),
        ModelKind::ListAppend => check_with::<ListAppendReader>(&partitions, options, started),
        ModelKind::Mutex => check_with::<MutexReader>(&partitions, options, started),
        ModelKind::MultiRegister => {
            check_with::<MultiRegisterReader>(&partitions, options, started)
        }
        ModelKind::Set => check_with::<SetReader>(&partitions, options, started),
        ModelKind::UnorderedQueue => {
            check_with::<UnorderedQueueReader>(&partitions, options, started)
        }
        ModelKind::FifoQueue => check_with::<FifoQueueReader>(&partitions, options, started),
    }?;
    let keys = checked.keys;
    Ok(CheckResult {
        valid: keys
            .iter()
            .fold(Verdict::Valid, |verdict, key| verdict.and(key.valid)),
        model,
        operations: count,
        seconds: model_started.elapsed().as_secs_f64(),
        undecided: keys
            .iter()
            .filter(|key| key.valid == Verdict::Unknown)
            .map(|key| key.key.clone())
            .collect(),
        stopped: checked.stopped,
        keys,
        counterexamples: checked.counterexamples,
        counterexamples_left_out: 0,
    })
}

/// What checking the partitions found.
struct Checked {
    keys: Vec<KeyResult>,
    counterexamples: Vec<Counterexample>,
    /// Why some keys are undecided, if any are.
    stopped: Option<Stop>,
}

/// The operations of each key, by key; or all of them as one partition.
type Partitions<'a> = Vec<(Option<String>, Vec<&'a Operation>)>;

fn partitions(operations: Vec<&Operation>, whole: bool) -> Partitions<'_> {
    if whole {
        return vec![(None, operations)];
    }
    let mut by_key: BTreeMap<Option<&str>, Vec<&Operation>> = BTreeMap::new();
    for op in operations {
        by_key.entry(op.key.as_deref()).or_default().push(op);
    }
    by_key
        .into_iter()
        .map(|(key, ops)| (key.map(str::to_string), ops))
        .collect()
}

fn check_with<R: Reader>(
    partitions: &Partitions,
    options: &CheckOptions,
    started: Instant,
) -> Result<Checked, Error> {
    if options.whole {
        check_partitions::<KeyedReader<R>>(partitions, options, started)
    } else {
        check_partitions::<R>(partitions, options, started)
    }
}

fn check_partitions<R: Reader>(
    partitions: &Partitions,
    options: &CheckOptions,
    started: Instant,
) -> Result<Checked, Error> {
    let read: Vec<ReadPartition<R>> = partitions
        .par_iter()
        .map(|(_, ops)| read_partition::<R>(ops, options.initial.as_ref()))
        .collect::<Result<_, _>>()?;
    let (readers, model_partitions): (Vec<_>, Vec<_>) = read
        .into_iter()
        .map(|read| ((read.reader, read.origin), read.partition))
        .unzip();

    // The budget counts from the start of the check.
    let budget = Budget {
        timeout: (options.budget.timeout).map(|timeout| timeout.saturating_sub(started.elapsed())),
        ..options.budget
    };
    let outcomes = check_operations(&model_partitions, budget);

    let mut keys = Vec::with_capacity(partitions.len());
    let mut counterexamples = Vec::new();
    let mut invalid_ops = Vec::new();
    let mut stopped = None;
    for (((key, ops), (reader, origin)), outcome) in partitions.iter().zip(&readers).zip(outcomes) {
        let valid = match &outcome.result {
            SearchResult::Linearizable => Verdict::Valid,
            SearchResult::Stopped(cause) => {
                stopped.get_or_insert(*cause);
                Verdict::Unknown
            }
            SearchResult::NotLinearizable(stuck) => {
                counterexamples.push(counterexample(key.clone(), ops, origin, stuck, reader));
                invalid_ops.push(ops);
                Verdict::Invalid
            }
        };
        keys.push(KeyResult {
            key: key.clone(),
            valid,
            operations: ops.len(),
            seconds: outcome.elapsed.as_secs_f64(),
        });
    }
    let refining = Deadline::new(&Budget {
        timeout: Some(REFINING),
        ..options.budget
    });
    counterexamples
        .par_iter_mut()
        .zip(invalid_ops)
        .with_max_len(1)
        .for_each(|(example, ops)| {
            example.observable = first_invalid_cut::<R>(ops, options, &refining);
        });
    Ok(Checked {
        keys,
        counterexamples,
        stopped,
    })
}

/// How long finding when each anomaly became observable may take, for all keys together:
/// beyond it, the first rejected operation's completion stands in.
const REFINING: Duration = Duration::from_secs(2);

/// The completion that made a non-linearizable key so: the earliest completion at which
/// the key's history, cut there ([`cut`]), is already not linearizable. A search finds
/// *that* a history is not linearizable, and its counterexample names the operations it
/// could not place; those may have completed long before the evidence against them (an
/// acknowledged write that later reads miss is rejected at its own completion). The cut at
/// the last completion is not linearizable (the whole key is not, and leaving out what never
/// completed cannot help), and a later cut only adds constraints, so a binary search over the
/// completions finds the first. `None` if a search did not finish before `deadline`.
/// (With `options.whole`, the cut is of the whole history, which is what the verdict is of.)
fn first_invalid_cut<R: Reader>(
    ops: &[&Operation],
    options: &CheckOptions,
    deadline: &Deadline,
) -> Option<Observable> {
    let mut completions: Vec<(u64, u64)> = ops
        .iter()
        .filter_map(|op| Some((op.return_time?, op.id)))
        .collect();
    completions.sort_unstable();
    // The cut at `completions[high]` is not linearizable.
    let (mut low, mut high) = (0, completions.len().checked_sub(1)?);
    while low < high {
        let middle = low + (high - low) / 2;
        let cut_ops = cut(ops, completions[middle].0);
        let cut_ops: Vec<&Operation> = cut_ops.iter().collect();
        let read = read_partition::<R>(&cut_ops, options.initial.as_ref()).ok()?;
        let budget = Budget {
            timeout: Some(deadline.remaining()?),
            after_invalid: None,
            memory: options.budget.memory,
        };
        let outcome = check_operations(std::slice::from_ref(&read.partition), budget).pop()?;
        match outcome.result {
            SearchResult::Linearizable => low = middle + 1,
            SearchResult::NotLinearizable(_) => high = middle,
            SearchResult::Stopped(_) => return None,
        }
    }
    let (time, operation) = completions[high];
    Some(Observable { time, operation })
}

/// The operations as they stood at `time`: those called later left out, those that
/// completed later (or never) indeterminate, their results unknown.
fn cut(ops: &[&Operation], time: u64) -> Vec<Operation> {
    ops.iter()
        .filter(|op| op.call <= time)
        .map(|&op| {
            let mut op = op.clone();
            if op.return_time.is_none_or(|returned| returned > time) {
                op.return_time = None;
                op.outcome = Outcome::Info;
            }
            op
        })
        .collect()
}

/// A partition read for one model: the reader (which explains the model's states later), the
/// model's partition, and for each model operation its place among the partition's
/// operations (reads with unknown results are left out; 32 bits, as one per operation of a
/// large history adds up).
struct ReadPartition<R: Reader> {
    reader: R,
    partition: Partition<R::Model>,
    origin: Vec<u32>,
}

fn read_partition<R: Reader>(
    ops: &[&Operation],
    initial: Option<&Value>,
) -> Result<ReadPartition<R>, Error> {
    let mut reader = R::new(initial).map_err(Error::InitialValue)?;
    let mut operations = Vec::with_capacity(ops.len());
    let mut origin = Vec::with_capacity(ops.len());
    for (place, op) in ops.iter().enumerate() {
        let model_op = reader.operation(op).map_err(|message| {
            Error::malformed(op.location.unwrap_or(Location::Event(op.id)), message)
        })?;
        if let Some(model_op) = model_op {
            operations.push(model_op);
            origin.push(u32::try_from(place).expect("fewer than 2^32 operations in a partition"));
        }
    }
    let partition = Partition {
        init: reader.initial(),
        operations,
    };
    Ok(ReadPartition {
        reader,
        partition,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counterexample::Rejection;
    use serde_json::json;

    fn history(lines: &[&str]) -> History {
        History::from_jsonl(&lines.join("\n")).unwrap()
    }

    fn check(history: &History, options: &CheckOptions) -> CheckResult {
        check_history(history, ModelKind::CasRegister, options).unwrap()
    }

    /// Key "a" is fine; key "b" has a stale read: the write of 2 returned before the read of 1
    /// began.
    fn two_keys_one_bad() -> History {
        history(&[
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","key":"a","value":1}"#,
            r#"{"index":1,"time":1,"process":0,"type":"ok","f":"write","key":"a","value":1}"#,
            r#"{"index":2,"time":2,"process":1,"type":"invoke","f":"write","key":"b","value":1}"#,
            r#"{"index":3,"time":3,"process":1,"type":"ok","f":"write","key":"b","value":1}"#,
            r#"{"index":4,"time":4,"process":1,"type":"invoke","f":"cas","key":"b","value":[1,2]}"#,
            r#"{"index":5,"time":5,"process":1,"type":"ok","f":"cas","key":"b","value":[1,2]}"#,
            r#"{"index":6,"time":6,"process":2,"type":"invoke","f":"read","key":"b","value":null}"#,
            r#"{"index":7,"time":7,"process":3,"type":"invoke","f":"cas","key":"b","value":[2,3]}"#,
            r#"{"index":8,"time":8,"process":2,"type":"ok","f":"read","key":"b","value":1}"#,
            r#"{"index":9,"time":9,"process":3,"type":"fail","f":"cas","key":"b","value":[2,3],"error":"cas-mismatch"}"#,
        ])
    }

    #[test]
    fn an_anomaly_is_dated_at_the_completion_that_made_it_visible() {
        // Appends of 1 and 2 acknowledged by t=4 and read at t=6; a power loss later, a read
        // at t=20 returns [1] and one at t=30 returns []. The history stops being
        // linearizable at t=20, with the read that misses 2, whatever the search rejects.
        let lines = [
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"append","key":"l","value":1}"#,
            r#"{"index":1,"time":2,"process":0,"type":"ok","f":"append","key":"l","value":1}"#,
            r#"{"index":2,"time":3,"process":0,"type":"invoke","f":"append","key":"l","value":2}"#,
            r#"{"index":3,"time":4,"process":0,"type":"ok","f":"append","key":"l","value":2}"#,
            r#"{"index":4,"time":5,"process":1,"type":"invoke","f":"read","key":"l","value":null}"#,
            r#"{"index":5,"time":6,"process":1,"type":"ok","f":"read","key":"l","value":[1,2]}"#,
            r#"{"index":6,"time":7,"process":0,"type":"invoke","f":"append","key":"l","value":3}"#,
            r#"{"index":7,"time":8,"process":0,"type":"ok","f":"append","key":"l","value":3}"#,
            r#"{"index":8,"time":19,"process":1,"type":"invoke","f":"read","key":"l","value":null}"#,
            r#"{"index":9,"time":20,"process":1,"type":"ok","f":"read","key":"l","value":[1]}"#,
            r#"{"index":10,"time":29,"process":1,"type":"invoke","f":"read","key":"l","value":null}"#,
            r#"{"index":11,"time":30,"process":1,"type":"ok","f":"read","key":"l","value":[]}"#,
        ];
        let result = check_history(
            &history(&lines),
            ModelKind::ListAppend,
            &CheckOptions::default(),
        )
        .unwrap();
        assert_eq!(result.valid, Verdict::Invalid);
        let example = &result.counterexamples[0];
        assert_eq!(
            example.observable,
            Some(Observable {
                time: 20,
                operation: 8
            })
        );
        assert_eq!(example.detected_at(), Some((20, 8)));

        // A stale read is seen when it completes.
        let result = check(&two_keys_one_bad(), &CheckOptions::default());
        assert_eq!(result.counterexamples[0].detected_at(), Some((8, 6)));
    }

    /// A stale read of key `key` that completes at `at`: write 1, write 2, then a read of 1.
    fn stale_read(key: &str, first_index: u64, at: u64) -> Vec<String> {
        let event = |i: u64, time: u64, kind: &str, f: &str, value: &str| {
            format!(
                r#"{{"index":{},"time":{time},"process":{},"type":"{kind}","f":"{f}","key":"{key}","value":{value}}}"#,
                first_index + i,
                first_index + i % 2,
            )
        };
        vec![
            event(0, at - 5, "invoke", "write", "1"),
            event(2, at - 4, "ok", "write", "1"),
            event(4, at - 3, "invoke", "write", "2"),
            event(6, at - 2, "ok", "write", "2"),
            event(8, at - 1, "invoke", "read", "null"),
            event(10, at, "ok", "read", "1"),
        ]
    }

    #[test]
    fn only_the_earliest_counterexamples_are_kept_and_the_rest_counted() {
        // Key "z" goes wrong first, then "y", then "x": the order of detection, not of keys.
        let mut lines: Vec<String> = Vec::new();
        for (key, first, at) in [("x", 0, 300), ("y", 100, 200), ("z", 200, 100)] {
            lines.extend(stale_read(key, first, at));
        }
        let mut events: Vec<serde_json::Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        events.sort_by_key(|event| event["time"].as_u64().unwrap());
        // Numbered in their new order, as a recorder numbers what it records.
        for (index, event) in events.iter_mut().enumerate() {
            event["index"] = json!(index);
        }
        let lines: Vec<String> = events.iter().map(ToString::to_string).collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut result = check(&history(&lines), &CheckOptions::default());
        assert_eq!(result.counterexamples.len(), 3);
        result.keep_earliest_counterexamples(2);
        let kept: Vec<_> = result
            .counterexamples
            .iter()
            .map(|example| example.key.as_deref().unwrap())
            .collect();
        assert_eq!(kept, ["z", "y"]);
        assert_eq!(result.counterexamples_left_out, 1);
        // Every key's verdict stays.
        assert_eq!(result.keys.len(), 3);
        assert!(result.keys.iter().all(|key| key.valid == Verdict::Invalid));
    }

    #[test]
    fn a_bad_key_gets_a_counterexample_with_reasons() {
        let result = check(&two_keys_one_bad(), &CheckOptions::default());
        assert_eq!(result.valid, Verdict::Invalid);
        assert_eq!(result.operations, 5);
        let verdicts: Vec<_> = result
            .keys
            .iter()
            .map(|k| (k.key.as_deref(), k.valid))
            .collect();
        assert_eq!(
            verdicts,
            [(Some("a"), Verdict::Valid), (Some("b"), Verdict::Invalid)]
        );
        assert!(result.undecided.is_empty());

        let [example] = result.counterexamples.as_slice() else {
            panic!("one counterexample expected: {:?}", result.counterexamples);
        };
        assert_eq!(example.key.as_deref(), Some("b"));
        assert_eq!(
            example
                .operations
                .iter()
                .map(|op| op.id)
                .collect::<Vec<_>>(),
            [2, 4, 6, 7]
        );
        assert_eq!(example.prefix, [2, 4]);
        assert_eq!(example.state, json!(2));
        assert_eq!(
            example.rejected,
            [
                Rejection {
                    id: 6,
                    reason: "read returned 1 but the value was 2".into()
                },
                Rejection {
                    id: 7,
                    reason: "cas [2,3] failed its comparison but the value was 2".into()
                },
            ]
        );

        let json = serde_json::to_value(example).unwrap();
        assert_eq!(
            json["operations"][3],
            json!({"id": 7, "process": 3, "f": "cas", "key": "b", "value": [2, 3],
                   "call": 7, "return": 9, "outcome": "cas-mismatch"})
        );
    }

    #[test]
    fn the_result_survives_a_round_trip_through_json() {
        let result = check(&two_keys_one_bad(), &CheckOptions::default());
        let json = serde_json::to_string(&result).unwrap();
        let mut reread: CheckResult = serde_json::from_str(&json).unwrap();
        // Source locations are for error messages, not part of the result.
        for example in &mut reread.counterexamples {
            for (op, original) in example
                .operations
                .iter_mut()
                .zip(&result.counterexamples[0].operations)
            {
                op.location = original.location;
            }
        }
        assert_eq!(reread, result);
    }

    #[test]
    fn checking_the_whole_history_at_once_gives_the_same_verdict() {
        let whole = CheckOptions {
            whole: true,
            ..CheckOptions::default()
        };
        let result = check(&two_keys_one_bad(), &whole);
        assert_eq!(result.valid, Verdict::Invalid);
        assert_eq!(result.keys.len(), 1);
        assert_eq!(result.counterexamples[0].state, json!({"a": 1, "b": 2}));
    }

    /// Key "slow": 24 concurrent writes, then a read of a value nobody wrote; deciding it
    /// means trying every subset of the writes. Key "quick" is valid, key "stale" invalid, and
    /// both are decided in a few steps.
    fn slow_quick_and_stale(with_stale: bool) -> History {
        let mut lines = Vec::new();
        let mut event = |process: usize, kind: &str, key: &str, f: &str, value: Value| {
            let index = lines.len();
            lines.push(
                json!({"index": index, "time": index, "process": process, "type": kind,
                       "f": f, "key": key, "value": value})
                .to_string(),
            );
        };
        for p in 0..24 {
            event(p, "invoke", "slow", "write", json!(p));
        }
        event(99, "invoke", "slow", "read", Value::Null);
        event(99, "ok", "slow", "read", json!(-1));
        for p in 0..24 {
            event(p, "ok", "slow", "write", json!(p));
        }
        event(100, "invoke", "quick", "write", json!(1));
        event(100, "ok", "quick", "write", json!(1));
        if with_stale {
            event(101, "invoke", "stale", "read", Value::Null);
            event(101, "ok", "stale", "read", json!(7));
        }
        History::from_jsonl(&lines.join("\n")).unwrap()
    }

    fn no_time() -> CheckOptions {
        CheckOptions {
            budget: Budget {
                timeout: Some(Duration::ZERO),
                after_invalid: None,
                memory: None,
            },
            ..CheckOptions::default()
        }
    }

    fn verdict_of(result: &CheckResult, key: &str) -> Option<Verdict> {
        let found = result.keys.iter().find(|k| k.key.as_deref() == Some(key));
        found.map(|k| k.valid)
    }

    #[test]
    fn the_models_share_one_budget() {
        // A model checked after others gets what is left of the budget counted from the start
        // of the whole check: here nothing, so a key that would take minutes is left unknown
        // at once instead of after a budget of its own.
        let budget = Duration::from_secs(60);
        let Some(long_ago) = Instant::now().checked_sub(budget + Duration::from_secs(1)) else {
            return; // a machine up for less than a minute
        };
        let options = CheckOptions {
            budget: Budget {
                timeout: Some(budget),
                ..Budget::default()
            },
            ..CheckOptions::default()
        };
        let operations = operations(&slow_quick_and_stale(false)).unwrap();
        let operations: Vec<&Operation> = operations.iter().collect();
        let result = check_model(operations, ModelKind::CasRegister, &options, long_ago).unwrap();
        assert_eq!(result.valid, Verdict::Unknown);
        assert_eq!(result.stopped, Some(Stop::Timeout));
        assert!(
            result.seconds < 30.0,
            "{} s of a spent budget",
            result.seconds
        );
    }

    #[test]
    fn a_spent_budget_leaves_long_searches_unknown_and_reports_the_decided_keys() {
        let result = check(&slow_quick_and_stale(false), &no_time());
        assert_eq!(result.valid, Verdict::Unknown);
        assert_eq!(result.undecided, [Some("slow".to_string())]);
        assert_eq!(result.stopped, Some(Stop::Timeout));
        assert_eq!(verdict_of(&result, "quick"), Some(Verdict::Valid));
    }

    #[test]
    fn an_invalid_key_makes_the_history_invalid_even_with_undecided_keys() {
        let result = check(&slow_quick_and_stale(true), &no_time());
        assert_eq!(result.valid, Verdict::Invalid);
        assert_eq!(result.undecided, [Some("slow".to_string())]);
        assert_eq!(verdict_of(&result, "stale"), Some(Verdict::Invalid));
        assert_eq!(result.counterexamples.len(), 1);
    }

    #[test]
    fn an_invalid_key_brings_the_deadline_forward() {
        let stop_at_first_invalid = CheckOptions {
            budget: Budget {
                timeout: None,
                after_invalid: Some(Duration::ZERO),
                memory: None,
            },
            ..CheckOptions::default()
        };
        // Without the invalid key, "slow" would run to completion; with it, it stops.
        let result = check(&slow_quick_and_stale(true), &stop_at_first_invalid);
        assert_eq!(result.valid, Verdict::Invalid);
        assert_eq!(verdict_of(&result, "slow"), Some(Verdict::Unknown));
        assert_eq!(result.stopped, Some(Stop::AfterInvalid));
    }

    #[test]
    fn operations_the_model_lacks_are_errors_with_a_location() {
        let history = history(&[
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"get","value":null}"#,
        ]);
        let error = check_history(&history, ModelKind::Register, &CheckOptions::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "line 1: the register model has no operation \"get\" (expected read or write)"
        );
        let history = self::history(&[
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"cas","value":3}"#,
        ]);
        let error = check_history(&history, ModelKind::CasRegister, &CheckOptions::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "line 1: expected the value of a cas to be [from, to], found 3"
        );
        let error = check_history(
            &history,
            ModelKind::Kv,
            &CheckOptions {
                initial: Some(json!(3)),
                ..CheckOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "initial value: the kv model starts from a string, not 3"
        );
    }

    #[test]
    fn the_initial_value_is_respected() {
        let history = history(&[
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"read","value":null}"#,
            r#"{"index":1,"time":1,"process":0,"type":"ok","f":"read","value":5}"#,
        ]);
        assert_eq!(
            check(&history, &CheckOptions::default()).valid,
            Verdict::Invalid
        );
        let five = CheckOptions {
            initial: Some(json!(5)),
            ..CheckOptions::default()
        };
        assert_eq!(check(&history, &five).valid, Verdict::Valid);
    }
}
