//! The seeded schedule: which faults a run injects, in what order, and with
//! what targets, all drawn from one `--seed`.
//!
//! A [`Planner`] draws every random choice from a ChaCha8 generator before the
//! fault meets the cluster, and never consults the cluster while drawing, so
//! the same seed, kinds and node list always give the same sequence of
//! [`FaultPlan`]s. Only what depends on the cluster at that moment (who leads,
//! for the leader-targeted faults) may differ between replays.

use std::time::Duration;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cluster::NodeName;
use crate::grudge::Grudge;
use crate::kind::{FaultKind, FaultKinds};

/// How a run attacks the cluster: start a fault, wait `interval`, heal it,
/// wait `interval`, repeat until the time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The enabled faults; with none, the schedule does nothing.
    pub kinds: FaultKinds,
    /// How long each fault lasts, and each calm between faults.
    pub interval: Duration,
    /// The seed of every random choice.
    pub seed: u64,
}

/// Which nodes a kill or pause hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// These nodes: a random minority (at least one node).
    Nodes(Vec<NodeName>),
    /// The leader when the fault starts, or `fallback` if no leader is known.
    Leader {
        /// The node to hit when no leader is known.
        fallback: NodeName,
    },
}

/// One fault, as drawn from the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultPlan {
    /// SIGKILL the targets; healing restarts them.
    Kill(Targets),
    /// SIGSTOP the targets; healing resumes them.
    Pause(Targets),
    /// Cut the links of this grudge; healing restores every link.
    Partition(Grudge),
    /// Isolate the leader when the fault starts, or `fallback` if no leader is known.
    IsolateLeader {
        /// The node to isolate when no leader is known.
        fallback: NodeName,
    },
}

/// Draws fault plans from a seed.
#[derive(Debug, Clone)]
pub struct Planner {
    rng: ChaCha8Rng,
    kinds: Vec<FaultKind>,
    nodes: Vec<NodeName>,
}

impl Planner {
    /// A planner over `nodes` (in the cluster's stable order) and the enabled
    /// `kinds`, seeded with `seed`.
    pub fn new(kinds: &FaultKinds, nodes: Vec<NodeName>, seed: u64) -> Self {
        Planner {
            rng: ChaCha8Rng::seed_from_u64(seed),
            kinds: kinds.iter().collect(),
            nodes,
        }
    }

    /// The next fault, or `None` when no kind is enabled or there are no nodes.
    pub fn next_plan(&mut self) -> Option<FaultPlan> {
        if self.nodes.is_empty() {
            return None;
        }
        let kind = *self.kinds.choose(&mut self.rng)?;
        Some(match kind {
            FaultKind::Kill => FaultPlan::Kill(self.targets()),
            FaultKind::Pause => FaultPlan::Pause(self.targets()),
            FaultKind::Partition => FaultPlan::Partition(Grudge::halves(&self.shuffled())),
            FaultKind::PartitionLeader => FaultPlan::IsolateLeader {
                fallback: self.any_node(),
            },
            FaultKind::MajoritiesRing => {
                FaultPlan::Partition(Grudge::majorities_ring(&self.shuffled()))
            }
            FaultKind::Bridge => FaultPlan::Partition(Grudge::bridge(&self.shuffled())),
        })
    }

    /// The leader (half the time) or a random minority.
    fn targets(&mut self) -> Targets {
        if self.rng.random_bool(0.5) {
            return Targets::Leader {
                fallback: self.any_node(),
            };
        }
        let largest_minority = ((self.nodes.len() - 1) / 2).max(1);
        let size = self.rng.random_range(1..=largest_minority);
        let mut chosen: Vec<NodeName> = self
            .nodes
            .choose_multiple(&mut self.rng, size)
            .cloned()
            .collect();
        chosen.sort();
        Targets::Nodes(chosen)
    }

    fn any_node(&mut self) -> NodeName {
        let index = self.rng.random_range(0..self.nodes.len());
        self.nodes[index].clone()
    }

    fn shuffled(&mut self) -> Vec<NodeName> {
        let mut order = self.nodes.clone();
        order.shuffle(&mut self.rng);
        order
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn nodes(n: usize) -> Vec<NodeName> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn plans(kinds: &str, n: usize, seed: u64, count: usize) -> Vec<FaultPlan> {
        let kinds = kinds.parse().expect("valid kinds");
        let mut planner = Planner::new(&kinds, nodes(n), seed);
        (0..count)
            .map(|_| planner.next_plan().expect("a plan"))
            .collect()
    }

    fn kind_of(plan: &FaultPlan) -> &'static str {
        match plan {
            FaultPlan::Kill(_) => "kill",
            FaultPlan::Pause(_) => "pause",
            FaultPlan::Partition(_) => "partition",
            FaultPlan::IsolateLeader { .. } => "isolate-leader",
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_plans() {
        assert_eq!(plans("all", 5, 42, 200), plans("all", 5, 42, 200));
    }

    #[test]
    fn different_seeds_give_different_plans() {
        assert_ne!(plans("all", 5, 1, 50), plans("all", 5, 2, 50));
    }

    #[test]
    fn only_enabled_kinds_are_drawn_and_each_of_them_is() {
        let drawn: BTreeSet<_> = plans("pause,partition-leader", 3, 7, 100)
            .iter()
            .map(kind_of)
            .collect();
        assert_eq!(drawn, BTreeSet::from(["isolate-leader", "pause"]));
    }

    #[test]
    fn process_faults_hit_the_leader_or_a_minority_of_distinct_nodes() {
        let mut leader_targeted = 0;
        let mut sizes = BTreeSet::new();
        for plan in plans("kill,pause", 5, 3, 300) {
            let (FaultPlan::Kill(targets) | FaultPlan::Pause(targets)) = plan else {
                panic!("unexpected plan {plan:?}");
            };
            match targets {
                Targets::Leader { .. } => leader_targeted += 1,
                Targets::Nodes(chosen) => {
                    let distinct: BTreeSet<_> = chosen.iter().collect();
                    assert_eq!(distinct.len(), chosen.len(), "{chosen:?}");
                    sizes.insert(chosen.len());
                }
            }
        }
        assert!(leader_targeted > 0);
        assert_eq!(
            sizes,
            BTreeSet::from([1, 2]),
            "minorities of five are 1 or 2"
        );
    }

    #[test]
    fn three_node_minorities_are_single_nodes() {
        for plan in plans("kill", 3, 11, 100) {
            if let FaultPlan::Kill(Targets::Nodes(chosen)) = plan {
                assert_eq!(chosen.len(), 1);
            }
        }
    }

    #[test]
    fn partitions_are_drawn_over_varied_node_orders() {
        let grudges: BTreeSet<_> = plans("partition", 5, 5, 100)
            .into_iter()
            .map(|plan| match plan {
                FaultPlan::Partition(grudge) => format!("{}", grudge.to_json()),
                other => panic!("unexpected plan {other:?}"),
            })
            .collect();
        // 5 choose 2 = 10 ways to split five nodes into two and three.
        assert_eq!(grudges.len(), 10);
    }

    #[test]
    fn no_kinds_or_no_nodes_give_no_plan() {
        let mut planner = Planner::new(&FaultKinds::none(), nodes(3), 1);
        assert_eq!(planner.next_plan(), None);
        let mut planner = Planner::new(&FaultKinds::all(), Vec::new(), 1);
        assert_eq!(planner.next_plan(), None);
    }
}
