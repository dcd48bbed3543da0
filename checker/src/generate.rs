//! Valid histories of any size, for tests and benchmarks: a real sequential run of an object
//! per key (a compare-and-set register, or a list of unique elements), with each operation's
//! interval stretched at random around the instant it took effect. Such a history is
//! linearizable by construction.

use std::sync::Arc;

use faultline_history::{CAS_MISMATCH, Event, EventType, History, Name, Process};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// How many operations.
    pub operations: usize,
    /// How many objects, named `k0`, `k1`, ... (registers) or `l0`, `l1`, ... (lists); one
    /// operation touches one.
    pub keys: usize,
    /// How many clients run at once.
    pub processes: usize,
    /// The share of operations that end `info` (each then took effect or not, at random; its
    /// client goes on under a new process id).
    pub info_rate: f64,
    /// The share of operations that end in a plain `fail` (and did not take effect).
    pub fail_rate: f64,
    /// Register values written are below this (list elements are all distinct).
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

/// Generates a linearizable compare-and-set register history (`read`, `write`, `cas`).
pub fn cas_register_history(workload: &Workload) -> History {
    sequential_run::<Register>(workload, "k")
}

/// Generates a linearizable list-append history: half the operations append an element never
/// appended before (numbered in order of the run), the other half read the whole list.
pub fn list_append_history(workload: &Workload) -> History {
    sequential_run::<List>(workload, "l")
}

/// An object of the sequential run.
trait Object: Default {
    /// A random operation on the object as it is: its function and argument. `number` is the
    /// operation's place in the run, unique to it.
    fn choose(&self, rng: &mut StdRng, workload: &Workload, number: u64) -> (&'static str, Value);

    /// Applies an operation; the value its `ok` completion records, or `None` if it had no
    /// effect (a compare-and-set whose comparison failed).
    fn apply(&mut self, f: &str, argument: &Value) -> Option<Value>;
}

/// A compare-and-set register: `null` until written.
#[derive(Default)]
struct Register(Value);

impl Object for Register {
    fn choose(&self, rng: &mut StdRng, workload: &Workload, _: u64) -> (&'static str, Value) {
        let values = workload.values.max(1);
        match rng.random_range(0..10) {
            0..4 => ("read", Value::Null),
            4..8 => ("write", json!(rng.random_range(0..values))),
            _ => {
                let from = if rng.random_bool(0.5) {
                    self.0.clone()
                } else {
                    json!(rng.random_range(0..values))
                };
                ("cas", json!([from, rng.random_range(0..values)]))
            }
        }
    }

    fn apply(&mut self, f: &str, argument: &Value) -> Option<Value> {
        match (f, argument.as_array().map(Vec::as_slice)) {
            ("read", _) => return Some(self.0.clone()),
            ("write", _) => self.0 = argument.clone(),
            ("cas", Some([from, to])) if self.0 == *from => self.0 = to.clone(),
            _ => return None,
        }
        Some(argument.clone())
    }
}

/// A list of elements, oldest first.
#[derive(Default)]
struct List(Vec<Value>);

impl Object for List {
    fn choose(&self, rng: &mut StdRng, _: &Workload, number: u64) -> (&'static str, Value) {
        if rng.random_bool(0.5) {
            ("read", Value::Null)
        } else {
            ("append", json!(number))
        }
    }

    fn apply(&mut self, f: &str, argument: &Value) -> Option<Value> {
        if f == "read" {
            return Some(Value::Array(self.0.clone()));
        }
        self.0.push(argument.clone());
        Some(argument.clone())
    }
}

/// A client's state: its current process id and when its last operation returned.
struct Client {
    process: u64,
    idle_since: u64,
}

/// Runs random operations on one `O` per key in sequence, and records each with an interval
/// around the instant it took effect.
fn sequential_run<O: Object>(workload: &Workload, key_prefix: &str) -> History {
    let mut rng = StdRng::seed_from_u64(workload.seed);
    let processes = workload.processes.max(1);
    let keys = workload.keys.max(1);
    let mut objects: Vec<O> = (0..keys).map(|_| O::default()).collect();
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

    for number in 0..workload.operations as u64 {
        // As with real clients, each runs its next operation as soon as its last returned:
        // the next one to go is the one idle longest.
        let client = clients
            .iter_mut()
            .min_by_key(|client| client.idle_since)
            .expect("at least one client");
        now = (now + rng.random_range(1..=10)).max(client.idle_since + 1);
        let call = rng.random_range(
            now.saturating_sub(workload.stretch)
                .max(client.idle_since + 1)..=now,
        );
        let returned = now + rng.random_range(0..=workload.stretch);
        let key = rng.random_range(0..keys);
        let object = &mut objects[key];
        let (f, argument) = object.choose(&mut rng, workload, number);

        let happened = if rng.random_bool(workload.info_rate) {
            Some(EventType::Info)
        } else if rng.random_bool(workload.fail_rate) {
            Some(EventType::Fail)
        } else {
            None
        };
        let (kind, result, error) = match happened {
            Some(EventType::Fail) => (EventType::Fail, argument.clone(), Some("unavailable")),
            // Indeterminate: it took effect or not, at random.
            Some(kind) => {
                if rng.random_bool(0.5) {
                    object.apply(f, &argument);
                }
                (kind, argument.clone(), Some("timeout"))
            }
            None => match object.apply(f, &argument) {
                Some(result) => (EventType::Ok, result, None),
                None => (EventType::Fail, argument.clone(), Some(CAS_MISMATCH)),
            },
        };

        let event = |time, kind, value, error: Option<&str>| Event {
            index: 0,
            time,
            process: Process::Client(client.process),
            kind,
            f: f.into(),
            key: Some(format!("{key_prefix}{key}").into()),
            value: Arc::new(value),
            error: error.map(Name::from),
            node: None,
            final_read: false,
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use faultline_history::{Outcome, operations};

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

    #[test]
    fn list_histories_append_unique_elements_and_read_whole_lists() {
        let workload = Workload {
            operations: 500,
            keys: 2,
            seed: 3,
            ..Workload::default()
        };
        let history = list_append_history(&workload);
        assert_eq!(history, list_append_history(&workload));
        let ops = operations(&history).unwrap();
        let appends: Vec<&Value> = ops
            .iter()
            .filter(|op| op.f == "append")
            .map(|op| &*op.value)
            .collect();
        let distinct: HashSet<String> = appends.iter().map(|v| v.to_string()).collect();
        assert_eq!(distinct.len(), appends.len(), "every element is new");
        assert!((150..=350).contains(&appends.len()), "about half append");

        let longest_read = |key: &str| {
            ops.iter()
                .filter(|op| op.f == "read" && op.key.as_deref() == Some(key))
                .filter(|op| op.outcome == Outcome::Ok)
                .filter_map(|op| op.value.as_array())
                .map(Vec::len)
                .max()
        };
        assert!(longest_read("l0") > Some(50) && longest_read("l1") > Some(50));
    }
}
