//! What the page and the plots draw, derived once from a run's files: the operations in
//! order of invocation, their lanes, the faults, each node's states and the latency points.

use std::collections::{BTreeMap, HashSet};

use super::latency_points::{LATENCY_POINTS, latency_points};
use super::node_states::{NodeSpan, spans};
use super::operations::{Lane, TimelineOp, lanes, pair};
use crate::faults::{Fault, NemesisEvent, faults, nemesis_events};
use crate::store::RunFiles;

/// A run, ready to draw.
pub struct Analysis<'h> {
    /// Client operations sorted by invocation time.
    pub ops: Vec<TimelineOp<'h>>,
    pub lanes: Vec<Lane>,
    pub faults: Vec<Fault>,
    pub nemesis: Vec<NemesisEvent>,
    /// Each node's spans, by node name.
    pub node_spans: BTreeMap<String, Vec<NodeSpan>>,
    /// Indices into `ops` of the points the latency plots draw.
    pub latency_points: Vec<usize>,
    /// Nanoseconds from the start to the last thing recorded (event or status sample).
    pub end: u64,
}

impl<'h> Analysis<'h> {
    pub fn of(files: &'h RunFiles) -> Analysis<'h> {
        let mut ops = pair(&files.history);
        ops.sort_by_key(|op| (op.start, op.id));
        let invalid_keys: HashSet<&str> = files
            .results
            .linearizability
            .iter()
            .flat_map(|check| &check.counterexamples)
            .filter_map(|example| example.key.as_deref())
            .collect();
        let end = files
            .history
            .events()
            .iter()
            .map(|event| event.time)
            .chain(files.status.iter().map(|sample| sample.time))
            .max()
            .unwrap_or(0);
        let node_names: Vec<String> = files.test.nodes.iter().map(|n| n.name.clone()).collect();
        Analysis {
            lanes: lanes(&ops),
            faults: faults(&files.history),
            nemesis: nemesis_events(&files.history),
            node_spans: spans(&node_names, &files.status, end),
            latency_points: latency_points(&ops, &invalid_keys, LATENCY_POINTS),
            end,
            ops,
        }
    }
}
