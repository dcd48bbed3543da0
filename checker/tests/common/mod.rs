//! Small random histories for property tests against stateright's `LinearizabilityTester`:
//! a few operations given to three clients, interleaved by a random schedule. What an
//! operation is (`O`) is up to each test.

// Each test file uses the part it needs.
#![allow(dead_code)]

use faultline_checker::{Budget, CheckOptions, EventType};
use proptest::prelude::*;

/// How many clients run at once.
pub const SLOTS: usize = 3;

/// How an operation ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Ok,
    Info,
    Fail,
}

/// How operations end: mostly `ok`, some `info`, a few `fail`.
pub fn end() -> impl Strategy<Value = End> {
    prop_oneof![6 => Just(End::Ok), 2 => Just(End::Info), 1 => Just(End::Fail)]
}

/// One operation a client will run, and how it ends.
#[derive(Clone, Debug)]
pub struct Spec<O> {
    /// Its place among the history's operations: unique to it.
    pub id: usize,
    pub slot: usize,
    pub op: O,
    pub end: End,
}

/// One event of a small history: an operation's invocation or completion.
#[derive(Clone, Debug)]
pub struct Step<O> {
    pub process: u64,
    pub spec: Spec<O>,
    pub kind: EventType,
}

/// Random small histories: up to 8 operations of the clients, interleaved by a schedule
/// (each entry moves one client on: it invokes its next operation or completes the current
/// one).
pub fn small_history<O: Clone + std::fmt::Debug>(
    op: impl Strategy<Value = O>,
) -> impl Strategy<Value = Vec<Step<O>>> {
    let spec = (0..SLOTS, op, end());
    (
        prop::collection::vec(spec, 1..=8),
        prop::collection::vec(0..SLOTS, 0..24),
    )
        .prop_map(|(specs, schedule)| {
            let specs: Vec<Spec<O>> = specs
                .into_iter()
                .enumerate()
                .map(|(id, (slot, op, end))| Spec { id, slot, op, end })
                .collect();
            interleave(&specs, &schedule)
        })
}

/// The events of `specs` run by their clients in the order `schedule` moves them. A client
/// goes on under a new process id after an `info`; an operation still running at the end
/// has no completion (it is indeterminate).
pub fn interleave<O: Clone>(specs: &[Spec<O>], schedule: &[usize]) -> Vec<Step<O>> {
    let mut queues: Vec<Vec<&Spec<O>>> = vec![Vec::new(); SLOTS];
    for spec in specs.iter().rev() {
        queues[spec.slot].push(spec);
    }
    let mut process: Vec<u64> = (0..SLOTS as u64).collect();
    let mut running: Vec<Option<&Spec<O>>> = vec![None; SLOTS];
    let mut steps = Vec::new();
    for &slot in schedule {
        if let Some(spec) = running[slot].take() {
            let kind = match spec.end {
                End::Ok => EventType::Ok,
                End::Info => EventType::Info,
                End::Fail => EventType::Fail,
            };
            steps.push(Step {
                process: process[slot],
                spec: spec.clone(),
                kind,
            });
            if kind == EventType::Info {
                process[slot] += SLOTS as u64;
            }
        } else if let Some(spec) = queues[slot].pop() {
            running[slot] = Some(spec);
            steps.push(Step {
                process: process[slot],
                spec: spec.clone(),
                kind: EventType::Invoke,
            });
        }
    }
    for (slot, running) in running.iter().enumerate() {
        if running.is_some() {
            let invoke = steps
                .iter_mut()
                .rev()
                .find(|step| step.process == process[slot])
                .expect("a running operation was invoked");
            invoke.spec.end = End::Info;
        }
    }
    steps
}

/// Check options with no time or memory limit: every key is decided.
pub fn unlimited() -> CheckOptions {
    CheckOptions {
        budget: Budget::UNLIMITED,
        ..CheckOptions::default()
    }
}
