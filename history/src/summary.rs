//! The numbers a run's summary shows, computed from its history: operations by function and
//! by type, error reasons, throughput, and latency.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::history::{EventType, History, Process};
use crate::pairing::{End, pair};

/// Operations by how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeCounts {
    /// It happened.
    pub ok: u64,
    /// It did not happen.
    pub fail: u64,
    /// It may have happened.
    pub info: u64,
    /// Invoked and never completed (counts as `info` for the checkers).
    pub pending: u64,
}

impl TypeCounts {
    /// All operations counted.
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info + self.pending
    }
}

/// Latency of a set of operations, from invocation to completion (exact, nearest rank).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
}

/// What a run did, for its summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Client operations by function (`read`, `write`, `cas`, `append`).
    pub by_function: BTreeMap<String, TypeCounts>,
    /// All client operations.
    pub total: TypeCounts,
    /// How many `fail` and `info` completions gave each reason (`"no leader"`, `"timeout"`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Nemesis events (fault starts and stops).
    pub nemesis_events: u64,
    /// From the first client invocation to the last client event.
    pub duration: Duration,
    /// `ok` operations per second over `duration` (0 if it is empty).
    pub ok_per_second: f64,
    /// Latency of the `ok` operations; `None` if there were none.
    pub ok_latency: Option<Latency>,
}

impl Summary {
    /// Summarizes a history as recorded (one operation at a time per process). Operations
    /// come from [`crate::pair`], and a history that breaks its rules is summarized as far
    /// as it pairs: a completion without an invocation is not counted (but its time is in the
    /// duration), nor is an invocation whose process invoked again before completing it.
    pub fn of(history: &History) -> Summary {
        let mut summary = Summary::default();
        let (mut first, mut last) = (None, 0);
        for event in history.events() {
            if event.process == Process::Nemesis {
                summary.nemesis_events += 1;
                continue;
            }
            first.get_or_insert(event.time);
            last = last.max(event.time);
        }

        let mut ok_latencies = Vec::new();
        for pair in pair(history).pairs {
            if pair.end() == End::Superseded {
                continue;
            }
            let counts = summary
                .by_function
                .entry(pair.invocation().f.to_string())
                .or_default();
            let Some(completion) = pair.completion() else {
                counts.pending += 1;
                continue;
            };
            match completion.kind {
                EventType::Ok => {
                    counts.ok += 1;
                    ok_latencies.extend(pair.latency());
                }
                EventType::Fail => counts.fail += 1,
                EventType::Info | EventType::Invoke => counts.info += 1,
            }
            if let Some(reason) = &completion.error {
                *summary.errors.entry(reason.to_string()).or_default() += 1;
            }
        }
        for counts in summary.by_function.values() {
            summary.total.ok += counts.ok;
            summary.total.fail += counts.fail;
            summary.total.info += counts.info;
            summary.total.pending += counts.pending;
        }
        summary.duration = Duration::from_nanos(last - first.unwrap_or(last));
        if !summary.duration.is_zero() {
            summary.ok_per_second = summary.total.ok as f64 / summary.duration.as_secs_f64();
        }
        summary.ok_latency = latency(ok_latencies);
        summary
    }
}

/// The latency of operations that took `nanos`; `None` if there are none.
fn latency(mut nanos: Vec<u64>) -> Option<Latency> {
    nanos.sort_unstable();
    let max = Duration::from_nanos(*nanos.last()?);
    let rank = |percent: usize| {
        // Nearest rank: the smallest value at or above `percent`% of the values.
        let position = (nanos.len() * percent).div_ceil(100).max(1) - 1;
        Duration::from_nanos(nanos[position])
    };
    Some(Latency {
        p50: rank(50),
        p99: rank(99),
        max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_is_summarized_by_function_type_and_reason() {
        let text = r#"{"index":0,"time":1000000000,"process":0,"type":"invoke","f":"write","key":"r0","value":1}
{"index":1,"time":1000000000,"process":1,"type":"invoke","f":"read","key":"r0","value":null}
{"index":2,"time":1002000000,"process":0,"type":"ok","f":"write","key":"r0","value":1}
{"index":3,"time":1003000000,"process":"nemesis","type":"info","f":"kill","value":["n1"]}
{"index":4,"time":1004000000,"process":1,"type":"info","f":"read","key":"r0","value":null,"error":"timeout"}
{"index":5,"time":1005000000,"process":0,"type":"invoke","f":"cas","key":"r0","value":[1,2]}
{"index":6,"time":1006000000,"process":0,"type":"fail","f":"cas","key":"r0","value":[1,2],"error":"cas-mismatch"}
{"index":7,"time":1006000000,"process":3,"type":"invoke","f":"write","key":"r0","value":2}
{"index":8,"time":1010000000,"process":3,"type":"ok","f":"write","key":"r0","value":2}
{"index":9,"time":1011000000,"process":0,"type":"invoke","f":"append","key":"l0","value":5}
"#;
        let summary = Summary::of(&History::from_jsonl(text).unwrap());
        let counts = |ok, fail, info, pending| TypeCounts {
            ok,
            fail,
            info,
            pending,
        };
        assert_eq!(
            summary.by_function,
            BTreeMap::from([
                ("append".to_string(), counts(0, 0, 0, 1)),
                ("cas".to_string(), counts(0, 1, 0, 0)),
                ("read".to_string(), counts(0, 0, 1, 0)),
                ("write".to_string(), counts(2, 0, 0, 0)),
            ])
        );
        assert_eq!(summary.total, counts(2, 1, 1, 1));
        assert_eq!(summary.total.total(), 5);
        assert_eq!(
            summary.errors,
            BTreeMap::from([("cas-mismatch".to_string(), 1), ("timeout".to_string(), 1)])
        );
        assert_eq!(summary.nemesis_events, 1);
        assert_eq!(summary.duration, Duration::from_millis(11));
        assert!((summary.ok_per_second - 2.0 / 0.011).abs() < 1e-6);
        assert_eq!(
            summary.ok_latency,
            Some(Latency {
                p50: Duration::from_millis(2),
                p99: Duration::from_millis(4),
                max: Duration::from_millis(4),
            })
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let latency = latency((1..=200).collect()).unwrap();
        assert_eq!(latency.p50, Duration::from_nanos(100));
        assert_eq!(latency.p99, Duration::from_nanos(198));
        assert_eq!(latency.max, Duration::from_nanos(200));
        let seven = Duration::from_nanos(7);
        let one = super::latency(vec![7]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (seven, seven, seven));
        assert_eq!(super::latency(Vec::new()), None);
        assert_eq!(Summary::of(&History::default()), Summary::default());
    }
}
