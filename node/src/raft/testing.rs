//! Helpers for the core's unit tests: building nodes and messages, running Readies, and a
//! tiny lossless in-memory cluster.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;

use super::{
    Config, Entry, HardState, Index, Message, MessageBody, NodeId, Payload, Raft, Ready, Role, Term,
};

/// A command entry whose payload names its position.
pub fn entry(index: Index, term: Term) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Command(Bytes::from(format!("{index}@{term}"))),
    }
}

/// A log from index 1 with these terms.
pub fn entries(terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(at, &term)| entry(at as Index + 1, term))
        .collect()
}

/// Defaults without pre-vote and check-quorum, so that single rules can be tested alone.
pub fn plain_config(id: NodeId, voters: &[NodeId]) -> Config {
    Config {
        pre_vote: false,
        check_quorum: false,
        ..Config::new(id, voters.to_vec())
    }
}

/// A node recovered at `term` with a log of these terms.
pub fn recovered(config: Config, term: Term, log_terms: &[Term]) -> Raft {
    let hard_state = HardState {
        term,
        vote: None,
        commit: 0,
    };
    Raft::new(config, hard_state, None, entries(log_terms)).expect("valid recovered state")
}

pub fn message(from: NodeId, to: NodeId, term: Term, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

/// `from`'s acknowledgement to leader 1 that its log matches through `match_index`.
pub fn ack(from: NodeId, term: Term, match_index: Index) -> Message {
    let body = MessageBody::AppendEntriesResponse {
        success: true,
        match_index,
        conflict_index: 0,
        conflict_term: None,
        read_round: 0,
    };
    message(from, 1, term, body)
}

/// One Ready, as the shell would handle it (persist, send, apply, advance).
pub fn cycle(raft: &mut Raft) -> Ready {
    let ready = raft.ready();
    raft.advance();
    ready
}

/// Runs Readies until there are none; returns their messages.
pub fn drain(raft: &mut Raft) -> Vec<Message> {
    let mut messages = Vec::new();
    for _ in 0..100 {
        if !raft.has_ready() {
            break;
        }
        messages.extend(cycle(raft).messages);
    }
    messages
}

/// Makes `raft` leader of the next term by timing out and granting its requests.
pub fn elect(raft: &mut Raft) {
    for _ in 0..100 {
        if raft.role != Role::Follower {
            break;
        }
        raft.tick();
    }
    let id = raft.config.id;
    for role in [Role::PreCandidate, Role::Candidate] {
        for peer in raft.peer_ids() {
            if raft.role != role {
                break;
            }
            let (term, body) = match role {
                Role::PreCandidate => (
                    raft.term + 1,
                    MessageBody::PreVoteResponse { granted: true },
                ),
                _ => (
                    raft.term,
                    MessageBody::RequestVoteResponse { granted: true },
                ),
            };
            raft.step(message(peer, id, term, body));
        }
    }
    assert_eq!(raft.role, Role::Leader);
    drain(raft);
}

/// Node 1 leading nodes 1 to 3 with its no-op committed, and [`commit_everything`] to
/// commit what it appends later.
pub fn leader_of_three() -> (Raft, fn(&mut Raft)) {
    let mut raft = recovered(plain_config(1, &[1, 2, 3]), 1, &[1]);
    elect(&mut raft);
    commit_everything(&mut raft);
    (raft, commit_everything)
}

/// Followers 2 and 3 acknowledge everything leader 1 holds, until it appends nothing more
/// (a change of voters appends C_new once the joint configuration commits).
pub fn commit_everything(raft: &mut Raft) {
    for _ in 0..10 {
        let (last, term) = (raft.log.last_index(), raft.term);
        for peer in [2, 3] {
            raft.step(ack(peer, term, last));
        }
        drain(raft);
        if raft.log.last_index() == last {
            return;
        }
    }
}

/// An in-memory cluster with instant, lossless delivery and links that can be cut.
pub struct Cluster {
    pub nodes: BTreeMap<NodeId, Raft>,
    cut: HashSet<(NodeId, NodeId)>,
}

impl Cluster {
    /// Nodes `1..=size`, each configured by `adjust` from the defaults.
    pub fn new(size: u64, adjust: impl Fn(&mut Config)) -> Cluster {
        let voters: Vec<NodeId> = (1..=size).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, voters.clone());
                adjust(&mut config);
                (id, recovered(config, 0, &[]))
            })
            .collect();
        Cluster {
            nodes,
            cut: HashSet::new(),
        }
    }

    /// Starts node `id` as one that joins the running cluster: it knows no configuration,
    /// and learns it from the leader once a change adds it.
    pub fn join(&mut self, id: NodeId) {
        let config = Config::new(id, Vec::new());
        self.nodes.insert(id, recovered(config, 0, &[]));
    }

    pub fn node(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).expect("node in cluster")
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&mut self, id: NodeId) {
        for &other in self.nodes.keys() {
            self.cut.insert((id, other));
            self.cut.insert((other, id));
        }
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut_link(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Runs Readies and delivers messages until nothing moves.
    pub fn settle(&mut self) {
        for _ in 0..1000 {
            let mut in_flight = Vec::new();
            for raft in self.nodes.values_mut() {
                in_flight.extend(drain(raft));
            }
            if in_flight.is_empty() {
                return;
            }
            for msg in in_flight {
                if !self.cut.contains(&(msg.from, msg.to))
                    && let Some(raft) = self.nodes.get_mut(&msg.to)
                {
                    raft.step(msg);
                }
            }
        }
        panic!("the cluster did not settle");
    }

    /// Ticks `id` until it campaigns, then lets the election play out.
    pub fn elect(&mut self, id: NodeId) {
        for _ in 0..100 {
            if self.node(id).role != Role::Follower {
                break;
            }
            self.node(id).tick();
        }
        self.settle();
    }

    /// Ticks every node `ticks` times, settling after each tick.
    pub fn tick_all(&mut self, ticks: u32) {
        for _ in 0..ticks {
            for raft in self.nodes.values_mut() {
                raft.tick();
            }
            self.settle();
        }
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|raft| raft.role == Role::Leader)
            .map(|raft| raft.config.id)
            .collect()
    }
}
