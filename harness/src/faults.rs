//! The nemesis events of a history as intervals of fault: a node down (killed, crashed,
//! powered off) until that node's restart, a pause until its resume, a partition or a
//! degraded network until it is healed. The pairing is the nemesis crate's own
//! ([`EventName::starts`] and [`EventName::stops`]). The report shades the intervals
//! across every plot.

use faultline_history::{History, Process};
use faultline_nemesis::{EventName, FaultClass};
use serde::Serialize;
use serde_json::Value;

/// What kind of fault an interval is, as the report colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// The node's process is gone: killed, crashed or powered off.
    Kill,
    Pause,
    Partition,
    Slow,
    Lossy,
    /// The node's clock is off true time (bumped, skewed or strobed).
    Clock,
}

impl From<FaultClass> for FaultKind {
    fn from(class: FaultClass) -> FaultKind {
        match class {
            FaultClass::Down => FaultKind::Kill,
            FaultClass::Paused => FaultKind::Pause,
            FaultClass::Partitioned => FaultKind::Partition,
            FaultClass::Slow => FaultKind::Slow,
            FaultClass::Lossy => FaultKind::Lossy,
            FaultClass::Clock => FaultKind::Clock,
        }
    }
}

/// A fault in force from `start` to `end`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fault {
    pub kind: FaultKind,
    /// The event that started it, e.g. `power-loss` or `start-partition`.
    pub name: String,
    /// Nanoseconds since the start of the test.
    pub start: u64,
    /// When it was healed; `None` if the history ends before that.
    pub end: Option<u64>,
    /// The node killed or paused; for a network fault, every node it cut off from another.
    pub nodes: Vec<String>,
    /// The starting event's value: the nodes, the partition's grudge, or the degradation.
    pub detail: Value,
}

/// One nemesis event, for markers on the node rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NemesisEvent {
    pub time: u64,
    pub f: String,
    /// The nodes its value names.
    pub nodes: Vec<String>,
    /// `"down"` or `"paused"` when it takes nodes down or pauses them, else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts: Option<&'static str>,
    /// `"down"` or `"paused"` when it brings nodes back, else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stops: Option<&'static str>,
}

/// The class names the page's node rows draw markers for.
fn node_class(class: Option<FaultClass>) -> Option<&'static str> {
    match class? {
        FaultClass::Down => Some("down"),
        FaultClass::Paused => Some("paused"),
        _ => None,
    }
}

/// Every nemesis event, in order.
pub fn nemesis_events(history: &History) -> Vec<NemesisEvent> {
    history
        .events()
        .iter()
        .filter(|event| event.process == Process::Nemesis)
        .map(|event| {
            let name = event.f.parse::<EventName>().ok();
            NemesisEvent {
                time: event.time,
                f: event.f.to_string(),
                nodes: name
                    .map(|name| name.nodes(&event.value))
                    .unwrap_or_default(),
                starts: node_class(name.and_then(EventName::starts)),
                stops: node_class(name.and_then(EventName::stops)),
            }
        })
        .collect()
}

/// Pairs each fault's start with its stop, in order of start. A stop with nothing to stop
/// (a restart of a node that died by itself) makes no interval; events this version does
/// not know are skipped. A node's clock is off from its first change to its reset, however
/// often it changed meanwhile (a strobe's every flip is an event): one interval.
pub fn faults(history: &History) -> Vec<Fault> {
    let mut faults: Vec<Fault> = Vec::new();
    for event in history.events() {
        if event.process != Process::Nemesis {
            continue;
        }
        let Ok(name) = event.f.parse::<EventName>() else {
            continue;
        };
        let nodes = name.nodes(&event.value);
        if let Some(class) = name.starts() {
            let kind = FaultKind::from(class);
            let start = |nodes: Vec<String>| Fault {
                kind,
                name: event.f.to_string(),
                start: event.time,
                end: None,
                nodes,
                detail: serde_json::Value::clone(&event.value),
            };
            match class {
                FaultClass::Clock => {
                    let open = |node: &String| {
                        faults.iter().any(|fault| {
                            fault.kind == FaultKind::Clock
                                && fault.end.is_none()
                                && fault.nodes.contains(node)
                        })
                    };
                    let new: Vec<String> = nodes.into_iter().filter(|n| !open(n)).collect();
                    faults.extend(new.into_iter().map(|node| start(vec![node])));
                }
                // Each node comes back on its own.
                FaultClass::Down | FaultClass::Paused => {
                    faults.extend(nodes.into_iter().map(|node| start(vec![node])));
                }
                _ => faults.push(start(nodes)),
            }
        }
        if let Some(class) = name.stops() {
            let stopped = name.nodes(&event.value);
            let kind = FaultKind::from(class);
            let per_node = matches!(
                class,
                FaultClass::Down | FaultClass::Paused | FaultClass::Clock
            );
            let open = faults.iter_mut().filter(|fault| {
                fault.kind == kind
                    && fault.end.is_none()
                    && (!per_node || fault.nodes.iter().any(|n| stopped.contains(n)))
            });
            for fault in open {
                fault.end = Some(event.time);
            }
        }
    }
    faults
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A history of these nemesis events: (time, f, value).
    pub(crate) fn nemesis(steps: &[(u64, &str, Value)]) -> History {
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
    fn every_way_down_is_ended_by_a_restart_and_network_faults_by_their_own_stop() {
        let h = nemesis(&[
            (
                10,
                "power-loss",
                json!({"nodes": ["n1", "n2"], "torn": true}),
            ),
            (11, "lost-unsynced", json!({"n1": {"bytes": 10}})),
            (
                12,
                "start-slow",
                json!({"latency_ms": 100, "jitter_ms": 100, "drop": 0.0}),
            ),
            (20, "restart", json!(["n1", "n2"])),
            (30, "crash-restart", json!(["n3"])),
            (31, "restart", json!(["n3"])),
            (
                40,
                "stop-slow",
                json!({"latency_ms": 100, "jitter_ms": 100, "drop": 0.0}),
            ),
            (50, "kill-all", json!(["n1", "n2", "n3"])),
        ]);
        let faults = faults(&h);
        let kinds: Vec<_> = faults
            .iter()
            .map(|f| (f.kind, f.name.as_str(), f.start, f.end, f.nodes.len()))
            .collect();
        assert_eq!(
            kinds,
            [
                (FaultKind::Kill, "power-loss", 10, Some(20), 1),
                (FaultKind::Kill, "power-loss", 10, Some(20), 1),
                (FaultKind::Slow, "start-slow", 12, Some(40), 0),
                (FaultKind::Kill, "crash-restart", 30, Some(31), 1),
                (FaultKind::Kill, "kill-all", 50, None, 1),
                (FaultKind::Kill, "kill-all", 50, None, 1),
                (FaultKind::Kill, "kill-all", 50, None, 1),
            ]
        );
        let markers: Vec<_> = nemesis_events(&h)
            .iter()
            .map(|e| (e.starts, e.stops))
            .collect();
        assert_eq!(markers[0], (Some("down"), None));
        assert_eq!(markers[3], (None, Some("down")));
        assert_eq!(markers[2], (None, None), "slow marks no node");
    }

    #[test]
    fn a_clock_is_off_from_its_first_change_to_its_reset_whatever_came_between() {
        let clock =
            |node: &str, offset: f64| json!({"node": node, "offset_ms": offset, "rate": 1.0});
        let h = nemesis(&[
            (10, "strobe-clock", clock("n1", 200.0)),
            (20, "strobe-clock", clock("n1", 0.0)),
            (25, "bump-clock", clock("n2", -300.0)),
            (30, "strobe-clock", clock("n1", 200.0)),
            (40, "reset-clock", clock("n1", 0.0)),
            (50, "skew-clock", clock("n1", 0.0)),
        ]);
        assert_eq!(
            spans(&faults(&h)),
            [
                (FaultKind::Clock, 10, Some(40), vec!["n1"]),
                (FaultKind::Clock, 25, None, vec!["n2"]),
                (FaultKind::Clock, 50, None, vec!["n1"]),
            ]
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
