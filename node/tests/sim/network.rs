//! The simulated network: every message gets its own delay (so messages reorder), may be
//! lost or duplicated, and links can be cut one way or both.

use std::collections::{BTreeMap, HashSet};

use faultline_node::raft::{Message, NodeId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How badly the network behaves.
#[derive(Clone, Copy, Debug)]
pub struct NetworkFaults {
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplication: f64,
    /// Each copy arrives 1..=max_delay ticks after it was sent.
    pub max_delay: u64,
}

pub struct Network {
    /// Keyed by (delivery tick, send sequence), so delivery order is deterministic.
    in_flight: BTreeMap<(u64, u64), Message>,
    sequence: u64,
    cut: HashSet<(NodeId, NodeId)>,
    pub faults: NetworkFaults,
}

impl Network {
    pub fn new(faults: NetworkFaults) -> Network {
        Network {
            in_flight: BTreeMap::new(),
            sequence: 0,
            cut: HashSet::new(),
            faults,
        }
    }

    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to))
    }

    pub fn send(&mut self, msg: Message, now: u64, rng: &mut ChaCha8Rng) {
        if rng.random_bool(self.faults.loss) {
            return;
        }
        if rng.random_bool(self.faults.duplication) {
            self.enqueue(msg.clone(), now, rng);
        }
        self.enqueue(msg, now, rng);
    }

    fn enqueue(&mut self, msg: Message, now: u64, rng: &mut ChaCha8Rng) {
        let at = now + rng.random_range(1..=self.faults.max_delay);
        self.sequence += 1;
        self.in_flight.insert((at, self.sequence), msg);
    }

    /// The messages that arrive by `now`, minus those whose link is cut on arrival.
    pub fn due(&mut self, now: u64) -> Vec<Message> {
        let later = self.in_flight.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut self.in_flight, later);
        due.into_values()
            .filter(|msg| !self.is_cut(msg.from, msg.to))
            .collect()
    }

    /// Cuts the link from `from` to `to` only (an asymmetric fault).
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    /// Cuts every link between `side` and the other `nodes`, both ways.
    pub fn partition(&mut self, side: &[NodeId], nodes: &[NodeId]) {
        for &a in side {
            for &b in nodes.iter().filter(|node| !side.contains(node)) {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }
}
