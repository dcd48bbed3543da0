//! Each node's clock over a run, from the nemesis's clock events (`bump-clock`,
//! `skew-clock`, `strobe-clock`, `reset-clock`): after each, the node's clock reads
//! `offset_ms` ahead of true time and runs at `rate`, until the next. The report draws it,
//! with the offsets the nodes' own clocks were seen to read (`observed_ms`).

use std::collections::BTreeMap;

use faultline_history::{History, Process};
use faultline_nemesis::{EventName, FaultClass};
use serde::Serialize;

/// One change of a node's clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClockPoint {
    /// Nanoseconds since the start of the test.
    pub time: u64,
    /// How far ahead of true time the clock read right after (behind if negative), in ms.
    pub offset_ms: f64,
    /// How fast it ran from then on (1 is true time).
    pub rate: f64,
    /// What the node's own clock was seen to read then, if it answered.
    pub observed_ms: Option<f64>,
}

#[cfg(test)]
impl ClockPoint {
    /// The offset the clock reads at `time` (at or after this point, before the next).
    pub fn offset_at(&self, time: u64) -> f64 {
        let elapsed_ms = time.saturating_sub(self.time) as f64 / 1e6;
        self.offset_ms + elapsed_ms * (self.rate - 1.0)
    }
}

/// Every node's clock changes, in order, by node; nodes whose clock never moved are absent.
pub fn clock_traces(history: &History) -> BTreeMap<String, Vec<ClockPoint>> {
    let mut traces: BTreeMap<String, Vec<ClockPoint>> = BTreeMap::new();
    for event in history.events() {
        if event.process != Process::Nemesis {
            continue;
        }
        let Ok(name) = event.f.parse::<EventName>() else {
            continue;
        };
        let is_clock =
            name.starts() == Some(FaultClass::Clock) || name.stops() == Some(FaultClass::Clock);
        let value = &event.value;
        let (true, Some(node), Some(offset_ms)) = (
            is_clock,
            value["node"].as_str(),
            value["offset_ms"].as_f64(),
        ) else {
            continue;
        };
        traces
            .entry(node.to_string())
            .or_default()
            .push(ClockPoint {
                time: event.time,
                offset_ms,
                rate: value["rate"].as_f64().unwrap_or(1.0),
                observed_ms: value["observed_ms"].as_f64(),
            });
    }
    traces
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::faults::tests::nemesis;

    #[test]
    fn each_node_has_its_clock_changes_in_order_and_other_events_are_not_clocks() {
        let h = nemesis(&[
            (1, "kill", json!(["n1"])),
            (
                10,
                "skew-clock",
                json!({"node": "n1", "offset_ms": 0.0, "rate": 1.1, "observed_ms": 0.2}),
            ),
            (
                20,
                "bump-clock",
                json!({"node": "n2", "offset_ms": -300.0, "rate": 1.0}),
            ),
            (
                1_000_000_010,
                "reset-clock",
                json!({"node": "n1", "offset_ms": 0.0, "rate": 1.0}),
            ),
        ]);
        let traces = clock_traces(&h);
        assert_eq!(traces.keys().collect::<Vec<_>>(), ["n1", "n2"]);
        let n1 = &traces["n1"];
        assert_eq!(n1.len(), 2);
        assert_eq!(n1[0].observed_ms, Some(0.2));
        // A second at 10 % fast: 100 ms ahead just before the reset.
        assert!((n1[0].offset_at(1_000_000_010) - 100.0).abs() < 1e-9);
        assert_eq!(traces["n2"][0].offset_at(500), -300.0);
    }
}
