//! The client operations of a history as the timeline draws them: each invocation paired
//! with its completion (by the history's one pairing), failures included (the checker drops
//! them; a reader wants them), and the processes packed into lanes.

use std::collections::HashMap;

use faultline_history::{EventType, History, Pair};
use serde_json::Value;

/// How an operation ended, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ending {
    Ok,
    Fail,
    /// Indeterminate: it may have happened (a timeout, a connection lost).
    Info,
    /// Invoked, never completed (counts as `info`).
    Pending,
}

impl Ending {
    /// The number the page's columns use.
    pub fn code(self) -> u8 {
        match self {
            Ending::Ok => 0,
            Ending::Fail => 1,
            Ending::Info => 2,
            Ending::Pending => 3,
        }
    }
}

/// One client operation, from invocation to completion.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineOp<'h> {
    /// The `index` of its invocation (the id the checker's results use).
    pub id: u64,
    pub process: u64,
    pub f: &'h str,
    pub key: Option<&'h str>,
    /// The completion's value if it completed `ok` (a read's result), else the invocation's.
    pub value: &'h Value,
    /// Nanoseconds since the start of the test.
    pub start: u64,
    /// When it completed; `None` if it never did.
    pub end: Option<u64>,
    pub ending: Ending,
    pub error: Option<&'h str>,
    /// The node that answered, if known.
    pub node: Option<&'h str>,
}

impl TimelineOp<'_> {
    /// From invocation to completion, if it completed.
    pub fn latency(&self) -> Option<u64> {
        self.end.map(|end| end.saturating_sub(self.start))
    }
}

/// Each client invocation with its completion ([`faultline_history::pair`]), in order of
/// invocation. The report shows what can be shown of a history the checker rejects: a
/// completion with no invocation in flight is left out, and an invocation that its process
/// left for another one stays pending.
pub fn pair(history: &History) -> Vec<TimelineOp<'_>> {
    faultline_history::pair(history)
        .pairs
        .iter()
        .map(timeline_op)
        .collect()
}

/// `pair` as the timeline draws it.
fn timeline_op<'h>(pair: &Pair<'h>) -> TimelineOp<'h> {
    let invocation = pair.invocation();
    let mut op = TimelineOp {
        id: invocation.index,
        process: pair.client(),
        f: &invocation.f,
        key: invocation.key.as_deref(),
        value: &invocation.value,
        start: invocation.time,
        end: None,
        ending: Ending::Pending,
        error: None,
        node: None,
    };
    if let Some(completion) = pair.completion() {
        op.end = Some(completion.time);
        op.error = completion.error.as_deref();
        op.node = completion.node.as_deref();
        op.ending = match completion.kind {
            EventType::Ok => {
                // As recorded, even a completion that carries no value (where the checker
                // keeps the invocation's): the page shows what the completion said.
                op.value = &completion.value;
                Ending::Ok
            }
            EventType::Fail => Ending::Fail,
            EventType::Info | EventType::Invoke => Ending::Info,
        };
    }
    op
}

/// A row of the timeline: processes that follow one another in time. After an `info` a
/// client carries on under a new process id; its row carries on with it, so the timeline has
/// about one row per client instead of one per process id ever used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    /// In order of their first invocation.
    pub processes: Vec<u64>,
}

/// Packs processes into lanes: each process goes to the first lane free since before its
/// first invocation (a process that never finishes keeps its lane to the end).
pub fn lanes(ops: &[TimelineOp]) -> Vec<Lane> {
    // Each process's span, in order of first invocation; `None` as the end means never.
    let mut spans: Vec<(u64, u64, Option<u64>)> = Vec::new();
    let mut place: HashMap<u64, usize> = HashMap::new();
    for op in ops {
        let at = *place.entry(op.process).or_insert_with(|| {
            spans.push((op.process, op.start, Some(op.start)));
            spans.len() - 1
        });
        let span = &mut spans[at];
        span.2 = match (span.2, op.end) {
            (Some(until), Some(end)) => Some(until.max(end)),
            _ => None,
        };
    }
    spans.sort_by_key(|&(process, first, _)| (first, process));

    let mut lanes: Vec<Lane> = Vec::new();
    let mut free_from: Vec<Option<u64>> = Vec::new();
    for (process, first, until) in spans {
        let free = free_from
            .iter()
            .position(|free| free.is_some_and(|free| free <= first));
        match free {
            Some(lane) => {
                lanes[lane].processes.push(process);
                free_from[lane] = until;
            }
            None => {
                lanes.push(Lane {
                    processes: vec![process],
                });
                free_from.push(until);
            }
        }
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(text: &str) -> History {
        History::from_jsonl(text).unwrap()
    }

    #[test]
    fn invocations_pair_with_their_completions_and_keep_failures() {
        let h = history(
            r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"read","key":"k","value":null}
{"index":1,"time":11,"process":1,"type":"invoke","f":"write","key":"k","value":3}
{"index":2,"time":12,"process":"nemesis","type":"info","f":"kill","value":["n1"]}
{"index":3,"time":15,"process":0,"type":"ok","f":"read","key":"k","value":3,"node":"n2"}
{"index":4,"time":20,"process":1,"type":"fail","f":"write","key":"k","value":3,"error":"no leader"}
{"index":5,"time":21,"process":0,"type":"invoke","f":"cas","key":"k","value":[3,4]}
"#,
        );
        let ops = pair(&h);
        assert_eq!(ops.len(), 3);
        assert_eq!(
            (
                ops[0].id,
                ops[0].ending,
                ops[0].value,
                ops[0].end,
                ops[0].node
            ),
            (0, Ending::Ok, &Value::from(3), Some(15), Some("n2"))
        );
        assert_eq!(
            (ops[1].ending, ops[1].error, ops[1].latency()),
            (Ending::Fail, Some("no leader"), Some(9))
        );
        assert_eq!((ops[2].ending, ops[2].end), (Ending::Pending, None));
    }

    #[test]
    fn a_process_that_takes_over_after_an_info_continues_its_clients_lane() {
        // Clients 0 and 1; client 0's op times out and it carries on as process 2.
        let h = history(
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"read","value":null}
{"index":1,"time":1,"process":1,"type":"invoke","f":"read","value":null}
{"index":2,"time":5,"process":0,"type":"info","f":"read","value":null,"error":"timeout"}
{"index":3,"time":6,"process":2,"type":"invoke","f":"read","value":null}
{"index":4,"time":7,"process":2,"type":"ok","f":"read","value":null}
{"index":5,"time":9,"process":1,"type":"ok","f":"read","value":null}
"#,
        );
        let lanes = lanes(&pair(&h));
        assert_eq!(
            lanes,
            [
                Lane {
                    processes: vec![0, 2]
                },
                Lane { processes: vec![1] }
            ]
        );
    }

    #[test]
    fn a_process_still_in_flight_keeps_its_lane_to_the_end() {
        let h = history(
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"read","value":null}
{"index":1,"time":5,"process":3,"type":"invoke","f":"read","value":null}
{"index":2,"time":6,"process":3,"type":"ok","f":"read","value":null}
"#,
        );
        assert_eq!(lanes(&pair(&h)).len(), 2);
    }
}
