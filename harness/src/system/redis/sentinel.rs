//! What the harness asks a sentinel about the primary it monitors: which primary it names,
//! at which failover (its configuration epoch, the term of a Redis cluster), and whether it
//! could fail over now.

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
}

impl SentinelView {
    /// Whether it knows every other sentinel and every replica of a cluster of `nodes`. A
    /// sentinel learns the replicas from the primary's `INFO` (every 10 s) and the other
    /// sentinels from their hellos (every 2 s); before that, a fault finds it unable to fail
    /// over.
    pub fn knows_everyone(&self, nodes: usize) -> bool {
        let others = nodes.saturating_sub(1);
        self.other_sentinels == others && self.replicas == others
    }
}

/// What the sentinel at `addr` knows of the primary (`SENTINEL MASTER`): errors when it does
/// not answer within `timeout` or monitors no primary by Faultline's name.
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
    let ip = master
        .get("ip")
        .and_then(|ip| ip.parse().ok())
        .with_context(|| format!("SENTINEL MASTER at {addr} names no primary's ip"))?;
    Ok(SentinelView {
        primary: SocketAddr::new(ip, number("port")? as u16),
        epoch: number("config-epoch")?,
        other_sentinels: number("num-other-sentinels")? as usize,
        replicas: number("num-slaves")? as usize,
    })
}

/// Whether the sentinel at `addr` reaches enough sentinels to agree on a failover and
/// authorise it (`SENTINEL CKQUORUM`); false too when it does not answer within `timeout`.
pub async fn has_quorum(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(mut connection) = connect(addr, timeout, timeout).await else {
        return false;
    };
    let answer: redis::RedisResult<Value> = redis::cmd("SENTINEL")
        .arg("CKQUORUM")
        .arg(MASTER_NAME)
        .query_async(&mut connection)
        .await;
    answer.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_knows_everyone_once_it_has_heard_of_every_sentinel_and_replica() {
        let view = SentinelView {
            primary: "127.0.0.11:6379".parse().unwrap(),
            epoch: 0,
            other_sentinels: 2,
            replicas: 2,
        };
        assert!(view.knows_everyone(3));
        assert!(!view.knows_everyone(5));
        let missing_a_replica = SentinelView {
            replicas: 1,
            ..view.clone()
        };
        assert!(!missing_a_replica.knows_everyone(3));
        let missing_a_sentinel = SentinelView {
            other_sentinels: 1,
            ..view
        };
        assert!(!missing_a_sentinel.knows_everyone(3));
    }
}
