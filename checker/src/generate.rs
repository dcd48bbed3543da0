//! Valid histories of any size, for tests and benchmarks: a real sequential run of a
//! compare-and-set register per key, with each operation's interval stretched at random around
//! the instant it took effect. Such a history is linearizable by construction.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::history::{Event, EventType, History, Process};
use crate::operation::CAS_MISMATCH;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// How many operations.
    pub operations: usize,
    /// How many registers, named `k0`, `k1`, ...; one operation touches one.
    pub keys: usize,
    /// How many clients run at once.
    pub processes: usize,
    /// The share of operations that end `info` (each then took effect or not, at random; its
    /// client goes on under a new process id).
    pub info_rate: f64,
    /// The share of operations that end in a plain `fail` (and did not take effect).
    pub fail_rate: f64,
    /// Values written are below this.
    pub values: u64,
    /// The longest stretch of an interval to either side of the instant an operation took
    /// effect, in nanoseconds: the larger, the more operations overlap.
    pub stretch: u64,
    /// The seed of the run.
    pub seed: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            operations: 1000,
            keys: 10,
            processes: 5,
            info_rate: 0.01,
            fail_rate: 0.01,
            values: 5,
            stretch: 100,
            seed: 0,
        }
    }
}

/// A client's state: its current process id and when its last operation returned.
struct Client {
    process: u64,
    idle_since: u64,
}

/// Generates a linearizable compare-and-set register history (`read`, `write`, `cas`).
pub fn cas_register_history(workload: &Workload) -> History {
    let mut rng = StdRng::seed_from_u64(workload.seed);
    let processes = workload.processes.max(1);
    let keys = workload.keys.max(1);
    let mut registers: Vec<Value> = vec![Value::Null; keys];
    let mut clients: Vec<Client> = (0..processes as u64)
        .map(|process| Client {
            process,
            idle_since: 0,
        })
        .collect();
    // (time, completion after invocation at equal times, event)
    let mut events: Vec<(u64, bool, Event)> = Vec::with_capacity(2 * workload.operations);
    // The instant the latest operation took effect; strictly increasing.
    let mut now: u64 = 0;

    for _ in 0..workload.operations {
        let client = &mut clients[rng.random_range(0..processes)];
        now = (now + rng.random_range(1..=10)).max(client.idle_since + 1);
        let call = rng.random_range(
            now.saturating_sub(workload.stretch)
                .max(client.idle_since + 1)..=now,
        );
        let returned = now + rng.random_range(0..=workload.stretch);
        let key = rng.random_range(0..keys);
        let register = &mut registers[key];

        let values = workload.values.max(1);
        let (f, argument) = match rng.random_range(0..10) {
            0..4 => ("read", Value::Null),
            4..8 => ("write", json!(rng.random_range(0..values))),
            _ => {
                let from = if rng.random_bool(0.5) {
                    register.clone()
                } else {
                    json!(rng.random_range(0..values))
                };
                ("cas", json!([from, rng.random_range(0..values)]))
            }
        };
        let happened = if rng.random_bool(workload.info_rate) {
            Some(EventType::Info)
        } else if rng.random_bool(workload.fail_rate) {
            Some(EventType::Fail)
        } else {
            None
        };
        // Whether it takes effect: ok ones do, failed ones do not, indeterminate ones may.
        let takes_effect = match happened {
            None => true,
            Some(EventType::Fail) => false,
            Some(_) => rng.random_bool(0.5),
        };

        let (kind, result, error) = match (happened, f) {
            (Some(EventType::Fail), _) => (EventType::Fail, argument.clone(), Some("unavailable")),
            (Some(kind), _) => {
                if takes_effect {
                    apply(register, f, &argument);
                }
                (kind, argument.clone(), Some("timeout"))
            }
            (None, "read") => (EventType::Ok, register.clone(), None),
            (None, _) if apply(register, f, &argument) => (EventType::Ok, argument.clone(), None),
            (None, _) => (EventType::Fail, argument.clone(), Some(CAS_MISMATCH)),
        };

        let event = |time, kind, value, error: Option<&str>| Event {
            index: 0,
            time,
            process: Process::Client(client.process),
            kind,
            f: f.to_string(),
            key: Some(format!("k{key}")),
            value,
            error: error.map(str::to_string),
            node: None,
        };
        events.push((
            call,
            false,
            event(call, EventType::Invoke, argument.clone(), None),
        ));
        events.push((returned, true, event(returned, kind, result, error)));
        client.idle_since = returned;
        if kind == EventType::Info {
            client.process += processes as u64;
        }
    }

    events.sort_by_key(|&(time, is_completion, _)| (time, is_completion));
    History::new(
        events
            .into_iter()
            .zip(0..)
            .map(|((_, _, event), index)| Event { index, ..event })
            .collect(),
    )
}

/// Applies `f` to the register; false for a cas whose comparison fails.
fn apply(register: &mut Value, f: &str, argument: &Value) -> bool {
    match (f, argument.as_array().map(Vec::as_slice)) {
        ("write", _) => *register = argument.clone(),
        ("cas", Some([from, to])) if register == from => *register = to.clone(),
        ("cas", _) => return false,
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::{Outcome, operations};

    #[test]
    fn histories_are_reproducible_and_have_the_requested_shape() {
        let workload = Workload {
            operations: 2000,
            info_rate: 0.05,
            seed: 7,
            ..Workload::default()
        };
        let history = cas_register_history(&workload);
        assert_eq!(history, cas_register_history(&workload));
        assert_eq!(history.events().len(), 4000);
        let times: Vec<u64> = history.events().iter().map(|e| e.time).collect();
        assert!(times.is_sorted());

        let ops = operations(&history).unwrap();
        let info = ops.iter().filter(|op| op.outcome == Outcome::Info).count();
        assert!((50..=150).contains(&info), "about 5% info, got {info}");
        assert!(ops.iter().any(|op| op.outcome == Outcome::CasMismatch));
        assert!(ops.len() < 2000, "plain fails are removed");
    }
}
