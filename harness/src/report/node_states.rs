//! Each node's role and term over time, from the `/status` samples of `status.jsonl`: one
//! span per state, from the sample that saw it to the next sample of that node.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::status_sample::StatusSample;

/// What a node was from `start` to `end`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeSpan {
    /// Nanoseconds since the start of the test.
    pub start: u64,
    pub end: u64,
    /// Whether it answered `/status` (a killed, paused or overloaded node does not).
    pub up: bool,
    pub role: Option<String>,
    pub term: Option<u64>,
    /// The leader it knew of.
    pub leader: Option<String>,
}

/// The spans of each of `nodes` (and of any other node the samples name), the last one of a
/// node running to `end`. A node never sampled has no span.
pub fn spans(
    nodes: &[String],
    samples: &[StatusSample],
    end: u64,
) -> BTreeMap<String, Vec<NodeSpan>> {
    let mut by_node: BTreeMap<String, Vec<&StatusSample>> = nodes
        .iter()
        .map(|node| (node.clone(), Vec::new()))
        .collect();
    for sample in samples {
        by_node.entry(sample.node.clone()).or_default().push(sample);
    }
    by_node
        .into_iter()
        .map(|(node, mut samples)| {
            samples.sort_by_key(|sample| sample.time);
            let ends = samples
                .iter()
                .skip(1)
                .map(|next| next.time)
                .chain([end.max(samples.last().map_or(0, |last| last.time))]);
            let spans = samples
                .iter()
                .zip(ends)
                .map(|(sample, end)| NodeSpan {
                    start: sample.time,
                    end,
                    up: sample.up,
                    role: sample.role.clone(),
                    term: sample.term,
                    leader: sample.leader.clone(),
                })
                .collect();
            (node, spans)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(time: u64, node: &str, role: Option<&str>, term: Option<u64>) -> StatusSample {
        StatusSample {
            up: role.is_some(),
            role: role.map(str::to_string),
            term,
            ..StatusSample::silent(time, node.into())
        }
    }

    #[test]
    fn each_sample_lasts_until_the_next_one_of_its_node() {
        let samples = [
            sample(10, "n1", Some("follower"), Some(1)),
            sample(12, "n2", Some("leader"), Some(1)),
            sample(30, "n1", None, None),
            sample(50, "n1", Some("candidate"), Some(2)),
        ];
        let nodes = ["n1".to_string(), "n2".to_string(), "n3".to_string()];
        let spans = spans(&nodes, &samples, 100);
        let n1: Vec<(u64, u64, bool, Option<u64>)> = spans["n1"]
            .iter()
            .map(|s| (s.start, s.end, s.up, s.term))
            .collect();
        assert_eq!(
            n1,
            [
                (10, 30, true, Some(1)),
                (30, 50, false, None),
                (50, 100, true, Some(2))
            ]
        );
        assert_eq!(spans["n2"].len(), 1);
        assert_eq!(spans["n2"][0].role.as_deref(), Some("leader"));
        assert!(spans["n3"].is_empty(), "never sampled: no span");
    }

    #[test]
    fn samples_out_of_order_are_sorted_and_a_sample_after_the_end_is_kept() {
        let samples = [
            sample(40, "n1", Some("leader"), Some(3)),
            sample(20, "n1", Some("follower"), Some(2)),
        ];
        let spans = spans(&[], &samples, 30);
        let n1: Vec<(u64, u64)> = spans["n1"].iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(n1, [(20, 40), (40, 40)]);
    }
}
