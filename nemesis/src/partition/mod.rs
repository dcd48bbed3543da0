//! The partition code: what every partition backend offers, and the
//! backends themselves.
//!
//! - `mod.rs` (this file): the [`Partitioner`] trait (cut directed links,
//!   heal, tear down), its sibling [`Degrader`] (delay, jitter and drop on
//!   directed links, as a [`Degradation`] says), and [`PartitionError`],
//!   which names no backend;
//! - `iptables.rs`: DROP rules per cut link (needs root; cannot degrade);
//! - `proxy.rs`: a TCP proxy per directed link (needs nothing), which cuts
//!   and is also where degradation happens;
//! - `host_rules.rs`: DROP rules per receiving node on that node's own host, in
//!   a chain of their own, run through a [`host_rules::HostFirewall`] the caller
//!   provides (SSH to remote hosts; cannot degrade);
//! - `host_links.rs`: the [`host_links::HostLinks`] the caller provides to degrade
//!   links between hosts: the proxies of `proxy.rs`, run on each sender's host;
//! - `netns.rs`: the rules of `host_rules.rs` inside the namespaces of nodes
//!   that each have one (a `crate::netns::NodeNetwork`; needs root);
//! - `backend.rs`: [`backend::PartitionBackend`], the one a run picks with
//!   `--partition-backend auto|iptables|proxy`, with the proxy in the path of
//!   iptables when the run degrades links, or the namespaces' rules when the
//!   nodes run in namespaces, or the hosts' rules (and links, to degrade) when
//!   they run on hosts.
//!
//! Dependencies point one way: `backend.rs` uses the backends, which use only
//! this file (`host_rules.rs` the chain names of `iptables.rs`, and `netns.rs`
//! `host_rules.rs` and the iptables runner of `iptables.rs`).

pub(crate) mod backend;
pub(crate) mod host_links;
pub(crate) mod host_rules;
pub(crate) mod iptables;
pub(crate) mod netns;
pub(crate) mod proxy;

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use crate::cluster::NodeName;
use crate::grudge::Link;

/// A failure to change the network.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// A link names a node the backend was not given an address for.
    #[error("no peer address is known for node `{0}`")]
    UnknownNode(NodeName),
    /// The backend failed; `message` says at what, `source` why.
    #[error("{message}")]
    Backend {
        /// What the backend was doing, e.g. "could not add the rules of link n1 -> n2".
        message: String,
        /// The backend's own error.
        #[source]
        source: Box<dyn Error + Send + Sync + 'static>,
    },
    /// A [`Degradation`] that cannot be applied; nothing was changed.
    #[error("invalid degradation: {0}")]
    InvalidDegradation(String),
}

impl PartitionError {
    /// Wraps a backend's own error with what it was doing.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn Error + Send + Sync + 'static>>,
    ) -> Self {
        PartitionError::Backend {
            message: message.into(),
            source: source.into(),
        }
    }
}

/// Something that can cut and heal directed peer links.
pub trait Partitioner: Send + Sync {
    /// Cuts these links, on top of any already cut. Checks every link's
    /// nodes before cutting any; a link from a node to itself is ignored.
    fn cut(&self, links: &[Link]) -> impl Future<Output = Result<(), PartitionError>> + Send;

    /// Restores every link. Healing a whole network is harmless.
    fn heal(&self) -> impl Future<Output = Result<(), PartitionError>> + Send;

    /// Heals and removes everything the backend installed; the backend is
    /// unusable afterwards. Calling it again does nothing.
    fn teardown(&self) -> impl Future<Output = Result<(), PartitionError>> + Send;
}

/// How a degraded link treats what it forwards (see [`Degrader`]). The
/// default degrades nothing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Degradation {
    /// Added to every forwarded chunk.
    pub latency: Duration,
    /// Each chunk waits `latency` plus a uniform draw from `0..=jitter`,
    /// but never overtakes an earlier chunk of its connection: the bytes of
    /// a stream arrive in order.
    pub jitter: Duration,
    /// The probability, per forwarded chunk, that the connection is dropped
    /// instead: reset on both sides, losing whatever it had in flight.
    /// Within `0.0..=1.0`.
    pub drop: f64,
    /// Seeds the jitter and drop draws, so that a run replays them.
    pub seed: u64,
}

impl Degradation {
    /// The longest `latency + jitter` accepted. A link slower than this is
    /// better cut; the bound also keeps deadlines far from overflowing.
    pub const MAX_DELAY: Duration = Duration::from_secs(3600);

    /// Refuses a drop probability outside `0..=1` and a delay beyond
    /// [`Degradation::MAX_DELAY`].
    pub fn check(&self) -> Result<(), PartitionError> {
        if !(0.0..=1.0).contains(&self.drop) {
            return Err(PartitionError::InvalidDegradation(format!(
                "the drop probability {} is not within 0..=1",
                self.drop
            )));
        }
        match self.latency.checked_add(self.jitter) {
            Some(delay) if delay <= Self::MAX_DELAY => Ok(()),
            _ => Err(PartitionError::InvalidDegradation(format!(
                "latency {:?} plus jitter {:?} exceeds {:?}",
                self.latency,
                self.jitter,
                Self::MAX_DELAY
            ))),
        }
    }
}

/// A [`Partitioner`] that can also degrade links: slow down, jitter and
/// drop what they carry.
///
/// A trait of its own because iptables rules can cut but not delay: the
/// bare iptables backend does not implement it, rather than carry a method
/// that always fails. The proxy does, and so does the run's
/// [`backend::PartitionBackend`] (which fails unless started with
/// degradation, the one case where it cannot).
/// [`Partitioner::heal`] restores degraded links to plain forwarding too.
pub trait Degrader: Partitioner {
    /// Degrades these links as `how` says, replacing any degradation they
    /// had, live connections included. Degrading a cut link does not lift
    /// the cut. Checks `how` and every link's nodes before changing any; a
    /// link from a node to itself is ignored.
    fn degrade(
        &self,
        links: &[Link],
        how: &Degradation,
    ) -> impl Future<Output = Result<(), PartitionError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degradations_outside_their_bounds_are_refused_with_the_reason() {
        let refused = |how: Degradation| how.check().unwrap_err().to_string();
        for drop in [-0.1, 1.5, f64::NAN] {
            assert_eq!(
                refused(Degradation {
                    drop,
                    ..Degradation::default()
                }),
                format!("invalid degradation: the drop probability {drop} is not within 0..=1")
            );
        }
        let too_slow = Degradation {
            latency: Degradation::MAX_DELAY,
            jitter: Duration::from_millis(1),
            ..Degradation::default()
        };
        assert_eq!(
            refused(too_slow),
            "invalid degradation: latency 3600s plus jitter 1ms exceeds 3600s"
        );
        let overflowing = Degradation {
            latency: Duration::MAX,
            jitter: Duration::MAX,
            ..Degradation::default()
        };
        assert!(refused(overflowing).contains("exceeds"));
        for drop in [0.0, 0.3, 1.0] {
            let fine = Degradation {
                latency: Duration::from_secs(1),
                jitter: Degradation::MAX_DELAY - Duration::from_secs(1),
                drop,
                seed: 7,
            };
            assert!(fine.check().is_ok(), "{fine:?}");
        }
    }
}
