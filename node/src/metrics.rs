//! Prometheus metrics, served as text on `GET /metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::raft::{Role, Status};

/// The `role` label of `faultline_role`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabel {
    role: &'static str,
}

/// The `reason` label of `faultline_peer_refused` (see [`crate::peer_auth::Refusal::reason`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

const ROLES: [Role; 4] = [
    Role::Follower,
    Role::PreCandidate,
    Role::Candidate,
    Role::Leader,
];

/// The role's name as a metric label.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

/// Every metric the node exports. Cheap to update (atomics) from the Raft loop.
pub struct Metrics {
    registry: Registry,
    role: Family<RoleLabel, Gauge>,
    term: Gauge,
    commit_index: Gauge,
    applied_index: Gauge,
    elections: Counter,
    proposals: Counter,
    reads: Counter,
    reads_under_lease: Counter,
    ticks: Counter,
    fsync_seconds: Histogram,
    peer_refused: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("faultline");
        let role = Family::<RoleLabel, Gauge>::default();
        registry.register(
            "role",
            "1 for this node's current Raft role, 0 for the others",
            role.clone(),
        );
        let term = Gauge::default();
        registry.register("term", "Current Raft term", term.clone());
        let commit_index = Gauge::default();
        registry.register(
            "commit_index",
            "Highest log index known to be committed",
            commit_index.clone(),
        );
        let applied_index = Gauge::default();
        registry.register(
            "applied_index",
            "Highest log index applied to the KV store",
            applied_index.clone(),
        );
        let elections = Counter::default();
        registry.register(
            "elections",
            "Elections this node started",
            elections.clone(),
        );
        let proposals = Counter::default();
        registry.register(
            "proposals",
            "Writes proposed to Raft on this node",
            proposals.clone(),
        );
        let reads = Counter::default();
        registry.register(
            "reads",
            "Linearizable reads started on this node",
            reads.clone(),
        );
        let reads_under_lease = Counter::default();
        registry.register(
            "reads_under_lease",
            "Linearizable reads this node served as leader under its lease, without a round",
            reads_under_lease.clone(),
        );
        let ticks = Counter::default();
        registry.register(
            "raft_ticks",
            "Ticks of the Raft loop's clock (every --tick of it; a clock fault makes it run fast \
             or slow)",
            ticks.clone(),
        );
        // 50 µs .. ~0.4 s
        let fsync_seconds = Histogram::new(exponential_buckets(50e-6, 2.0, 14));
        registry.register(
            "fsync_seconds",
            "Latency of WAL fsyncs",
            fsync_seconds.clone(),
        );
        let peer_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "peer_refused",
            "Peer requests refused (wrong token, cluster id or sender, too large, undecodable)",
            peer_refused.clone(),
        );
        Metrics {
            registry,
            role,
            term,
            commit_index,
            applied_index,
            elections,
            proposals,
            reads,
            reads_under_lease,
            ticks,
            fsync_seconds,
            peer_refused,
        }
    }
}

impl Metrics {
    /// Mirrors the Raft core's status into the gauges.
    pub fn observe_status(&self, status: &Status) {
        for role in ROLES {
            let value = i64::from(role == status.role);
            self.role
                .get_or_create(&RoleLabel {
                    role: role_name(role),
                })
                .set(value);
        }
        self.term.set(status.term as i64);
        self.commit_index.set(status.commit as i64);
        self.applied_index.set(status.applied as i64);
        let counted = self.elections.get();
        if status.elections > counted {
            self.elections.inc_by(status.elections - counted);
        }
        let counted = self.reads_under_lease.get();
        if status.reads_under_lease > counted {
            self.reads_under_lease
                .inc_by(status.reads_under_lease - counted);
        }
    }

    /// Counts `n` ticks of the Raft loop.
    pub fn ticked(&self, n: u32) {
        self.ticks.inc_by(u64::from(n));
    }

    pub fn proposal(&self) {
        self.proposals.inc();
    }

    pub fn read(&self) {
        self.reads.inc();
    }

    pub fn fsync(&self, took: Duration) {
        self.fsync_seconds.observe(took.as_secs_f64());
    }

    /// Counts a refused peer request.
    pub fn peer_refused(&self, reason: &'static str) {
        self.peer_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
