//! What the nemesis reports: one event per fault start and stop, for the
//! harness to write into the history as process `nemesis`, and the one rule
//! that pairs each start with the stop that ends it.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::cluster::NodeName;

/// The `f` of a nemesis event in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventName {
    /// Links were cut; the value is the grudge.
    StartPartition,
    /// Every cut link was healed; the value is the grudge that was healed.
    StopPartition,
    /// Links were slowed down; the value says which and how.
    StartSlow,
    /// The slowed links are back to normal; the value is the start's.
    StopSlow,
    /// Links started dropping connections; the value says which and how often.
    StartLossy,
    /// The lossy links are back to normal; the value is the start's.
    StopLossy,
    /// A minority or the leader was SIGKILLed; the value lists the nodes.
    Kill,
    /// A majority was SIGKILLed at once; the value lists the nodes.
    KillMajority,
    /// Every node was SIGKILLed at once; the value lists the nodes.
    KillAll,
    /// Nodes were SIGKILLed to be restarted at once: `{"nodes": [...], "storm": n}`, every
    /// crash of one storm with the same `n`.
    CrashRestart,
    /// Nodes were SIGKILLed and lost what they had not fsynced; the value is
    /// `{"nodes": [...], "torn": bool}`.
    PowerLoss,
    /// What a power loss took from each node's disk, once it is known:
    /// `{"n1": {"files": 2, "bytes": 4096, "entries": 1}, ...}`. Starts and stops nothing.
    LostUnsynced,
    /// Killed nodes were started again; the value lists them.
    Restart,
    /// Nodes were SIGSTOPped; the value lists them.
    Pause,
    /// Paused nodes were SIGCONTed; the value lists them.
    Resume,
    /// A node's clock jumped: `{"node": "n2", "offset_ms": -250.0, "rate": 1.0}`, its offset
    /// from true time and its rate right after, and `"observed_ms"`, the offset its own
    /// clock then read, when it answered. Recorded once the clock changed.
    BumpClock,
    /// A node's clock started to run fast or slow, without a jump; the value as
    /// `bump-clock`'s.
    SkewClock,
    /// A node's clock flipped to the other offset of a strobe; the value as `bump-clock`'s.
    /// Every flip is an event.
    StrobeClock,
    /// A node's clock is back to true time (offset 0, rate 1), by a jump; the value as
    /// `bump-clock`'s.
    ResetClock,
    /// The nemesis asks the leader for a membership change: `{"change": "add-learner" |
    /// "promote" | "remove" | "replace", "node": "n4"}`, with `"replaces": "n1"` for a
    /// replacement. Recorded before the request.
    ChangeMembers,
    /// The answer to the change asked for last: the change's value with `"answer"`: `"ok"`
    /// (with the members now: `"voters"`, `"learners"`, and `"outgoing"` during a change of
    /// voters), `"refused"` (it did not happen) or `"unknown"` (it may still), with
    /// `"reason"`.
    MembersChanged,
    /// Nodes that left the cluster were stopped for good (until enlisted); the value lists
    /// them. Not a fault: nothing restarts them.
    Retire,
    /// Retired nodes were started again, on their data, to join again; the value lists them.
    Enlist,
}

/// What a started fault does to the nodes it names, so that a stop can be paired with the
/// start it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultClass {
    /// The nodes' processes are gone (kill, power loss) until `restart` names them.
    Down,
    /// The nodes' processes are stopped until `resume` names them.
    Paused,
    /// Links are cut until `stop-partition`.
    Partitioned,
    /// Links are slow until `stop-slow`.
    Slow,
    /// Links drop connections until `stop-lossy`.
    Lossy,
    /// The node's clock is off true time until `reset-clock` names it.
    Clock,
}

impl EventName {
    /// Every event name.
    pub const ALL: [EventName; 23] = [
        EventName::StartPartition,
        EventName::StopPartition,
        EventName::StartSlow,
        EventName::StopSlow,
        EventName::StartLossy,
        EventName::StopLossy,
        EventName::Kill,
        EventName::KillMajority,
        EventName::KillAll,
        EventName::CrashRestart,
        EventName::PowerLoss,
        EventName::LostUnsynced,
        EventName::Restart,
        EventName::Pause,
        EventName::Resume,
        EventName::BumpClock,
        EventName::SkewClock,
        EventName::StrobeClock,
        EventName::ResetClock,
        EventName::ChangeMembers,
        EventName::MembersChanged,
        EventName::Retire,
        EventName::Enlist,
    ];

    /// The history spelling, e.g. `"start-partition"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::StartPartition => "start-partition",
            EventName::StopPartition => "stop-partition",
            EventName::StartSlow => "start-slow",
            EventName::StopSlow => "stop-slow",
            EventName::StartLossy => "start-lossy",
            EventName::StopLossy => "stop-lossy",
            EventName::Kill => "kill",
            EventName::KillMajority => "kill-majority",
            EventName::KillAll => "kill-all",
            EventName::CrashRestart => "crash-restart",
            EventName::PowerLoss => "power-loss",
            EventName::LostUnsynced => "lost-unsynced",
            EventName::Restart => "restart",
            EventName::Pause => "pause",
            EventName::Resume => "resume",
            EventName::BumpClock => "bump-clock",
            EventName::SkewClock => "skew-clock",
            EventName::StrobeClock => "strobe-clock",
            EventName::ResetClock => "reset-clock",
            EventName::ChangeMembers => "change-members",
            EventName::MembersChanged => "members-changed",
            EventName::Retire => "retire",
            EventName::Enlist => "enlist",
        }
    }

    /// The fault this event starts, if it starts one.
    pub fn starts(self) -> Option<FaultClass> {
        match self {
            EventName::Kill
            | EventName::KillMajority
            | EventName::KillAll
            | EventName::CrashRestart
            | EventName::PowerLoss => Some(FaultClass::Down),
            EventName::Pause => Some(FaultClass::Paused),
            EventName::StartPartition => Some(FaultClass::Partitioned),
            EventName::StartSlow => Some(FaultClass::Slow),
            EventName::StartLossy => Some(FaultClass::Lossy),
            EventName::BumpClock | EventName::SkewClock | EventName::StrobeClock => {
                Some(FaultClass::Clock)
            }
            _ => None,
        }
    }

    /// The fault this event ends, if it ends one: `Down`, `Paused` and `Clock` for the nodes
    /// it names, the network faults for every link.
    pub fn stops(self) -> Option<FaultClass> {
        match self {
            EventName::Restart => Some(FaultClass::Down),
            EventName::Resume => Some(FaultClass::Paused),
            EventName::StopPartition => Some(FaultClass::Partitioned),
            EventName::StopSlow => Some(FaultClass::Slow),
            EventName::StopLossy => Some(FaultClass::Lossy),
            EventName::ResetClock => Some(FaultClass::Clock),
            _ => None,
        }
    }
}

impl EventName {
    /// The nodes an event's value names: a list of nodes (kill, restart, pause, resume,
    /// retire, enlist), an object with `"nodes"` (power loss, crash-restart) or `"node"` (the
    /// clock's; the membership changes', with `"replaces"`), a grudge (every node it cuts off
    /// from another, sorted), or none (a degradation of every link, what a power loss lost).
    pub fn nodes(self, value: &Value) -> Vec<NodeName> {
        let names = |list: &Value| -> Vec<NodeName> {
            let items = list.as_array().into_iter().flatten();
            items
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        };
        match self {
            EventName::StartPartition | EventName::StopPartition => {
                let mut nodes = BTreeSet::new();
                for (node, unheard) in value.as_object().into_iter().flatten() {
                    nodes.insert(node.clone());
                    nodes.extend(names(unheard));
                }
                nodes.into_iter().collect()
            }
            EventName::StartSlow
            | EventName::StopSlow
            | EventName::StartLossy
            | EventName::StopLossy
            | EventName::LostUnsynced => Vec::new(),
            EventName::BumpClock
            | EventName::SkewClock
            | EventName::StrobeClock
            | EventName::ResetClock => value["node"]
                .as_str()
                .map(|node| vec![node.to_string()])
                .unwrap_or_default(),
            EventName::ChangeMembers | EventName::MembersChanged => ["node", "replaces"]
                .iter()
                .filter_map(|field| value[field].as_str())
                .map(str::to_string)
                .collect(),
            _ if value.is_array() => names(value),
            _ => names(&value["nodes"]),
        }
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventName {
    type Err = String;

    /// Parses the history spelling; an unknown `f` (a history from another tool, or a
    /// newer Faultline) is an error for the caller to skip.
    fn from_str(name: &str) -> Result<Self, String> {
        EventName::ALL
            .into_iter()
            .find(|event| event.as_str() == name)
            .ok_or_else(|| format!("unknown nemesis event {name:?}"))
    }
}

/// One fault start or stop.
///
/// The nemesis hands a start event to the harness *before* it applies the
/// fault and a stop event *after* the fault is healed, so timestamps taken
/// when the event arrives bracket the fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub f: EventName,
    /// What it happened to: a grudge like `{"n1":["n2","n3"]}` for partitions,
    /// a list of nodes like `["n2"]` for kill, restart, pause and resume; see
    /// [`EventName`] for the others, and [`EventName::nodes`] to read the nodes back.
    pub value: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_every_fault_started_can_be_stopped() {
        for event in EventName::ALL {
            assert_eq!(event.as_str().parse::<EventName>(), Ok(event));
            if let Some(class) = event.starts() {
                assert!(
                    EventName::ALL
                        .iter()
                        .any(|stop| stop.stops() == Some(class)),
                    "nothing stops {event}"
                );
            }
        }
        assert!("explode".parse::<EventName>().is_err());
    }

    #[test]
    fn every_shape_of_value_names_its_nodes() {
        use serde_json::json;
        let cases = [
            (EventName::Kill, json!(["n2", "n1"]), vec!["n2", "n1"]),
            (
                EventName::PowerLoss,
                json!({"nodes": ["n1", "n3"], "torn": true}),
                vec!["n1", "n3"],
            ),
            (
                EventName::CrashRestart,
                json!({"nodes": ["n3"], "storm": 2}),
                vec!["n3"],
            ),
            (
                EventName::StartPartition,
                json!({"n3": ["n1"], "n2": ["n1"]}),
                vec!["n1", "n2", "n3"],
            ),
            (
                EventName::StartSlow,
                json!({"latency_ms": 20, "jitter_ms": 20, "drop": 0.0}),
                vec![],
            ),
            (EventName::LostUnsynced, json!({"n1": {"bytes": 3}}), vec![]),
            (
                EventName::SkewClock,
                json!({"node": "n2", "offset_ms": 0.0, "rate": 1.1}),
                vec!["n2"],
            ),
            (
                EventName::ChangeMembers,
                json!({"change": "replace", "node": "n4", "replaces": "n1"}),
                vec!["n4", "n1"],
            ),
            (EventName::Retire, json!(["n1"]), vec!["n1"]),
        ];
        for (event, value, nodes) in cases {
            assert_eq!(event.nodes(&value), nodes, "{event}");
        }
    }
}
