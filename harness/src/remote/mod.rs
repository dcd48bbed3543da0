//! The control channel to remote hosts (issue 18): what the harness does on a machine it
//! reaches over SSH, for nodes that run there instead of on this machine.
//!
//! - `ssh.rs`: one multiplexed SSH connection per host, commands on it with a time limit,
//!   and every failure classified into an error that names the host and what to fix;
//! - `host.rs`: what the harness does on one host: check that it can (root or passwordless
//!   sudo, iptables), put a file there, start a program detached with a pid file, signal it,
//!   ask whether it lives, copy a directory back, measure the clock's offset, clean up;
//! - `process.rs`: a node started on a host, watched for its exit as a local child is;
//! - `nodes.rs`: the hosts of a run, one node each: set up at once, collected and cleaned at
//!   the end;
//! - `disk.rs` and `disk_server.rs`: a node's power-loss disk on its host, served there by
//!   the harness's own binary (`faultline disk-serve`) and driven from here;
//! - `links.rs` and `link_server.rs`: the proxies of a node's links on its host, for slow and
//!   lossy links, served there by the harness's own binary (`faultline link-serve`);
//! - `command.rs`: `faultline hosts`, which checks every host a run would use.
//!
//! # Why the `openssh` crate, and its native multiplexing
//!
//! The channel is the user's own OpenSSH client, driven by the `openssh` crate (openssh-rust,
//! maintained, 0.11) rather than an SSH implementation in Rust: `ssh` brings the user's
//! configuration (`~/.ssh/config` or `--ssh-config`: users, ports, jump hosts, identity
//! files), their agent and their known hosts, with nothing to configure twice. The crate
//! starts one `ssh` master per host (`ControlMaster`, `BatchMode=yes`, so that a password
//! prompt is a failure and never a hang) in a private directory that it removes at the end,
//! which is what we would otherwise write by hand around `ssh -o ControlMaster=auto -o
//! ControlPersist`; and with its `native-mux` feature it speaks the multiplexing protocol to
//! the master's control socket itself, so a command is one round trip on the open connection
//! with no `ssh` process started per command: a fault (a SIGKILL, an iptables rule) takes a
//! round trip, not a process start and a round trip. Its one shortcoming here, reporting a
//! failed connection as ssh's stderr text, is made up for by `ssh::classify`, which turns
//! that text into an unreachable host, a refused login or a changed host key. One setting of
//! the user's it overrides: it always passes `StrictHostKeyChecking`, and we ask for
//! `accept-new` (a host seen for the first time has its key recorded, a changed key is
//! refused), so a configuration that says `yes` is relaxed for new hosts.
//!
//! Every wait is bounded: connecting by ssh's `ConnectTimeout` (and an outer limit above it),
//! each command by a time limit of its own; a host that stops answering mid-run is noticed
//! by `ServerAliveInterval`.

pub mod command;
mod disk;
pub mod disk_server;
mod host;
pub mod link_server;
mod links;
mod nodes;
mod process;
mod ssh;

#[cfg(test)]
mod tests;

pub use disk::RemoteDisk;
pub use host::{HostNeeds, NODE_PORTS, RemoteSignal};
pub use nodes::{RemoteNodes, UncleanHost};
pub use process::RemoteProcess;
pub use ssh::SshOptions;
