//! Drifting-leader, the fault aimed at lease reads that leave no margin for clock drift
//! (`lease-no-drift`): the leader's clock runs slow, within what a lease's margin must cover,
//! and the leader is cut off, so that its lease is counted on a slow clock while the others'
//! elections are counted on true time. See
//! [`FaultPlan::DriftingLeader`](crate::FaultPlan::DriftingLeader) for the round.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{LEADER_POLL, Nemesis, NemesisError, wait_until};
use crate::cluster::{Cluster, NodeName};
use crate::event::EventName;
use crate::kind::Lane;
use crate::partition::Degrader;
use crate::schedule::{Flap, LEASE_DRIFT_RATE};

/// How long the leader runs on its slowed clock before it is cut off: long enough for the
/// node to have read the new rate (the bundled node reads it every 5 ms). From then on its
/// leases, the one in force included, run out on the slow clock: a lease is counted in ticks.
const LEASE_TAKEN: Duration = Duration::from_millis(30);

/// How long the old leader stays cut off once another node leads: the new leader was elected
/// at least a shortest election timeout (150 ms, less a tick) after the cut, and the old
/// leader's lease ends at the latest a third of one later (its 150 ms on the slowed clock are
/// 200 ms of true time), so
/// any lease it held has run out by then and the heal cannot cut a stale read short.
const LEASE_RUNS_OUT: Duration = Duration::from_millis(80);

impl<C: Cluster, P: Degrader> Nemesis<C, P> {
    /// Drifting-leader's rounds until `fault_ends`: once every node runs and has caught up,
    /// slow the leader's clock and cut it off; once another node leads and the old lease has
    /// run out, heal the partition and the clock; wait the round's calm. What is in force when
    /// the time is up stays, for the lane to heal.
    pub(super) async fn drifting_leader(
        &self,
        rounds: Vec<Flap>,
        fault_ends: Instant,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<(), NemesisError> {
        let lane = Lane::Clock;
        for round in rounds {
            // A node down or paused (the other lanes', just healed) lags, or cannot vote:
            // the election comes late, after the lease it is meant to meet.
            if !self.await_settled(fault_ends, stopped).await {
                return Ok(());
            }
            let leader = self.slow_and_cut_off_leader(lane, round.fallback).await?;
            if self
                .await_leader_other_than(Some(&leader), LEADER_POLL, fault_ends, stopped)
                .await
                .is_none()
            {
                return Ok(());
            }
            if !wait_until(Instant::now() + LEASE_RUNS_OUT, fault_ends, stopped).await {
                return Ok(());
            }
            self.stop(lane).await?;
            if !wait_until(Instant::now() + round.calm, fault_ends, stopped).await {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Slows the clock of the leader of the moment (or else `fallback`) to
    /// [`LEASE_DRIFT_RATE`] (a `skew-clock` event), lets it renew its lease on that clock
    /// ([`LEASE_TAKEN`]), and cuts it off from every other node; returns that node. Both
    /// stay in force in `lane` until healed.
    pub(super) async fn slow_and_cut_off_leader(
        &self,
        lane: Lane,
        fallback: NodeName,
    ) -> Result<NodeName, NemesisError> {
        let leader = self.cluster.leader().await.unwrap_or(fallback);
        let slow = self
            .clock_of(&leader)
            .with_rate(Instant::now(), LEASE_DRIFT_RATE);
        self.set_clock(lane, &leader, EventName::SkewClock, slow)
            .await?;
        tokio::time::sleep(LEASE_TAKEN).await;
        self.isolate(lane, &leader).await?;
        Ok(leader)
    }
}
