//! How long each fault kept writes from succeeding, measured from the history: for every
//! fault, the time from its start to the first acknowledged write invoked after it, and
//! from its end to the first acknowledged write invoked after that. A fault the cluster
//! should ride through (a minority down, a leader killed) shows in the first figure; one
//! that stops writes altogether (a majority down) in the second.

use faultline_history::{EventType, History, Outcome, operations};
use serde::{Deserialize, Serialize};

use crate::faults::{Fault, faults};

/// The history functions that change state.
const WRITES: [&str; 4] = ["write", "cas", "append", "add"];

/// One fault and how the writes fared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRecovery {
    /// The event that started it, e.g. `kill` or `start-partition`.
    pub fault: String,
    /// The nodes it hit (none for a degradation of every link).
    pub nodes: Vec<String>,
    /// Seconds since the test started.
    pub start: f64,
    /// When it was healed; `None` if never.
    pub end: Option<f64>,
    /// Seconds from the start to the first acknowledged write invoked at or after it.
    pub after_start: Option<f64>,
    /// Seconds from the end to the first acknowledged write invoked at or after it.
    pub after_end: Option<f64>,
    /// How long writes were unavailable because of this fault: `after_start` if writes came
    /// back while the fault was in force, else `after_end`. `None` if they never came back.
    pub recovery: Option<f64>,
    /// False when the clients stopped before the fault ended (it was healed at the end of
    /// the run): nothing can be said of it, and it counts for nothing.
    #[serde(default = "measured_by_default")]
    pub measured: bool,
}

fn measured_by_default() -> bool {
    true
}

/// Every fault's recovery, and the figures over all of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    pub faults: Vec<FaultRecovery>,
    /// Median, 99th percentile and maximum of the recoveries measured, in seconds.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    /// Faults after which no write succeeded while clients still ran.
    pub unrecovered: usize,
}

impl Recovery {
    /// Measures every fault of `history`, from the writes the clients invoked until
    /// `clients_until` (nanoseconds since the start; the harness's own probe after healing,
    /// and whatever comes after, take no part).
    pub fn of(history: &History, clients_until: u64) -> Recovery {
        let writes = AckedWrites::of(history, clients_until);
        let last_invocation = last_write_invocation(history, clients_until);
        let faults: Vec<FaultRecovery> = merged(faults(history))
            .into_iter()
            .map(|fault| writes.recovery(fault, last_invocation))
            .collect();
        let mut measured: Vec<f64> = faults.iter().filter_map(|f| f.recovery).collect();
        measured.sort_by(f64::total_cmp);
        let percentile = |p: f64| {
            let rank = ((p * measured.len() as f64).ceil() as usize).max(1);
            measured.get(rank - 1).copied()
        };
        Recovery {
            p50: percentile(0.5),
            p99: percentile(0.99),
            max: measured.last().copied(),
            unrecovered: faults
                .iter()
                .filter(|f| f.measured && f.recovery.is_none())
                .count(),
            faults,
        }
    }

    /// The measured faults whose recovery took longer than `bound` seconds, or never came.
    pub fn slower_than(&self, bound: f64) -> Vec<&FaultRecovery> {
        self.faults
            .iter()
            .filter(|fault| fault.measured)
            .filter(|fault| fault.recovery.is_none_or(|seconds| seconds > bound))
            .collect()
    }
}

/// One interval per fault: the report splits a kill of two nodes into two intervals (each
/// ends at its own restart), and a crash-restart storm into one per crash; a recovery is
/// measured for the fault as a whole, from its first start until the last of them ends.
fn merged(intervals: Vec<Fault>) -> Vec<Fault> {
    // A storm's crashes share their `storm` number; anything else, its start.
    let fault_of = |fault: &Fault| {
        (
            fault.name.clone(),
            fault.detail["storm"].as_u64(),
            fault.start,
        )
    };
    let same = |a: &Fault, b: &Fault| {
        let (a, b) = (fault_of(a), fault_of(b));
        a.0 == b.0
            && if a.1.is_some() {
                a.1 == b.1
            } else {
                a.2 == b.2
            }
    };
    let mut faults: Vec<Fault> = Vec::new();
    for interval in intervals {
        match faults.iter_mut().find(|fault| same(fault, &interval)) {
            Some(fault) => {
                for node in interval.nodes {
                    if !fault.nodes.contains(&node) {
                        fault.nodes.push(node);
                    }
                }
                fault.start = fault.start.min(interval.start);
                fault.end = fault.end.zip(interval.end).map(|(a, b)| a.max(b));
            }
            None => faults.push(interval),
        }
    }
    faults
}

/// The acknowledged writes of a history, by invocation time, with the earliest completion
/// among each write and all invoked after it.
struct AckedWrites {
    calls: Vec<u64>,
    earliest_return_from: Vec<u64>,
}

impl AckedWrites {
    fn of(history: &History, until: u64) -> AckedWrites {
        // The harness's own histories always pair; a history that does not has no writes
        // to measure.
        let mut writes: Vec<(u64, u64)> = operations(history)
            .unwrap_or_default()
            .into_iter()
            .filter(|op| op.outcome == Outcome::Ok && WRITES.contains(&op.f.as_str()))
            .filter(|op| op.call <= until)
            .filter_map(|op| Some((op.call, op.return_time?)))
            .collect();
        writes.sort_unstable();
        let mut earliest_return_from = vec![u64::MAX; writes.len()];
        let mut earliest = u64::MAX;
        for (at, &(_, returned)) in writes.iter().enumerate().rev() {
            earliest = earliest.min(returned);
            earliest_return_from[at] = earliest;
        }
        AckedWrites {
            calls: writes.iter().map(|&(call, _)| call).collect(),
            earliest_return_from,
        }
    }

    /// Nanoseconds from `time` to the first acknowledgement of a write invoked at or after it.
    fn first_after(&self, time: u64) -> Option<u64> {
        let from = self.calls.partition_point(|&call| call < time);
        let returned = *self.earliest_return_from.get(from)?;
        Some(returned - time)
    }

    fn recovery(&self, fault: Fault, last_invocation: Option<u64>) -> FaultRecovery {
        let seconds = |nanos: u64| nanos as f64 / 1e9;
        let after_start = self.first_after(fault.start);
        let after_end = fault.end.and_then(|end| self.first_after(end));
        let rode_through = match (after_start, fault.end) {
            (Some(wait), Some(end)) => fault.start + wait <= end,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let recovery = if rode_through { after_start } else { after_end };
        // A write was tried after the fault's end (or, never healed, after its start).
        let tried_after = fault.end.unwrap_or(fault.start);
        let measured = recovery.is_some() || last_invocation.is_some_and(|last| last > tried_after);
        FaultRecovery {
            fault: fault.name,
            nodes: fault.nodes,
            start: seconds(fault.start),
            end: fault.end.map(seconds),
            after_start: after_start.map(seconds),
            after_end: after_end.map(seconds),
            recovery: recovery.map(seconds),
            measured,
        }
    }
}

/// When the clients' last write was invoked (until `until`), whatever became of it.
fn last_write_invocation(history: &History, until: u64) -> Option<u64> {
    history
        .events()
        .iter()
        .filter(|event| event.kind == EventType::Invoke && WRITES.contains(&event.f.as_str()))
        .map(|event| event.time)
        .filter(|&time| time <= until)
        .max()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const MS: u64 = 1_000_000;

    /// `(time in ms, process, type, f, value)`.
    type Step = (u64, Value, &'static str, &'static str, Value);

    /// A history from its steps.
    fn history(steps: &[Step]) -> History {
        let events = steps
            .iter()
            .enumerate()
            .map(|(i, (time, process, kind, f, value))| {
                let mut event = json!({"index": i, "time": time * MS, "process": process,
                                       "type": kind, "f": f, "value": value});
                if process != "nemesis" {
                    event["key"] = json!("r1");
                }
                serde_json::from_value(event).unwrap()
            })
            .collect();
        History::new(events)
    }

    fn write(
        process: u64,
        invoked: u64,
        acked: u64,
    ) -> [(u64, Value, &'static str, &'static str, Value); 2] {
        [
            (invoked, json!(process), "invoke", "write", json!(1)),
            (acked, json!(process), "ok", "write", json!(1)),
        ]
    }

    fn steps(parts: Vec<Vec<Step>>) -> History {
        let mut all: Vec<_> = parts.into_iter().flatten().collect();
        all.sort_by_key(|step| step.0);
        history(&all)
    }

    #[test]
    fn a_fault_ridden_through_counts_from_its_start_and_one_that_stops_writes_from_its_end() {
        let h = steps(vec![
            vec![(100, json!("nemesis"), "info", "kill", json!(["n1"]))],
            write(1, 90, 150).to_vec(), // invoked before the kill: does not count
            write(2, 120, 400).to_vec(),
            write(3, 130, 350).to_vec(),
            vec![(1000, json!("nemesis"), "info", "restart", json!(["n1"]))],
            vec![(
                2000,
                json!("nemesis"),
                "info",
                "kill-all",
                json!(["n1", "n2", "n3"]),
            )],
            vec![(
                3000,
                json!("nemesis"),
                "info",
                "restart",
                json!(["n1", "n2", "n3"]),
            )],
            write(4, 2500, 3600).to_vec(), // acknowledged after the restart, invoked before it
            write(5, 3100, 3300).to_vec(),
        ]);
        let recovery = Recovery::of(&h, u64::MAX);
        let figures: Vec<_> = recovery
            .faults
            .iter()
            .map(|f| (f.fault.as_str(), f.nodes.len(), f.recovery))
            .collect();
        assert_eq!(
            figures,
            [("kill", 1, Some(0.25)), ("kill-all", 3, Some(0.3))],
            "{recovery:?}"
        );
        assert_eq!(recovery.faults[1].after_start, Some(1.3));
        assert_eq!((recovery.p50, recovery.max), (Some(0.25), Some(0.3)));
        assert_eq!(recovery.slower_than(0.28).len(), 1);
    }

    #[test]
    fn a_crash_restart_storm_is_one_fault_and_the_probe_after_the_run_counts_for_nothing() {
        let crash = |time: u64, node: &str, storm: u64| {
            vec![
                (
                    time,
                    json!("nemesis"),
                    "info",
                    "crash-restart",
                    json!({"nodes": [node], "storm": storm}),
                ),
                (
                    time + 20,
                    json!("nemesis"),
                    "info",
                    "restart",
                    json!([node]),
                ),
            ]
        };
        let h = steps(vec![
            write(1, 10, 20).to_vec(),
            crash(100, "n1", 0),
            crash(300, "n2", 0),
            crash(600, "n1", 0),
            write(2, 700, 900).to_vec(),
            crash(2000, "n3", 1),
            write(3, 5000, 5100).to_vec(), // the probe, after the clients stopped at 3000
        ]);
        let recovery = Recovery::of(&h, 3000 * MS);
        let figures: Vec<_> = recovery
            .faults
            .iter()
            .map(|f| (f.nodes.clone(), f.start, f.end, f.recovery, f.measured))
            .collect();
        assert_eq!(
            figures,
            [
                (
                    vec!["n1".to_string(), "n2".to_string()],
                    0.1,
                    Some(0.62),
                    Some(0.28),
                    true
                ),
                (vec!["n3".to_string()], 2.0, Some(2.02), None, false),
            ]
        );
    }

    #[test]
    fn a_fault_healed_after_the_clients_stopped_counts_for_nothing() {
        let h = steps(vec![
            write(1, 10, 20).to_vec(),
            vec![(100, json!("nemesis"), "info", "kill", json!(["n2"]))],
            vec![(900, json!("nemesis"), "info", "restart", json!(["n2"]))],
            write(2, 500, 520).to_vec(),
        ]);
        let recovery = Recovery::of(&h, u64::MAX);
        assert!(
            recovery.faults[0].measured,
            "writes came back during the kill"
        );
        let late = steps(vec![
            write(1, 10, 20).to_vec(),
            vec![(
                100,
                json!("nemesis"),
                "info",
                "kill-all",
                json!(["n1", "n2", "n3"]),
            )],
            vec![(
                900,
                json!("nemesis"),
                "info",
                "restart",
                json!(["n1", "n2", "n3"]),
            )],
        ]);
        let recovery = Recovery::of(&late, u64::MAX);
        assert!(!recovery.faults[0].measured);
        assert_eq!(recovery.unrecovered, 0);
        assert!(recovery.slower_than(0.1).is_empty());
    }

    #[test]
    fn a_fault_after_which_no_write_succeeds_is_unrecovered() {
        let h = steps(vec![
            write(1, 10, 20).to_vec(),
            vec![(100, json!("nemesis"), "info", "pause", json!(["n2"]))],
            vec![(200, json!("nemesis"), "info", "resume", json!(["n2"]))],
            vec![
                (250, json!(2), "invoke", "write", json!(1)),
                (1250, json!(2), "info", "write", json!(1)),
            ],
        ]);
        let recovery = Recovery::of(&h, u64::MAX);
        assert_eq!(recovery.unrecovered, 1);
        assert_eq!(recovery.faults[0].recovery, None);
        assert_eq!(recovery.slower_than(100.0).len(), 1);
        assert_eq!(recovery.p50, None);
    }
}
