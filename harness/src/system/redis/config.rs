//! The configuration files of a Redis + Sentinel cluster: every node runs a redis-server and,
//! beside it, a redis-sentinel (a common production layout). The first node starts as the
//! primary and the others as its replicas; every sentinel monitors that primary under
//! [`MASTER_NAME`], and a majority of the sentinels must agree that it is down before one of
//! them promotes a replica.
//!
//! Both files are rendered once, before a node's first start, and must stay writable: Sentinel
//! records in its file what it learns (the other sentinels, the replicas, a failover), and it
//! makes a server it reconfigures rewrite its own `replicaof`. A restart keeps them as they are.
//!
//! Addresses and ports are inputs: each node has its own address (127.0.0.x on loopback, or
//! its namespace's) with ports of its own.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

/// The name under which the sentinels monitor the primary, and clients ask for it.
pub const MASTER_NAME: &str = "faultline";

/// How long a sentinel waits for an answer from an instance before it calls it down.
pub const DOWN_AFTER: Duration = Duration::from_millis(500);

/// How long a failover may take before another sentinel may try again.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_millis(2000);

/// Replicas resynchronised with a new primary at a time after a failover.
pub const PARALLEL_SYNCS: u32 = 1;

/// Where one node's redis-server and redis-sentinel listen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAddrs {
    /// The node's own address: both processes bind to it and connect out from it, so that a
    /// firewall rule on addresses cuts exactly the links it names.
    pub ip: IpAddr,
    /// The redis-server's port.
    pub redis_port: u16,
    /// The redis-sentinel's port.
    pub sentinel_port: u16,
}

impl NodeAddrs {
    /// The redis-server's address.
    pub fn redis_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.redis_port)
    }

    /// The redis-sentinel's address.
    pub fn sentinel_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.sentinel_port)
    }
}

/// How many sentinels must agree that the primary is down: a majority of them, so that the
/// sentinels of a minority cut off from the others never fail over on their own.
pub fn quorum(nodes: usize) -> usize {
    nodes / 2 + 1
}

/// `redis.conf` of node `index` (from 0) of `nodes`, with its data in `data_dir`.
///
/// Errors: `index` is not a node, two processes would share an address, a port is 0, or
/// `data_dir` is not UTF-8.
pub fn redis_conf(nodes: &[NodeAddrs], index: usize, data_dir: &Path) -> Result<String> {
    let node = checked(nodes, index)?;
    let mut conf = String::new();
    common(&mut conf, node.ip, node.redis_port, data_dir)?;
    // Durability as Redis ships it: the append-only file, fsynced once a second; no snapshots
    // of their own (a replica's full resync still sends one over the wire).
    conf.push_str("appendonly yes\nappendfsync everysec\nsave \"\"\n");
    if index > 0 {
        let primary = nodes[0];
        writeln!(conf, "replicaof {} {}", primary.ip, primary.redis_port)?;
    }
    Ok(conf)
}

/// `sentinel.conf` of node `index` (from 0) of `nodes`, working in `dir`: it monitors the
/// first node's server.
///
/// Errors: as for [`redis_conf`].
pub fn sentinel_conf(nodes: &[NodeAddrs], index: usize, dir: &Path) -> Result<String> {
    let node = checked(nodes, index)?;
    let primary = nodes[0];
    let mut conf = String::new();
    common(&mut conf, node.ip, node.sentinel_port, dir)?;
    writeln!(
        conf,
        "sentinel monitor {MASTER_NAME} {} {} {}",
        primary.ip,
        primary.redis_port,
        quorum(nodes.len())
    )?;
    writeln!(
        conf,
        "sentinel down-after-milliseconds {MASTER_NAME} {}",
        DOWN_AFTER.as_millis()
    )?;
    writeln!(
        conf,
        "sentinel failover-timeout {MASTER_NAME} {}",
        FAILOVER_TIMEOUT.as_millis()
    )?;
    writeln!(
        conf,
        "sentinel parallel-syncs {MASTER_NAME} {PARALLEL_SYNCS}"
    )?;
    Ok(conf)
}

/// The lines both files share: where to listen and connect from, where to work, and a process
/// title that shows the config file's path.
fn common(conf: &mut String, ip: IpAddr, port: u16, dir: &Path) -> Result<()> {
    writeln!(
        conf,
        "# Written by faultline; Redis and Sentinel rewrite it as they run."
    )?;
    writeln!(conf, "bind {ip}")?;
    // Replication and sentinel links leave from the node's own address too.
    writeln!(conf, "bind-source-addr {ip}")?;
    writeln!(conf, "port {port}")?;
    // Without a password Redis answers only on loopback unless this is off.
    conf.push_str("protected-mode no\ndaemonize no\n");
    writeln!(conf, "dir {}", quoted(dir)?)?;
    // The path of the run's directory in /proc/<pid>/cmdline, where a check for processes
    // left behind by a run looks.
    conf.push_str("proc-title-template \"{title} {listen-addr} {server-mode} {config-file}\"\n");
    Ok(())
}

/// The node at `index`, once every address of `nodes` is known to be usable.
fn checked(nodes: &[NodeAddrs], index: usize) -> Result<NodeAddrs> {
    let Some(&node) = nodes.get(index) else {
        bail!(
            "node {index} of a Redis cluster of {} nodes does not exist (nodes count from 0)",
            nodes.len()
        );
    };
    let mut seen = HashSet::new();
    for (i, node) in nodes.iter().enumerate() {
        for (what, addr) in [
            ("redis-server", node.redis_addr()),
            ("redis-sentinel", node.sentinel_addr()),
        ] {
            if addr.port() == 0 {
                bail!("the {what} of Redis node {i} has port 0: give it a port of its own");
            }
            if !seen.insert(addr) {
                bail!("the {what} of Redis node {i} would listen on {addr}, which is taken");
            }
        }
    }
    Ok(node)
}

/// `path` as a double-quoted string of Redis's configuration syntax.
fn quoted(path: &Path) -> Result<String> {
    let Some(text) = path.to_str() else {
        bail!(
            "{} is not UTF-8, which a Redis configuration file cannot name",
            path.display()
        );
    };
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            // Redis reads `\xHH` inside double quotes as that byte.
            c if c.is_ascii_control() => write!(quoted, "\\x{:02x}", c as u8)?,
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    Ok(quoted)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn loopback(count: u8) -> Vec<NodeAddrs> {
        (1..=count)
            .map(|i| NodeAddrs {
                ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i)),
                redis_port: 16000 + u16::from(i),
                sentinel_port: 26000 + u16::from(i),
            })
            .collect()
    }

    /// The lines of `conf` that are not comments.
    fn lines(conf: &str) -> Vec<&str> {
        conf.lines().filter(|line| !line.starts_with('#')).collect()
    }

    #[test]
    fn the_first_node_is_the_primary_and_the_others_replicate_it() {
        let nodes = loopback(3);
        let first = redis_conf(&nodes, 0, Path::new("/store/nodes/n1/data")).unwrap();
        assert_eq!(
            lines(&first),
            [
                "bind 127.0.0.11",
                "bind-source-addr 127.0.0.11",
                "port 16001",
                "protected-mode no",
                "daemonize no",
                "dir \"/store/nodes/n1/data\"",
                "proc-title-template \"{title} {listen-addr} {server-mode} {config-file}\"",
                "appendonly yes",
                "appendfsync everysec",
                "save \"\"",
            ]
        );
        let third = redis_conf(&nodes, 2, Path::new("/store/nodes/n3/data")).unwrap();
        let third = lines(&third);
        assert!(third.contains(&"bind 127.0.0.13") && third.contains(&"port 16003"));
        assert_eq!(third.last(), Some(&"replicaof 127.0.0.11 16001"));
    }

    #[test]
    fn every_sentinel_monitors_the_first_node_with_a_majority_quorum() {
        let nodes = loopback(5);
        let conf = sentinel_conf(&nodes, 3, Path::new("/store/nodes/n4")).unwrap();
        assert_eq!(
            lines(&conf),
            [
                "bind 127.0.0.14",
                "bind-source-addr 127.0.0.14",
                "port 26004",
                "protected-mode no",
                "daemonize no",
                "dir \"/store/nodes/n4\"",
                "proc-title-template \"{title} {listen-addr} {server-mode} {config-file}\"",
                "sentinel monitor faultline 127.0.0.11 16001 3",
                "sentinel down-after-milliseconds faultline 500",
                "sentinel failover-timeout faultline 2000",
                "sentinel parallel-syncs faultline 1",
            ]
        );
    }

    #[test]
    fn the_quorum_is_a_majority() {
        let quorums: Vec<usize> = (1..=6).map(quorum).collect();
        assert_eq!(quorums, [1, 2, 2, 3, 3, 4]);
    }

    #[test]
    fn namespace_nodes_share_the_usual_ports_on_addresses_of_their_own() {
        let nodes: Vec<NodeAddrs> = (11..=13)
            .map(|host| NodeAddrs {
                ip: IpAddr::V4(Ipv4Addr::new(198, 18, 4, host)),
                redis_port: 6379,
                sentinel_port: 26379,
            })
            .collect();
        let conf = redis_conf(&nodes, 1, Path::new("/d")).unwrap();
        assert!(lines(&conf).contains(&"replicaof 198.18.4.11 6379"));
        let conf = sentinel_conf(&nodes, 2, Path::new("/d")).unwrap();
        assert!(lines(&conf).contains(&"sentinel monitor faultline 198.18.4.11 6379 2"));
    }

    #[test]
    fn ipv6_addresses_are_written_bare() {
        let nodes = [NodeAddrs {
            ip: "::1".parse().unwrap(),
            redis_port: 6379,
            sentinel_port: 26379,
        }];
        let conf = sentinel_conf(&nodes, 0, Path::new("/d")).unwrap();
        let conf = lines(&conf);
        assert!(conf.contains(&"bind ::1"));
        assert!(conf.contains(&"sentinel monitor faultline ::1 6379 1"));
    }

    #[test]
    fn directories_with_spaces_quotes_and_control_characters_are_quoted() {
        let nodes = loopback(1);
        let conf = redis_conf(&nodes, 0, Path::new("/tmp/my \"store\"\\a\tb")).unwrap();
        assert!(lines(&conf).contains(&r#"dir "/tmp/my \"store\"\\a\x09b""#));
    }

    #[test]
    fn unusable_inputs_are_errors_that_say_what_is_wrong() {
        let error = |nodes: &[NodeAddrs], index: usize| {
            redis_conf(nodes, index, Path::new("/d"))
                .unwrap_err()
                .to_string()
        };
        let nodes = loopback(3);
        assert!(error(&nodes, 3).contains("node 3 of a Redis cluster of 3 nodes does not exist"));
        assert!(error(&[], 0).contains("does not exist"));

        let mut zero = nodes.clone();
        zero[1].sentinel_port = 0;
        assert!(error(&zero, 0).contains("redis-sentinel of Redis node 1 has port 0"));

        let mut clash = nodes.clone();
        clash[2].ip = clash[0].ip;
        clash[2].redis_port = clash[0].sentinel_port;
        assert!(
            error(&clash, 0)
                .contains("redis-server of Redis node 2 would listen on 127.0.0.11:26001")
        );

        let mut same = nodes;
        same[0].sentinel_port = same[0].redis_port;
        assert!(error(&same, 1).contains("redis-sentinel of Redis node 0"));
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_that_is_not_utf8_is_an_error() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;

        let dir = Path::new(OsStr::from_bytes(b"/tmp/\xff"));
        let error = sentinel_conf(&loopback(1), 0, dir).unwrap_err();
        assert!(error.to_string().contains("is not UTF-8"));
    }
}
