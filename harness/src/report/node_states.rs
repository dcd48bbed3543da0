//! Each node's role and term over time, from the `/status` samples of `status.jsonl`: one
//! span per state, from the sample that saw it to the next sample of that node. And, for
//! systems whose status tells the membership, the cluster's configuration over time as its
//! leader saw it, and each node's standing in it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::status_sample::{StatusSample, leading_sample};

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

/// The members of a configuration, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Configuration {
    /// The voters (of the new configuration during a joint change).
    pub voters: Vec<String>,
    /// During a joint change, the voters of the configuration being left; empty otherwise.
    pub outgoing: Vec<String>,
    pub learners: Vec<String>,
}

/// Where a node stands in a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// It votes, and goes on voting through a joint change.
    Voter,
    /// During a joint change: a voter of the new configuration but not of the old one.
    Joining,
    /// During a joint change: a voter of the old configuration only.
    Leaving,
    /// It gets the log but does not vote.
    Learner,
    NotAMember,
}

impl Configuration {
    /// The configuration `sample` tells, if it tells one.
    fn of(sample: &StatusSample) -> Option<Configuration> {
        let voters = sample.voters.clone()?;
        Some(Configuration {
            voters,
            outgoing: sample.outgoing.clone().unwrap_or_default(),
            learners: sample.learners.clone().unwrap_or_default(),
        })
    }

    /// Where `node` stands in this configuration.
    pub fn standing(&self, node: &str) -> Standing {
        let has = |names: &[String]| names.iter().any(|name| name == node);
        let joint = !self.outgoing.is_empty();
        match (has(&self.voters), has(&self.outgoing)) {
            (true, false) if joint => Standing::Joining,
            (true, _) => Standing::Voter,
            (false, true) => Standing::Leaving,
            (false, false) if has(&self.learners) => Standing::Learner,
            (false, false) => Standing::NotAMember,
        }
    }
}

/// The cluster's configuration from `start` to `end` (nanoseconds since the start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigurationSpan {
    pub start: u64,
    pub end: u64,
    pub configuration: Configuration,
}

/// The cluster's configuration over time, as the cluster saw it: at each moment the one in
/// force on the node that leads then ([`leading_sample`]), since the leader's is the one the
/// cluster acts on; a follower may lag behind it or hold an entry the leader will overwrite. While no node leads, the last one stays;
/// before any node has led, the latest that a node told. The last span runs to `end`.
/// Empty when no sample tells a membership (other systems, older runs).
pub fn configurations(samples: &[StatusSample], end: u64) -> Vec<ConfigurationSpan> {
    let mut ordered: Vec<&StatusSample> = samples.iter().collect();
    ordered.sort_by_key(|sample| sample.time);
    let mut latest: BTreeMap<&str, &StatusSample> = BTreeMap::new();
    let mut spans: Vec<ConfigurationSpan> = Vec::new();
    let mut led = false;
    // Every sample of one moment is in before the leader is chosen: the poller dates one
    // round's answers apart, but a deposed leader and its successor can share a time.
    for moment in ordered.chunk_by(|a, b| a.time == b.time) {
        for sample in moment {
            latest.insert(&sample.node, sample);
        }
        let leading = leading_sample(latest.values().copied(), None);
        let seen = match leading {
            Some(leader) => {
                led = true;
                Configuration::of(leader)
            }
            None if !led => moment
                .iter()
                .rev()
                .find_map(|sample| Configuration::of(sample)),
            None => None,
        };
        let Some(configuration) = seen else {
            continue;
        };
        let time = moment[0].time;
        if let Some(last) = spans.last_mut() {
            if last.configuration == configuration {
                continue;
            }
            last.end = time;
        }
        spans.push(ConfigurationSpan {
            start: time,
            end: time,
            configuration,
        });
    }
    if let Some(last) = spans.last_mut() {
        last.end = end.max(last.start);
    }
    spans
}

/// Where `node` stood from `start` to `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StandingSpan {
    pub start: u64,
    pub end: u64,
    pub standing: Standing,
}

/// Where `node` stood in each of `configurations`, with spans of one standing joined.
pub fn standings(configurations: &[ConfigurationSpan], node: &str) -> Vec<StandingSpan> {
    let mut spans: Vec<StandingSpan> = Vec::new();
    for span in configurations {
        let standing = span.configuration.standing(node);
        match spans.last_mut() {
            Some(last) if last.standing == standing && last.end == span.start => {
                last.end = span.end;
            }
            _ => spans.push(StandingSpan {
                start: span.start,
                end: span.end,
                standing,
            }),
        }
    }
    spans
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

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    /// `node` answering at `time` as `role` in `term`, with `voters`, leaving `outgoing`,
    /// and `learners` in force.
    fn told(
        time: u64,
        node: &str,
        (role, term): (&str, u64),
        voters: &[&str],
        outgoing: &[&str],
        learners: &[&str],
    ) -> StatusSample {
        StatusSample {
            leader: (role == "leader").then(|| node.to_string()),
            voters: Some(names(voters)),
            outgoing: Some(names(outgoing)),
            learners: Some(names(learners)),
            ..sample(time, node, Some(role), Some(term))
        }
    }

    fn configuration(voters: &[&str], outgoing: &[&str], learners: &[&str]) -> Configuration {
        Configuration {
            voters: names(voters),
            outgoing: names(outgoing),
            learners: names(learners),
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

    /// n4 joins as a learner and replaces n3 through a joint configuration; a follower's
    /// configuration does not count once a node has led, and none leading keeps the last.
    #[test]
    fn the_configuration_follows_the_leader_through_a_joint_change() {
        let initial = ["n1", "n2", "n3"];
        let leader = ("leader", 1);
        let follower = ("follower", 1);
        let samples = [
            // Before any leader: what the nodes tell, the spare n4 too.
            told(10, "n1", follower, &initial, &[], &[]),
            told(10, "n2", follower, &initial, &[], &[]),
            told(10, "n4", follower, &initial, &[], &[]),
            told(20, "n1", leader, &initial, &[], &[]),
            told(30, "n1", leader, &initial, &[], &["n4"]),
            // A follower that got the joint entry first says nothing for the cluster.
            told(35, "n2", follower, &["n1", "n2", "n4"], &initial, &[]),
            told(40, "n1", leader, &["n1", "n2", "n4"], &initial, &[]),
            told(50, "n1", leader, &["n1", "n2", "n4"], &[], &[]),
            // n1 is killed: no leader, the last configuration stays; n2 then leads with it.
            sample(60, "n1", None, None),
            told(70, "n2", ("leader", 2), &["n1", "n2", "n4"], &[], &[]),
            // A stale leader of an older term does not lead.
            told(80, "n3", leader, &initial, &[], &[]),
        ];
        let spans = configurations(&samples, 100);
        let seen: Vec<(u64, u64, Configuration)> = spans
            .iter()
            .map(|span| (span.start, span.end, span.configuration.clone()))
            .collect();
        assert_eq!(
            seen,
            [
                (10, 30, configuration(&initial, &[], &[])),
                (30, 40, configuration(&initial, &[], &["n4"])),
                (40, 50, configuration(&["n1", "n2", "n4"], &initial, &[])),
                (50, 100, configuration(&["n1", "n2", "n4"], &[], &[])),
            ]
        );

        let standing = |node| -> Vec<(u64, u64, Standing)> {
            standings(&spans, node)
                .iter()
                .map(|span| (span.start, span.end, span.standing))
                .collect()
        };
        use Standing::*;
        assert_eq!(standing("n1"), [(10, 100, Voter)]);
        assert_eq!(
            standing("n3"),
            [(10, 40, Voter), (40, 50, Leaving), (50, 100, NotAMember)],
            "n3 is removed"
        );
        assert_eq!(
            standing("n4"),
            [
                (10, 30, NotAMember),
                (30, 40, Learner),
                (40, 50, Joining),
                (50, 100, Voter)
            ]
        );
        assert_eq!(
            standing("n5"),
            [(10, 100, NotAMember)],
            "a spare never added"
        );
    }

    #[test]
    fn samples_that_tell_no_membership_give_no_configuration() {
        let samples = [
            sample(10, "n1", Some("leader"), Some(1)),
            sample(10, "n2", Some("follower"), Some(1)),
        ];
        assert!(configurations(&samples, 100).is_empty());
        assert!(standings(&[], "n1").is_empty());
    }

    #[test]
    fn a_learner_leaving_the_voters_of_a_joint_change_is_leaving() {
        let demoting = configuration(&["n1", "n2"], &["n1", "n2", "n3"], &["n3"]);
        assert_eq!(demoting.standing("n3"), Standing::Leaving);
        assert_eq!(demoting.standing("n1"), Standing::Voter);
        let promoted = configuration(&["n1", "n2", "n3"], &[], &[]);
        assert_eq!(promoted.standing("n3"), Standing::Voter);
    }
}
