//! The nemesis events of a history as intervals of fault: a kill until that node's restart,
//! a pause until its resume, a partition until the partitions are healed. The report shades
//! them across every plot.

use std::collections::BTreeSet;

use faultline_checker::{History, Process};
use serde::Serialize;
use serde_json::Value;

/// What kind of fault an interval is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Kill,
    Pause,
    Partition,
}

/// A fault in force from `start` to `end`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// Nanoseconds since the start of the test.
    pub start: u64,
    /// When it was healed; `None` if the history ends before that.
    pub end: Option<u64>,
    /// The node killed or paused; for a partition, every node it cut off from another.
    pub nodes: Vec<String>,
    /// The starting event's value: the nodes, or the partition's grudge.
    pub detail: Value,
}

/// One nemesis event, for markers on the node rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NemesisEvent {
    pub time: u64,
    pub f: String,
    /// The nodes its value names.
    pub nodes: Vec<String>,
}

/// Every nemesis event, in order.
pub fn nemesis_events(history: &History) -> Vec<NemesisEvent> {
    history
        .events()
        .iter()
        .filter(|event| event.process == Process::Nemesis)
        .map(|event| NemesisEvent {
            time: event.time,
            f: event.f.clone(),
            nodes: named_nodes(&event.value),
        })
        .collect()
}

/// Pairs each fault's start with its stop, in order of start. A stop with nothing to stop
/// (a restart of a node that died by itself) makes no interval.
pub fn faults(history: &History) -> Vec<Fault> {
    let mut faults: Vec<Fault> = Vec::new();
    let heal = |faults: &mut Vec<Fault>, kind: FaultKind, node: Option<&str>, time: u64| {
        let open = faults.iter_mut().filter(|fault| {
            fault.kind == kind
                && fault.end.is_none()
                && node.is_none_or(|node| fault.nodes.iter().any(|n| n == node))
        });
        for fault in open {
            fault.end = Some(time);
        }
    };
    for event in history.events() {
        if event.process != Process::Nemesis {
            continue;
        }
        let nodes = named_nodes(&event.value);
        match event.f.as_str() {
            "kill" | "pause" => {
                let kind = if event.f == "kill" {
                    FaultKind::Kill
                } else {
                    FaultKind::Pause
                };
                faults.extend(nodes.into_iter().map(|node| Fault {
                    kind,
                    start: event.time,
                    end: None,
                    nodes: vec![node],
                    detail: event.value.clone(),
                }));
            }
            "restart" | "resume" => {
                let kind = if event.f == "restart" {
                    FaultKind::Kill
                } else {
                    FaultKind::Pause
                };
                for node in &nodes {
                    heal(&mut faults, kind, Some(node), event.time);
                }
            }
            "start-partition" => faults.push(Fault {
                kind: FaultKind::Partition,
                start: event.time,
                end: None,
                nodes,
                detail: event.value.clone(),
            }),
            "stop-partition" => heal(&mut faults, FaultKind::Partition, None, event.time),
            _ => {}
        }
    }
    faults
}

/// The node names in a nemesis event's value: a list of nodes, or a grudge (each node and
/// the nodes it cannot hear from), sorted.
fn named_nodes(value: &Value) -> Vec<String> {
    let names = |list: &Value| -> Vec<String> {
        let items = list.as_array().into_iter().flatten();
        items
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let mut nodes = BTreeSet::new();
    match value {
        Value::Array(_) => nodes.extend(names(value)),
        Value::Object(grudge) => {
            for (node, cut_from) in grudge {
                nodes.insert(node.clone());
                nodes.extend(names(cut_from));
            }
        }
        _ => {}
    }
    nodes.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nemesis(steps: &[(u64, &str, Value)]) -> History {
        let events = steps
            .iter()
            .enumerate()
            .map(|(i, (time, f, value))| {
                serde_json::from_value(json!({"index": i, "time": time, "process": "nemesis",
                                              "type": "info", "f": f, "value": value}))
                .unwrap()
            })
            .collect();
        History::new(events)
    }

    fn spans(faults: &[Fault]) -> Vec<(FaultKind, u64, Option<u64>, Vec<&str>)> {
        faults
            .iter()
            .map(|f| {
                let nodes = f.nodes.iter().map(String::as_str).collect();
                (f.kind, f.start, f.end, nodes)
            })
            .collect()
    }

    #[test]
    fn each_start_is_paired_with_its_own_stop() {
        let h = nemesis(&[
            (10, "kill", json!(["n1", "n2"])),
            (20, "restart", json!(["n2"])),
            (25, "restart", json!(["n1"])),
            (30, "pause", json!(["n3"])),
            (40, "resume", json!(["n3"])),
            (
                50,
                "start-partition",
                json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}),
            ),
            (
                60,
                "stop-partition",
                json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}),
            ),
        ]);
        assert_eq!(
            spans(&faults(&h)),
            [
                (FaultKind::Kill, 10, Some(25), vec!["n1"]),
                (FaultKind::Kill, 10, Some(20), vec!["n2"]),
                (FaultKind::Pause, 30, Some(40), vec!["n3"]),
                (FaultKind::Partition, 50, Some(60), vec!["n1", "n2", "n3"]),
            ]
        );
    }

    #[test]
    fn a_fault_never_healed_stays_open_and_a_stray_stop_makes_no_interval() {
        let h = nemesis(&[
            (5, "restart", json!(["n3"])),
            (10, "pause", json!(["n1"])),
            (20, "kill", json!(["n2"])),
            (30, "restart", json!(["n2"])),
        ]);
        assert_eq!(
            spans(&faults(&h)),
            [
                (FaultKind::Pause, 10, None, vec!["n1"]),
                (FaultKind::Kill, 20, Some(30), vec!["n2"]),
            ]
        );
    }

    #[test]
    fn partitions_pair_in_turn_and_one_never_healed_runs_to_the_end() {
        let grudge = json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]});
        let h = nemesis(&[
            (10, "start-partition", grudge.clone()),
            (20, "stop-partition", grudge.clone()),
            (30, "kill", json!(["n2"])),
            (40, "start-partition", json!({"n3": ["n1", "n2"]})),
            (45, "restart", json!(["n2"])),
        ]);
        assert_eq!(
            spans(&faults(&h)),
            [
                (FaultKind::Partition, 10, Some(20), vec!["n1", "n2", "n3"]),
                (FaultKind::Kill, 30, Some(45), vec!["n2"]),
                (FaultKind::Partition, 40, None, vec!["n1", "n2", "n3"]),
            ],
            "the second partition has no stop: it lasts until the end of the run"
        );
    }

    #[test]
    fn events_name_the_nodes_of_their_values() {
        let h = nemesis(&[
            (1, "kill", json!(["n2"])),
            (2, "start-partition", json!({"n1": ["n3"]})),
            (3, "something-else", json!(7)),
        ]);
        let named: Vec<Vec<String>> = nemesis_events(&h).into_iter().map(|e| e.nodes).collect();
        assert_eq!(named, [vec!["n2"], vec!["n1", "n3"], vec![]]);
    }
}
