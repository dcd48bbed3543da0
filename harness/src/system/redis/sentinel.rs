//! What the harness asks a sentinel about the primary it monitors: which failover it is at
//! (its configuration epoch, the term of a Redis cluster) and whether it could fail over now.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use redis::Value;

use super::client::connect;
use super::config::MASTER_NAME;

/// What one sentinel knows of the primary it monitors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelView {
    /// The server it takes for the primary.
    pub primary: SocketAddr,
    /// The epoch of the last failover it knows of (0 before any): it grows with every
    /// failover, as a Raft term does with every election.
    pub epoch: u64,
    /// How many other sentinels it knows.
    pub other_sentinels: usize,
    /// How many replicas of the primary it knows.
    pub replicas: usize,
    /// Whether enough sentinels are reachable to agree on a failover and authorise it
    /// (`SENTINEL CKQUORUM`).
    pub quorum: bool,
}

impl SentinelView {
    /// Whether a sentinel with this view can fail over a cluster of `nodes` at once: it knows
    /// every other sentinel and every replica, and has its quorum. A sentinel learns the
    /// replicas from the primary's `INFO` (every 10 s) and the other sentinels from their
    /// hellos (every 2 s); a fault before that finds it unable to fail over.
    pub fn can_fail_over(&self, nodes: usize) -> bool {
        let others = nodes.saturating_sub(1);
        self.quorum && self.other_sentinels == others && self.replicas == others
    }
}

/// What the sentinel at `addr` knows of the primary: errors when it does not answer within
/// `timeout` or monitors no primary by Faultline's name.
pub async fn view(addr: SocketAddr, timeout: Duration) -> Result<SentinelView> {
    let mut connection = connect(addr, timeout, timeout)
        .await
        .with_context(|| format!("connecting to the redis-sentinel at {addr}"))?;
    let master: HashMap<String, String> = redis::cmd("SENTINEL")
        .arg("MASTER")
        .arg(MASTER_NAME)
        .query_async(&mut connection)
        .await
        .with_context(|| format!("SENTINEL MASTER {MASTER_NAME} at {addr}"))?;
    let number = |field: &str| -> Result<u64> {
        let text = master
            .get(field)
            .ok_or_else(|| anyhow!("SENTINEL MASTER at {addr} has no `{field}`"))?;
        text.parse()
            .with_context(|| format!("`{field}` of SENTINEL MASTER at {addr} is {text:?}"))
    };
    // CKQUORUM answers an error when the quorum cannot be reached: that is a `false`, not a
    // failure to ask.
    let quorum: redis::RedisResult<Value> = redis::cmd("SENTINEL")
        .arg("CKQUORUM")
        .arg(MASTER_NAME)
        .query_async(&mut connection)
        .await;
    let quorum = match quorum {
        Ok(_) => true,
        Err(error) if error.code().is_some() => false,
        Err(error) => {
            return Err(error).with_context(|| format!("SENTINEL CKQUORUM at {addr}"));
        }
    };
    let ip = master
        .get("ip")
        .and_then(|ip| ip.parse().ok())
        .with_context(|| format!("SENTINEL MASTER at {addr} names no primary's ip"))?;
    Ok(SentinelView {
        primary: SocketAddr::new(ip, number("port")? as u16),
        epoch: number("config-epoch")?,
        other_sentinels: number("num-other-sentinels")? as usize,
        replicas: number("num-slaves")? as usize,
        quorum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_can_fail_over_once_it_knows_everyone_and_has_its_quorum() {
        let view = SentinelView {
            primary: "127.0.0.11:6379".parse().unwrap(),
            epoch: 0,
            other_sentinels: 2,
            replicas: 2,
            quorum: true,
        };
        assert!(view.can_fail_over(3));
        assert!(!view.can_fail_over(5));
        assert!(
            !SentinelView {
                replicas: 1,
                ..view.clone()
            }
            .can_fail_over(3)
        );
        assert!(
            !SentinelView {
                quorum: false,
                ..view
            }
            .can_fail_over(3)
        );
    }
}
