//! Property tests of the list-append check, which follows the order of the longest read when
//! the elements are unique (see `faultline_checker::model::list_append::ordered`):
//! - its verdicts agree with stateright's `LinearizabilityTester` on the plain list model, on
//!   small random histories;
//! - checking keys apart or together gives the same verdict;
//! - histories from a real sequential run, with stretched intervals and `info` appends, are
//!   linearizable;
//! - the same histories with one anomaly put in are not: an acknowledged element missing from
//!   a later read, two reads disagreeing on the order, a read of an element never appended;
//! - histories shaped like the harness's are decided (the check used to be exponential in the
//!   appends that overlap between two reads).

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{End, Step, small_history, unlimited};
use faultline_checker::generate::{Workload, list_append_history};
use faultline_checker::model::list_append::{ListAppend, ListOp, ListRet};
use faultline_checker::{
    Budget, CheckOptions, Event, EventType, History, ModelKind, Operation, Outcome, Process,
    Verdict, check_history, operations,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

/// A list operation of a small history: an append (of an element numbered by the operation's
/// id, so all distinct) or a read, on a key.
#[derive(Clone, Debug)]
struct ListSpec {
    key: &'static str,
    read: Option<ReadShape>,
}

/// What a read returns: the first `len` elements appended to its key, in the history's order
/// of elements; then, if `stray`, an element never appended; with the first two swapped if
/// `swap`.
#[derive(Clone, Copy, Debug)]
struct ReadShape {
    len: usize,
    stray: bool,
    swap: bool,
}

/// An element no operation appends.
const STRAY: u64 = 100;

fn list_spec(keys: &'static [&'static str]) -> impl Strategy<Value = ListSpec> {
    let read = (
        0usize..5,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(len, stray, swap)| ReadShape { len, stray, swap });
    (
        prop::sample::select(keys),
        prop::option::weighted(0.5, read),
    )
        .prop_map(|(key, read)| ListSpec { key, read })
}

/// A list operation made concrete: its key, and the operation with its result if it is `ok`.
#[derive(Clone, Debug)]
struct ListStep {
    key: &'static str,
    op: ListOp<u64>,
    ret: ListRet<u64>,
}

/// Small random list histories on `keys`: reads return prefixes of one random order of the
/// appended elements (so that many histories are valid), or a few anomalies.
fn small_list_history(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<Step<ListStep>>> {
    (
        small_history(list_spec(keys)),
        Just((0..8u64).collect::<Vec<u64>>()).prop_shuffle(),
    )
        .prop_map(|(steps, order)| {
            let appends: Vec<(u64, &str)> = steps
                .iter()
                .filter(|step| step.kind == EventType::Invoke && step.spec.op.read.is_none())
                .map(|step| (step.spec.id as u64, step.spec.op.key))
                .collect();
            steps
                .iter()
                .map(|step| {
                    let spec = &step.spec.op;
                    let (op, ret) = match spec.read {
                        None => (ListOp::Append(step.spec.id as u64), ListRet::AppendOk),
                        Some(shape) => {
                            let appended = |e: &u64| appends.contains(&(*e, spec.key));
                            let mut list: Vec<u64> = order
                                .iter()
                                .copied()
                                .filter(appended)
                                .take(shape.len)
                                .collect();
                            if shape.stray {
                                list.push(STRAY);
                            }
                            if shape.swap && list.len() >= 2 {
                                list.swap(0, 1);
                            }
                            (ListOp::Read, ListRet::ReadOk(list))
                        }
                    };
                    Step {
                        process: step.process,
                        kind: step.kind,
                        spec: common::Spec {
                            id: step.spec.id,
                            slot: step.spec.slot,
                            end: step.spec.end,
                            op: ListStep {
                                key: spec.key,
                                op,
                                ret,
                            },
                        },
                    }
                })
                .collect()
        })
}

/// The steps as a Faultline history.
fn history(steps: &[Step<ListStep>]) -> History {
    let events = steps
        .iter()
        .zip(0..)
        .map(|(step, index)| {
            let spec = &step.spec.op;
            let (f, value) = match (&spec.op, step.kind, &spec.ret) {
                (ListOp::Append(element), ..) => ("append", json!(element)),
                (ListOp::Read, EventType::Ok, ListRet::ReadOk(list)) => ("read", json!(list)),
                (ListOp::Read, ..) => ("read", Value::Null),
            };
            let error = match step.kind {
                EventType::Fail => Some("unavailable".to_string()),
                EventType::Info => Some("timeout".to_string()),
                _ => None,
            };
            Event {
                index,
                time: index,
                process: Process::Client(step.process),
                kind: step.kind,
                f: f.into(),
                key: Some(spec.key.into()),
                value: value.into(),
                error: error.map(Into::into),
                node: None,
                final_read: false,
            }
        })
        .collect();
    History::new(events)
}

/// stateright's verdict on the steps of one key, with the plain list model.
fn oracle(steps: &[Step<ListStep>]) -> bool {
    let mut tester = LinearizabilityTester::new(ListAppend { list: vec![] });
    for step in steps {
        match (step.kind, step.spec.end) {
            // A plain fail did not happen: the operation is not in the history at all.
            (_, End::Fail) => {}
            (EventType::Invoke, _) => {
                tester
                    .on_invoke(step.process, step.spec.op.op.clone())
                    .unwrap();
            }
            // Indeterminate: stays in flight.
            (EventType::Info, _) => {}
            _ => {
                tester
                    .on_return(step.process, step.spec.op.ret.clone())
                    .unwrap();
            }
        }
    }
    tester.is_consistent()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn verdicts_agree_with_staterights_linearizability_tester(
        steps in small_list_history(&["l"])
    ) {
        let ours = check_history(&history(&steps), ModelKind::ListAppend, &unlimited()).unwrap();
        let expected = if oracle(&steps) { Verdict::Valid } else { Verdict::Invalid };
        prop_assert_eq!(ours.valid, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn checking_keys_apart_or_together_gives_the_same_verdict(
        steps in small_list_history(&["a", "b"])
    ) {
        let history = history(&steps);
        let apart = check_history(&history, ModelKind::ListAppend, &unlimited()).unwrap();
        let whole = CheckOptions { whole: true, ..unlimited() };
        let together = check_history(&history, ModelKind::ListAppend, &whole).unwrap();
        prop_assert_eq!(apart.valid, together.valid);
    }
}

/// A generated list-append history's workload.
fn workload() -> impl Strategy<Value = Workload> {
    (
        any::<u64>(),
        1usize..300,
        1usize..4,
        1usize..21,
        0.0f64..0.4,
        0.0f64..0.2,
        0u64..300,
    )
        .prop_map(
            |(seed, operations, keys, processes, info_rate, fail_rate, stretch)| Workload {
                operations,
                keys,
                processes,
                info_rate,
                fail_rate,
                stretch,
                seed,
                ..Workload::default()
            },
        )
}

/// The default budget, whole: a key it leaves undecided fails the test.
fn one_minute() -> CheckOptions {
    CheckOptions {
        budget: Budget {
            after_invalid: None,
            ..Budget::default()
        },
        ..CheckOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn histories_from_a_sequential_run_are_linearizable(workload in workload()) {
        let history = list_append_history(&workload);
        let result = check_history(&history, ModelKind::ListAppend, &one_minute()).unwrap();
        prop_assert_eq!(result.valid, Verdict::Valid, "{:?}", result.counterexamples);
    }

    #[test]
    fn histories_with_an_anomaly_put_in_are_not(
        workload in workload(),
        anomaly in prop::sample::select(Anomaly::ALL.to_vec()),
        which in any::<usize>(),
    ) {
        let history = list_append_history(&workload);
        let Some(broken) = anomaly.put_in(&history, which) else {
            // Nowhere to put it (too few reads, say).
            return Ok(());
        };
        let result = check_history(&broken, ModelKind::ListAppend, &one_minute()).unwrap();
        prop_assert_eq!(result.valid, Verdict::Invalid);
    }
}

/// An anomaly that makes a list-append history non-linearizable.
#[derive(Clone, Copy, Debug)]
enum Anomaly {
    /// A read lacks an element whose append returned before the read was invoked.
    Missing,
    /// Two reads with two elements or more each have their first two in opposite orders.
    Disagreeing,
    /// A read returns an element nothing appended.
    NeverAppended,
}

impl Anomaly {
    const ALL: [Anomaly; 3] = [
        Anomaly::Missing,
        Anomaly::Disagreeing,
        Anomaly::NeverAppended,
    ];

    /// The history with the anomaly put in at one of the places it fits (the one numbered
    /// `which`, modulo their number); `None` if it fits nowhere.
    fn put_in(self, history: &History, which: usize) -> Option<History> {
        let ops = operations(history).unwrap();
        let reads: Vec<&Operation> = ops
            .iter()
            .filter(|op| op.f == "read" && op.outcome == Outcome::Ok)
            .collect();
        let mut events = history.events().to_vec();
        match self {
            Anomaly::Missing => {
                let places: Vec<(&Operation, &Value)> = reads
                    .iter()
                    .flat_map(|&read| {
                        ops.iter()
                            .filter(|append| {
                                append.f == "append"
                                    && append.key == read.key
                                    && append.return_time.is_some_and(|ret| ret < read.call)
                                    && read.value.as_array().unwrap().contains(&append.value)
                            })
                            .map(move |append| (read, &*append.value))
                    })
                    .collect();
                let (read, element) = *pick(&places, which)?;
                read_value(&mut events, read).retain(|e| e != element);
            }
            Anomaly::Disagreeing => {
                let long: Vec<&&Operation> = reads
                    .iter()
                    .filter(|read| read.value.as_array().unwrap().len() >= 2)
                    .collect();
                let pairs: Vec<(&Operation, &Operation)> = long
                    .iter()
                    .flat_map(|a| long.iter().map(move |b| (**a, **b)))
                    .filter(|(a, b)| a.id < b.id && a.key == b.key)
                    .collect();
                let (_, second) = *pick(&pairs, which)?;
                read_value(&mut events, second).swap(0, 1);
            }
            Anomaly::NeverAppended => {
                let read = *pick(&reads, which)?;
                read_value(&mut events, read).push(json!(-1));
            }
        }
        Some(History::new(events))
    }
}

/// The item numbered `which`, modulo their number; `None` if there are none.
fn pick<T>(items: &[T], which: usize) -> Option<&T> {
    items.get(which.checked_rem(items.len())?)
}

/// The list `read` returned, in its completion event.
fn read_value<'a>(events: &'a mut [Event], read: &Operation) -> &'a mut Vec<Value> {
    let completion = completion(events, read);
    Arc::make_mut(&mut events[completion].value)
        .as_array_mut()
        .expect("a read returns a list")
}

/// Where `op`'s completion is among the events: the next event of its process.
fn completion(events: &[Event], op: &Operation) -> usize {
    let invocation = op.id as usize;
    invocation
        + 1
        + events[invocation + 1..]
            .iter()
            .position(|event| event.process == op.process)
            .expect("an ok operation has a completion")
}

/// The most appends in flight at one instant (an `info` one until its completion event).
fn most_appends_in_flight(history: &History) -> usize {
    let mut in_flight: Vec<Process> = Vec::new();
    let mut most = 0;
    for event in history.events().iter().filter(|event| event.f == "append") {
        if event.kind == EventType::Invoke {
            in_flight.push(event.process);
            most = most.max(in_flight.len());
        } else {
            in_flight.retain(|process| *process != event.process);
        }
    }
    most
}

#[test]
fn histories_shaped_like_the_harness_are_decided() {
    for seed in 0..5 {
        // 20 clients on one key, 100 operations, half of them appends, many `info`, and
        // intervals stretched over dozens of operations.
        let workload = Workload {
            operations: 100,
            keys: 1,
            processes: 20,
            info_rate: 0.3,
            fail_rate: 0.05,
            stretch: 200,
            seed,
            ..Workload::default()
        };
        let history = list_append_history(&workload);
        let ops = operations(&history).unwrap();
        let info_appends = ops
            .iter()
            .filter(|op| op.f == "append" && op.outcome == Outcome::Info)
            .count();
        let overlapping = most_appends_in_flight(&history);
        assert!(info_appends >= 10, "{info_appends} info appends");
        assert!(overlapping >= 10, "{overlapping} appends overlap");

        let started = Instant::now();
        let result = check_history(&history, ModelKind::ListAppend, &one_minute()).unwrap();
        println!(
            "seed {seed}: {} operations, {info_appends} info appends, {overlapping} appends \
             overlapping: {} in {:?}",
            ops.len(),
            result.valid,
            started.elapsed()
        );
        assert_eq!(result.valid, Verdict::Valid);

        let broken = Anomaly::Missing
            .put_in(&history, 0)
            .expect("a read after an acknowledged append");
        let started = Instant::now();
        let result = check_history(&broken, ModelKind::ListAppend, &one_minute()).unwrap();
        println!(
            "seed {seed}, an element missing from a read: {} in {:?}",
            result.valid,
            started.elapsed()
        );
        assert_eq!(result.valid, Verdict::Invalid);
    }
}
