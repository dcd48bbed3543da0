//! What the page and the plots draw, derived once from a history, its results and, for a
//! run, its nodes' status: the operations in order of invocation, their lanes, the faults,
//! each node's states and the latency points.

use std::collections::{BTreeMap, HashSet};

use faultline_history::History;

use super::latency_points::{LATENCY_POINTS, latency_points};
use super::node_states::{ConfigurationSpan, NodeSpan, configurations, spans};
use super::operations::{Lane, TimelineOp, lanes, pair};
use crate::clocks::{ClockPoint, clock_traces};
use crate::faults::{Fault, NemesisEvent, faults, nemesis_events};
use crate::results::RunResults;
use crate::status_sample::StatusSample;

/// A history, ready to draw.
pub struct Analysis<'h> {
    /// Client operations sorted by invocation time.
    pub ops: Vec<TimelineOp<'h>>,
    pub lanes: Vec<Lane>,
    pub faults: Vec<Fault>,
    pub nemesis: Vec<NemesisEvent>,
    /// Each node's spans, by node name.
    pub node_spans: BTreeMap<String, Vec<NodeSpan>>,
    /// The cluster's configuration over time; empty if the status tells no membership.
    pub configurations: Vec<ConfigurationSpan>,
    /// Each node's clock changes, by node name (nodes whose clock never moved are absent).
    pub clocks: BTreeMap<String, Vec<ClockPoint>>,
    /// Indices into `ops` of the points the latency plots draw.
    pub latency_points: Vec<usize>,
    /// Nanoseconds from the start to the last thing recorded (event or status sample).
    pub end: u64,
}

impl<'h> Analysis<'h> {
    /// `history` with its `results`; `nodes` and their `status` samples if a run has them
    /// (a history checked alone has none).
    pub fn new(
        history: &'h History,
        results: &RunResults,
        nodes: &[String],
        status: &[StatusSample],
    ) -> Analysis<'h> {
        let mut ops = pair(history);
        ops.sort_by_key(|op| (op.start, op.id));
        let invalid_keys: HashSet<&str> = results
            .linearizability
            .iter()
            .flat_map(|check| &check.counterexamples)
            .filter_map(|example| example.key.as_deref())
            .collect();
        let end = history
            .events()
            .iter()
            .map(|event| event.time)
            .chain(status.iter().map(|sample| sample.time))
            .max()
            .unwrap_or(0);
        Analysis {
            lanes: lanes(&ops),
            faults: faults(history),
            nemesis: nemesis_events(history),
            clocks: clock_traces(history),
            node_spans: spans(nodes, status, end),
            configurations: configurations(status, end),
            latency_points: latency_points(&ops, &invalid_keys, LATENCY_POINTS),
            end,
            ops,
        }
    }
}
