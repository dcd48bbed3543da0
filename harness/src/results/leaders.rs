//! Who led when: the cluster's leader over a run, from the `/status` samples of
//! `status.jsonl`, as a list of changes, each with the nemesis fault that preceded it.
//!
//! The leader at a moment is the answering node that says it leads with the highest term:
//! an old leader cut off from the others may still say it leads, in a term the majority has
//! left behind, and does not count. Of two nodes that say they lead in one term (which a
//! correct Raft never shows, but Redis does, and a system whose status has no terms), one
//! that names another as the leader loses (a deposed Redis primary still takes writes until
//! the sentinels make it a replica, but names its successor): the rule of [`claim`](crate::node_status::claim), which
//! the nemesis's choice of a leader follows too. Then the node that already led keeps the
//! lead, since nothing says it lost it; then the first by name, so that the same samples
//! always give the same leader. No answering node that leads is "no leader".
//!
//! Polling makes two kinds of noise, which are not changes:
//! - a glimpse: one round of polls reads the nodes one after another, so between the old
//!   leader's sample (a follower now) and the new leader's, microseconds later, no node
//!   seems to lead. A leader (or no leader) that held for less than half a poll interval was
//!   seen by no whole round, and is dropped;
//! - a flicker: "no leader" for less than two poll intervals between two spells of the same
//!   node is a round of polls in which that node's status did not answer in time, while
//!   nothing else changed. Consecutive rounds are about one interval apart, so a longer gap
//!   is at least two rounds without a leader, and is reported.

use std::collections::BTreeMap;
use std::time::Duration;

use faultline_history::{History, Process};
use faultline_nemesis::{EventName, FaultClass};
use serde::{Deserialize, Serialize};

use crate::status_sample::{StatusSample, leading_sample};

/// One change of the cluster's leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderChange {
    /// Nanoseconds since the test started (the history's clock) when the poller first saw
    /// `to` lead, or first saw no node lead.
    pub time: u64,
    /// The leader before; `None` for no leader (as before the first).
    pub from: Option<String>,
    /// The leader after; `None` for no leader.
    pub to: Option<String>,
    /// The nemesis event that preceded the change since the change before, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<PrecedingFault>,
}

/// A nemesis event that started or healed a fault, named beside a leader change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrecedingFault {
    /// Nanoseconds since the test started.
    pub time: u64,
    /// The event, e.g. `kill` or `start-partition`.
    pub f: String,
    /// The nodes it killed, paused or brought back; none for a fault of the network (a
    /// partition names every node it cuts off from another).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

impl PrecedingFault {
    /// `kill n1`, `kill-majority n1,n2`, `start-partition`.
    pub fn name(&self) -> String {
        if self.nodes.is_empty() {
            self.f.clone()
        } else {
            format!("{} {}", self.f, self.nodes.join(","))
        }
    }
}

/// Who led from `start` on, until the next spell.
struct Spell<'s> {
    start: u64,
    leader: Option<&'s str>,
}

/// The changes of leader that `samples` show (in any order; each sample holds for its node
/// until that node's next), polled every `poll_interval`, by the rule of this module. The
/// first change is from no leader to the first leader seen. `fault` is left empty: see
/// [`name_faults`].
pub fn leader_changes(samples: &[StatusSample], poll_interval: Duration) -> Vec<LeaderChange> {
    let interval = u64::try_from(poll_interval.as_nanos()).unwrap_or(u64::MAX);
    let spells = without_glimpses(spells(samples), interval / 2);
    let spells = without_flickers(spells, interval.saturating_mul(2));
    let mut changes = Vec::new();
    let mut previous = None;
    for spell in spells {
        if spell.leader != previous {
            changes.push(LeaderChange {
                time: spell.start,
                from: previous.map(str::to_string),
                to: spell.leader.map(str::to_string),
                fault: None,
            });
            previous = spell.leader;
        }
    }
    changes
}

/// The leader after every instant a sample was taken, a spell each time it changed.
fn spells(samples: &[StatusSample]) -> Vec<Spell<'_>> {
    let mut ordered: Vec<&StatusSample> = samples.iter().collect();
    ordered.sort_by_key(|sample| sample.time);
    let mut latest: BTreeMap<&str, &StatusSample> = BTreeMap::new();
    let mut spells: Vec<Spell> = Vec::new();
    for instant in ordered.chunk_by(|a, b| a.time == b.time) {
        for sample in instant {
            latest.insert(&sample.node, sample);
        }
        let current = spells.last().and_then(|spell| spell.leader);
        let leader =
            leading_sample(latest.values().copied(), current).map(|sample| sample.node.as_str());
        if spells.last().is_none_or(|spell| spell.leader != leader) {
            spells.push(Spell {
                start: instant[0].time,
                leader,
            });
        }
    }
    spells
}

/// Drops every spell shorter than `shortest` but the last (whose length is unknown): the
/// spell before it lasts until the next one kept.
fn without_glimpses(spells: Vec<Spell<'_>>, shortest: u64) -> Vec<Spell<'_>> {
    let ends: Vec<Option<u64>> = spells
        .iter()
        .skip(1)
        .map(|next| Some(next.start))
        .chain([None])
        .collect();
    let kept = spells
        .into_iter()
        .zip(ends)
        .filter(|(spell, end)| end.is_none_or(|end| end - spell.start >= shortest))
        .map(|(spell, _)| spell);
    merge_repeats(kept)
}

/// Drops every spell without a leader shorter than `shortest` between two spells of the same
/// leader, which then make one.
fn without_flickers(spells: Vec<Spell<'_>>, shortest: u64) -> Vec<Spell<'_>> {
    let flicker = |at: usize| {
        let (Some(before), Some(gap), Some(after)) = (
            at.checked_sub(1).and_then(|i| spells.get(i)),
            spells.get(at),
            spells.get(at + 1),
        ) else {
            return false;
        };
        gap.leader.is_none()
            && before.leader.is_some()
            && before.leader == after.leader
            && after.start - gap.start < shortest
    };
    let flickers: Vec<bool> = (0..spells.len()).map(flicker).collect();
    let kept = spells
        .into_iter()
        .zip(flickers)
        .filter(|(_, flicker)| !flicker)
        .map(|(spell, _)| spell);
    merge_repeats(kept)
}

/// One spell for each run of spells of the same leader, from the first's start.
fn merge_repeats<'s>(spells: impl Iterator<Item = Spell<'s>>) -> Vec<Spell<'s>> {
    let mut merged: Vec<Spell> = Vec::new();
    for spell in spells {
        if merged.last().is_none_or(|last| last.leader != spell.leader) {
            merged.push(spell);
        }
    }
    merged
}

/// Names beside each change the nemesis event that preceded it since the change before
/// (or since the start): the last that started a fault, or if none did, the last that
/// healed one. The fault that a change follows is usually its cause (a kill, a partition);
/// a heal can be too (a node that comes back and calls an election). Events that do
/// neither (`lost-unsynced`) and events this version does not know are passed over.
pub fn name_faults(changes: &mut [LeaderChange], history: &History) {
    let mut events: Vec<(u64, EventName, &serde_json::Value)> = history
        .events()
        .iter()
        .filter(|event| event.process == Process::Nemesis)
        .filter_map(|event| {
            let name = event.f.parse::<EventName>().ok()?;
            (name.starts().is_some() || name.stops().is_some()).then_some((
                event.time,
                name,
                &*event.value,
            ))
        })
        .collect();
    // In time order, as the recorder wrote them; sorted all the same, to search them.
    events.sort_by_key(|&(time, _, _)| time);
    let mut since = None;
    for change in changes {
        let until = change.time;
        let from = since.map_or(0, |since| events.partition_point(|e| e.0 <= since));
        let to = events.partition_point(|e| e.0 <= until).max(from);
        let window = &events[from..to];
        let preceding = window
            .iter()
            .rev()
            .find(|(_, name, _)| name.starts().is_some())
            .or(window.last());
        change.fault = preceding.map(|&(time, name, value)| {
            let on_nodes = matches!(
                name.starts().or(name.stops()),
                Some(FaultClass::Down | FaultClass::Paused)
            );
            PrecedingFault {
                time,
                f: name.as_str().to_string(),
                nodes: if on_nodes {
                    name.nodes(value)
                } else {
                    Vec::new()
                },
            }
        });
        since = Some(until);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const MS: u64 = 1_000_000;
    const POLL: Duration = Duration::from_millis(100);

    /// `node` answering at `ms` as `role` in `term`, taking `leader` for the leader.
    fn up(ms: u64, node: &str, role: &str, term: u64, leader: Option<&str>) -> StatusSample {
        StatusSample {
            up: true,
            role: Some(role.into()),
            term: Some(term),
            leader: leader.map(str::to_string),
            commit: Some(1),
            ..down(ms, node)
        }
    }

    /// `node` not answering at `ms`.
    fn down(ms: u64, node: &str) -> StatusSample {
        StatusSample::silent(ms * MS, node.into())
    }

    /// A cluster of three led by n1 in term 1 from `ms` on.
    fn n1_leads(ms: u64) -> Vec<StatusSample> {
        vec![
            up(ms, "n1", "leader", 1, Some("n1")),
            up(ms, "n2", "follower", 1, Some("n1")),
            up(ms, "n3", "follower", 1, Some("n1")),
        ]
    }

    /// The changes as `<ms> ms: <from> -> <to>`.
    fn changes(samples: &[StatusSample]) -> Vec<String> {
        let name = |node: Option<String>| node.unwrap_or_else(|| "none".into());
        leader_changes(samples, POLL)
            .into_iter()
            .map(|change| {
                let (from, to) = (name(change.from), name(change.to));
                format!("{} ms: {from} -> {to}", change.time / MS)
            })
            .collect()
    }

    #[test]
    fn a_failover_from_n1_to_n3_is_one_change_at_the_new_leaders_first_sample() {
        let mut samples = n1_leads(0);
        samples.extend([
            // One round: n1 steps down, n3 leads, a few microseconds apart.
            up(4_200, "n1", "follower", 2, Some("n3")),
            StatusSample {
                time: 4_200 * MS + 20_000,
                ..up(0, "n3", "leader", 2, Some("n3"))
            },
            StatusSample {
                time: 4_200 * MS + 40_000,
                ..up(0, "n2", "follower", 2, Some("n3"))
            },
        ]);
        assert_eq!(
            leader_changes(&samples, POLL),
            [
                LeaderChange {
                    time: 0,
                    from: None,
                    to: Some("n1".into()),
                    fault: None
                },
                LeaderChange {
                    time: 4_200 * MS + 20_000,
                    from: Some("n1".into()),
                    to: Some("n3".into()),
                    fault: None
                },
            ],
            "the instant between n1's sample and n3's, with no leader, is no change"
        );
    }

    #[test]
    fn a_partitioned_old_leader_that_still_says_it_leads_does_not_count() {
        let mut samples = n1_leads(0);
        samples.extend([
            // n1 is cut off and keeps saying it leads term 1; n2 and n3 move on.
            up(3_000, "n2", "candidate", 2, None),
            up(3_000, "n3", "candidate", 2, None),
            up(3_300, "n2", "leader", 2, Some("n2")),
            up(3_300, "n3", "follower", 2, Some("n2")),
            // The partition heals: n1 hears of term 2 and follows.
            up(6_000, "n1", "follower", 2, Some("n2")),
        ]);
        assert_eq!(
            changes(&samples),
            ["0 ms: none -> n1", "3300 ms: n1 -> n2"],
            "n1 led until n2 did, in a higher term, and never after"
        );
    }

    #[test]
    fn a_leader_that_goes_down_leaves_no_leader_until_another_is_elected() {
        let mut samples = n1_leads(0);
        samples.extend([
            down(2_000, "n1"),
            up(2_300, "n3", "candidate", 2, None),
            up(2_400, "n3", "leader", 2, Some("n3")),
            up(2_400, "n2", "follower", 2, Some("n3")),
            up(9_000, "n1", "follower", 2, Some("n3")),
        ]);
        assert_eq!(
            changes(&samples),
            [
                "0 ms: none -> n1",
                "2000 ms: n1 -> none",
                "2400 ms: none -> n3"
            ]
        );
        // Elected one round after n1 went down: still two changes, as seen.
        let mut quick = n1_leads(0);
        quick.extend([down(2_000, "n1"), up(2_100, "n3", "leader", 2, Some("n3"))]);
        assert_eq!(
            changes(&quick),
            [
                "0 ms: none -> n1",
                "2000 ms: n1 -> none",
                "2100 ms: none -> n3"
            ]
        );
    }

    #[test]
    fn a_leader_missing_from_one_round_is_a_flicker_but_from_several_is_no_leader() {
        let mut samples = n1_leads(0);
        samples.extend([
            // One status request that did not answer in time.
            down(1_000, "n1"),
            up(1_100, "n1", "leader", 1, Some("n1")),
            // Paused for half a second, and nobody took over.
            down(5_000, "n1"),
            up(5_500, "n1", "leader", 1, Some("n1")),
        ]);
        assert_eq!(
            changes(&samples),
            [
                "0 ms: none -> n1",
                "5000 ms: n1 -> none",
                "5500 ms: none -> n1"
            ]
        );
    }

    #[test]
    fn two_leaders_in_one_term_leave_the_lead_where_it_was() {
        // A system whose status has no terms says 0 for all of them.
        let samples = [
            up(0, "n2", "leader", 0, Some("n2")),
            up(0, "n3", "leader", 0, Some("n3")),
            up(1_000, "n1", "leader", 0, Some("n1")),
            down(2_000, "n2"),
            up(3_000, "n2", "leader", 0, Some("n2")),
        ];
        assert_eq!(
            changes(&samples),
            ["0 ms: none -> n2", "2000 ms: n2 -> n1"],
            "the first by name, then whoever already led"
        );
    }

    #[test]
    fn a_deposed_redis_primary_that_names_its_successor_does_not_lead() {
        // n1 was deposed in epoch 2 and still takes writes, but its sentinel names n2; it
        // was the leader before, and is first by name, yet n2 leads.
        let samples = [
            up(0, "n1", "leader", 1, Some("n1")),
            up(1_000, "n2", "leader", 2, Some("n2")),
            up(1_000, "n1", "leader", 2, Some("n2")),
        ];
        assert_eq!(changes(&samples), ["0 ms: none -> n1", "1000 ms: n1 -> n2"]);
    }

    #[test]
    fn samples_are_taken_in_time_order_and_no_samples_are_no_changes() {
        let mut samples = n1_leads(0);
        samples.push(up(500, "n2", "leader", 2, Some("n2")));
        samples.reverse();
        assert_eq!(changes(&samples), ["0 ms: none -> n1", "500 ms: n1 -> n2"]);
        assert!(changes(&[]).is_empty());
        let leaderless = [up(0, "n1", "follower", 0, None), down(10, "n2")];
        assert!(
            changes(&leaderless).is_empty(),
            "a system that never names a leader"
        );
    }

    fn nemesis(events: &[(u64, &str, serde_json::Value)]) -> History {
        let events = events
            .iter()
            .enumerate()
            .map(|(i, (ms, f, value))| {
                serde_json::from_value(json!({"index": i, "time": ms * MS, "process": "nemesis",
                                              "type": "info", "f": f, "value": value}))
                .unwrap()
            })
            .collect();
        History::new(events)
    }

    #[test]
    fn each_change_names_the_last_fault_started_since_the_change_before() {
        let mut samples = n1_leads(0);
        samples.extend([
            down(2_950, "n1"),
            up(3_300, "n3", "leader", 2, Some("n3")),
            up(6_100, "n2", "leader", 3, Some("n2")),
            up(9_400, "n1", "leader", 4, Some("n1")),
        ]);
        let history = nemesis(&[
            (
                1_000,
                "start-partition",
                json!({"n1": ["n2"], "n2": ["n1"]}),
            ),
            (1_500, "stop-partition", json!({"n1": ["n2"], "n2": ["n1"]})),
            (2_900, "kill", json!(["n1"])),
            (2_920, "lost-unsynced", json!({"n1": {"bytes": 10}})),
            (4_000, "restart", json!(["n1"])),
            (5_000, "start-slow", json!({"latency_ms": 100})),
            (6_000, "crash-restart", json!({"nodes": ["n3"], "storm": 0})),
            (6_020, "restart", json!(["n3"])),
            (8_000, "stop-slow", json!({"latency_ms": 100})),
        ]);
        let mut changes = leader_changes(&samples, POLL);
        name_faults(&mut changes, &history);
        let named: Vec<(u64, Option<String>, Option<u64>)> = changes
            .iter()
            .map(|change| {
                let fault = change.fault.as_ref();
                (
                    change.time / MS,
                    fault.map(PrecedingFault::name),
                    fault.map(|fault| fault.time / MS),
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                (0, None, None),
                // The kill, the last fault started, not the partition before it.
                (2_950, Some("kill n1".into()), Some(2_900)),
                // Nothing happened between the kill's no-leader and the election.
                (3_300, None, None),
                // The crash, rather than the restart that followed it or the network
                // fault started before it.
                (6_100, Some("crash-restart n3".into()), Some(6_000)),
                // Only a heal since: it is named, without nodes for a network fault.
                (9_400, Some("stop-slow".into()), Some(8_000)),
            ]
        );
    }

    #[test]
    fn the_fixture_runs_failover_follows_its_kill() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let run = crate::store::RunFiles::read(&fixtures.join("run-invalid")).unwrap();
        let mut changes = leader_changes(&run.status, POLL);
        name_faults(&mut changes, &run.history);
        // What the report tests put in a copy of the fixture's results.json, which predates
        // the changes of leader.
        let expected = std::fs::read_to_string(fixtures.join("run-invalid-leaders.json")).unwrap();
        assert_eq!(
            changes,
            serde_json::from_str::<Vec<LeaderChange>>(&expected).unwrap()
        );
        let times: Vec<u64> = changes.iter().map(|change| change.time / MS).collect();
        assert_eq!(
            times,
            [50, 350, 650],
            "n3 leads in terms 2 and 3 through the partition of n2: no change then"
        );
    }

    #[test]
    fn changes_read_back_as_written() {
        let change = LeaderChange {
            time: 3 * MS,
            from: Some("n1".into()),
            to: None,
            fault: Some(PrecedingFault {
                time: 2 * MS,
                f: "pause".into(),
                nodes: vec!["n1".into()],
            }),
        };
        let text = serde_json::to_string(&change).unwrap();
        assert_eq!(
            text,
            r#"{"time":3000000,"from":"n1","to":null,"fault":{"time":2000000,"f":"pause","nodes":["n1"]}}"#
        );
        assert_eq!(serde_json::from_str::<LeaderChange>(&text).unwrap(), change);
    }
}
