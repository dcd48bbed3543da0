//! What the nemesis reports: one event per fault start and stop, for the
//! harness to write into the history as process `nemesis`.

use std::fmt;

/// The `f` of a nemesis event in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventName {
    /// Links were cut; the value is the grudge.
    StartPartition,
    /// Every cut link was healed; the value is the grudge that was healed.
    StopPartition,
    /// Nodes were SIGKILLed; the value lists them.
    Kill,
    /// Killed nodes were started again; the value lists them.
    Restart,
    /// Nodes were SIGSTOPped; the value lists them.
    Pause,
    /// Paused nodes were SIGCONTed; the value lists them.
    Resume,
}

impl EventName {
    /// The history spelling, e.g. `"start-partition"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::StartPartition => "start-partition",
            EventName::StopPartition => "stop-partition",
            EventName::Kill => "kill",
            EventName::Restart => "restart",
            EventName::Pause => "pause",
            EventName::Resume => "resume",
        }
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    /// a list of nodes like `["n2"]` for kill, restart, pause and resume.
    pub value: serde_json::Value,
}
