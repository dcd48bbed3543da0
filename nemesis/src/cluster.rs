//! The cluster as the nemesis sees it: named nodes it can kill, restart,
//! power off, pause and resume, and ask for the leader. The harness implements it.

use std::future::Future;

use crate::clock::ClockSetting;
use crate::membership::{ChangeAnswer, MemberChange, Members};

/// A node's name, as the harness and the history spell it: `"n1"`, `"n2"`, ...
pub type NodeName = String;

/// What the nemesis reads of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeView {
    /// It says it leads: a leader cut off from the others may still say so while another
    /// leads a later term.
    pub leads: bool,
    /// The index of the last entry of its log, if the system tells it.
    pub last_log_index: Option<u64>,
}

/// What the nemesis needs from the cluster under test.
///
/// The harness implements this over its node processes; tests use an
/// in-memory fake. Methods may be written as `async fn` in the impl as long
/// as their futures are `Send` (the nemesis may run on its own tokio task).
/// Each method should return promptly: a paused or partitioned cluster must
/// not hang the nemesis, so `leader` should use a short timeout per node.
///
/// An action that finds nothing to do succeeds and does nothing: killing a dead node,
/// restarting a running one, pausing one that is not running, resuming one that is not
/// paused. Two faults may act on one node at once (restart-bridge, in the network lane,
/// crash-restarts a node that a fault applied by hand may have killed or paused), and must
/// not fail for it.
pub trait Cluster: Send + Sync {
    /// Every node's name, in a stable order (the seeded schedule draws from it).
    fn nodes(&self) -> Vec<NodeName>;

    /// SIGKILLs the node's process and reaps it.
    fn kill(&self, node: &str) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Starts a killed node again on the same data dir and addresses.
    fn restart(&self, node: &str) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Cuts the node's power: SIGKILLs its process, reaps it, then drops what it wrote but
    /// did not fsync (with `torn`, a seeded random prefix of each file's unsynced bytes
    /// survives). Returns what was lost, for the history. A cluster without a power-loss
    /// disk under its nodes must fail rather than pretend.
    fn power_off(
        &self,
        node: &str,
        torn: Option<u64>,
    ) -> impl Future<Output = anyhow::Result<serde_json::Value>> + Send;

    /// SIGSTOPs the node's process.
    fn pause(&self, node: &str) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// SIGCONTs a paused node's process.
    fn resume(&self, node: &str) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Sets the node's clocks to `setting` from now on (through libfaketime's control file
    /// of the node; a node restarted later starts with it too) and returns the offset from
    /// true time, in milliseconds, that the node's own clock read right after, if it
    /// answered. A cluster whose nodes do not run under libfaketime must fail rather than
    /// pretend.
    fn set_clock(
        &self,
        node: &str,
        setting: ClockSetting,
    ) -> impl Future<Output = anyhow::Result<Option<f64>>> + Send;

    /// The node the cluster currently reports as leader (from the nodes'
    /// `/status`), or `None` when no leader is known.
    fn leader(&self) -> impl Future<Output = Option<NodeName>> + Send;

    /// What `node` says of itself (in its `/status`), or `None` if it does not answer.
    fn view(&self, node: &str) -> impl Future<Output = Option<NodeView>> + Send;

    /// The members of the cluster as its leader sees them, or `None` if no leader answers.
    /// Only a cluster whose system changes membership can tell (the default cannot).
    fn members(&self) -> impl Future<Output = Option<Members>> + Send {
        async { None }
    }

    /// Asks the leader for `change` and waits, bounded in time, for the answer. Only a
    /// cluster whose system changes membership can (the default refuses).
    fn change_members(&self, change: &MemberChange) -> impl Future<Output = ChangeAnswer> + Send {
        let refused = format!(
            "cannot {} {}: no membership changes",
            change.name(),
            change.node()
        );
        async move { ChangeAnswer::Refused(refused) }
    }

    /// Stops a node that left the cluster, for good: until [`Cluster::enlist`] every action
    /// on it (kill, restart, power off, pause, resume) finds nothing to do, and the harness
    /// does not bring it back at the end of the run.
    fn retire(&self, node: &str) -> impl Future<Output = anyhow::Result<()>> + Send {
        let node = node.to_owned();
        async move { anyhow::bail!("cannot retire {node}: no membership changes") }
    }

    /// Starts a retired node again, on its data dir, so that it can join again: whether it
    /// was retired (a node that is not is left as it is).
    fn enlist(&self, node: &str) -> impl Future<Output = anyhow::Result<bool>> + Send {
        let node = node.to_owned();
        async move { anyhow::bail!("cannot enlist {node}: no membership changes") }
    }
}
