//! Ports for the nodes, chosen so that nothing else takes them while a node is down.
//!
//! A node is killed and restarted on the same ports many times in a run. A port the kernel
//! hands out as ephemeral (`bind(ip, 0)`, or the source port of an outgoing connection) can
//! be handed out again to anyone while the node is down: the proxy's connections leave from
//! the node's own address, and one of them holding the node's peer port would keep the node
//! from ever starting again. So node ports come from below the kernel's ephemeral range,
//! where the kernel never picks ports by itself.

use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;

use anyhow::{Result, bail};
use rand::Rng;

/// Where the kernel picks ephemeral ports when `/proc` does not say (Linux's default).
const DEFAULT_EPHEMERAL: Range<u16> = 32768..61000;
/// The lowest port handed to a node: below it live well-known services.
const LOWEST: u16 = 10000;
/// Random ports tried before giving up.
const ATTEMPTS: usize = 1000;

/// `N` distinct ports on `ip`, free now and outside the ephemeral range.
pub fn reserve_ports<const N: usize>(ip: Ipv4Addr) -> Result<[u16; N]> {
    let candidates = node_port_range(ephemeral_range());
    let mut rng = rand::rng();
    // Held until every port is chosen, so that no port is chosen twice.
    let mut held = Vec::with_capacity(N);
    for _ in 0..ATTEMPTS {
        if held.len() == N {
            break;
        }
        if let Ok(listener) = TcpListener::bind((ip, rng.random_range(candidates.clone()))) {
            held.push(listener);
        }
    }
    if held.len() < N {
        bail!(
            "finding {N} free ports on {ip} between {} and {}: only {} of {ATTEMPTS} tries were free",
            candidates.start,
            candidates.end - 1,
            held.len()
        );
    }
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&held) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// The kernel's ephemeral range (`net.ipv4.ip_local_port_range`), end exclusive.
fn ephemeral_range() -> Range<u16> {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = text.split_whitespace().map(str::parse::<u16>);
    match (bounds.next(), bounds.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => low..high.saturating_add(1),
        _ => DEFAULT_EPHEMERAL,
    }
}

/// Ports for nodes: below the ephemeral range if there is room there, else above it.
fn node_port_range(ephemeral: Range<u16>) -> Range<u16> {
    if ephemeral.start >= LOWEST + 1000 {
        LOWEST..ephemeral.start
    } else if ephemeral.end <= u16::MAX - 1000 {
        ephemeral.end..u16::MAX
    } else {
        // A machine that made every port ephemeral: take what the whole range gives.
        LOWEST..u16::MAX
    }
}

#[cfg(test)]
mod tests {
    // No `use super::*`: this file is also included by a bench built without the test
    // harness, where the test functions below are dropped and the import would be unused.

    #[test]
    fn node_ports_are_distinct_and_never_ephemeral() {
        // Whether they are still free afterwards is not asserted: this test also runs inside
        // integration tests (tests/redis_client.rs includes this file) beside real servers,
        // and anything on the machine may take a port once reserve_ports let it go.
        let ip = super::Ipv4Addr::LOCALHOST;
        let ports: [u16; 20] = super::reserve_ports(ip).unwrap();
        let ephemeral = super::ephemeral_range();
        for &port in &ports {
            assert!(!ephemeral.contains(&port), "{port} is ephemeral");
            assert!(port >= super::LOWEST);
        }
        let mut distinct = ports.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len());
    }

    #[test]
    fn node_ports_go_above_an_ephemeral_range_that_starts_low() {
        assert_eq!(super::node_port_range(32768..61000), 10000..32768);
        assert_eq!(super::node_port_range(1024..50000), 50000..u16::MAX);
        assert_eq!(super::node_port_range(1024..u16::MAX), 10000..u16::MAX);
    }
}
