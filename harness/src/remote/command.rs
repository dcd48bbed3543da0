//! `faultline hosts`: checks, before a run, every host it would put a node on: that it is
//! reachable over SSH with the user's keys and configuration, that its login user is root or
//! has passwordless sudo, that iptables and the programs the harness runs there are
//! installed; and measures each host's clock against this machine's. Every host is checked,
//! at once; each one that is not ready is named with what to fix, and the command exits 3.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use futures::future::join_all;

use super::address::{HostAddr, parse_hosts};
use super::host::{ClockOffset, HostFacts, HostNeeds, ReadyHost};
use super::ssh::{SshError, SshOptions};
use crate::console::{errln, outln};
use crate::system::HostProgram;

/// Check the hosts a run would use.
#[derive(Args, Clone, Debug)]
pub struct HostsArgs {
    /// The hosts, comma-separated, each `[user@]host[:port]` as ssh takes it
    /// (`root@h1,root@h2,root@h3`).
    #[arg(long, value_parser = parse_hosts)]
    pub hosts: std::vec::Vec<HostAddr>,
    /// An ssh configuration file to use instead of `~/.ssh/config` (as `ssh -F`).
    #[arg(long)]
    pub ssh_config: Option<PathBuf>,
    /// How long connecting to a host may take.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
}

/// What every run of the bundled node needs of a host, iptables included (the default mix
/// cuts links).
const EVERY_RUN: HostNeeds = HostNeeds {
    iptables: true,
    program: HostProgram::Copied,
};

/// What one host said.
struct Ready {
    facts: HostFacts,
    clock: ClockOffset,
}

/// Runs `faultline hosts`: exit 0 when every host is ready.
pub async fn run(args: &HostsArgs) -> Result<()> {
    if let Some(config) = &args.ssh_config
        && !config.is_file()
    {
        bail!(
            "the ssh configuration {} (--ssh-config) does not exist",
            config.display()
        );
    }
    let options = SshOptions {
        config_file: args.ssh_config.clone(),
        connect_timeout: args.connect_timeout,
        ..SshOptions::default()
    };
    let answers = join_all(args.hosts.iter().map(|host| check_host(host, &options))).await;
    let mut not_ready = Vec::new();
    for (host, answer) in args.hosts.iter().zip(answers) {
        match answer {
            Ok(ready) => outln!("{host}: ready ({})", describe(&ready)),
            Err(error) => {
                errln!("{host}: not ready: {error}");
                not_ready.push(host.to_string());
            }
        }
    }
    if !not_ready.is_empty() {
        bail!(
            "{} of {} hosts not ready: {}",
            not_ready.len(),
            args.hosts.len(),
            not_ready.join(", ")
        );
    }
    Ok(())
}

/// Connects to `host`, checks it, measures its clock, and disconnects.
async fn check_host(host: &HostAddr, options: &SshOptions) -> Result<Ready, SshError> {
    let ready = ReadyHost::connect(host, options, &EVERY_RUN).await?;
    // A failure to close is not the host's readiness: the master goes when this exits.
    let _ = ready.host.close().await;
    Ok(Ready {
        facts: ready.facts,
        clock: ready.clock,
    })
}

/// `root, iptables, clock +0.120 ms (round trip 0.400 ms)`.
fn describe(ready: &Ready) -> String {
    let who = if ready.facts.root {
        "root".to_string()
    } else {
        format!("{} with passwordless sudo", ready.facts.user)
    };
    format!(
        "{who}, iptables, clock {:+.3} ms from this machine's (round trip {:.3} ms)",
        ready.clock.offset_ms, ready.clock.round_trip_ms
    )
}
