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

use super::host::{Cleaned, ClockOffset, HostFacts, HostNeeds, ReadyHost, RemoteHost};
use super::ssh::{SshError, SshOptions, SshSession};
use crate::console::{errln, outln};
use crate::host_addr::{HostAddr, parse_hosts};
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
    /// First remove what runs left on the hosts (a harness that was killed leaves its nodes
    /// running): kill every node under /var/tmp/faultline, delete Faultline's iptables chains
    /// and the runs' directories. Runs still going on those hosts are stopped too.
    #[arg(long)]
    pub clean: bool,
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
    if args.clean {
        let cleaned = join_all(args.hosts.iter().map(|host| clean_host(host, &options))).await;
        let mut failed = Vec::new();
        for (host, cleaned) in args.hosts.iter().zip(cleaned) {
            match cleaned {
                Ok(cleaned) => outln!("{host}: cleaned ({})", describe_cleaned(&cleaned)),
                Err(error) => {
                    errln!("{host}: not cleaned: {error}");
                    failed.push(host.to_string());
                }
            }
        }
        if !failed.is_empty() {
            bail!(
                "{} of {} hosts not cleaned: {}",
                failed.len(),
                args.hosts.len(),
                failed.join(", ")
            );
        }
    }
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

/// Connects to `host` and removes what runs left there ([`RemoteHost::clean_leftovers`]).
async fn clean_host(host: &HostAddr, options: &SshOptions) -> Result<Cleaned, SshError> {
    let session = SshSession::connect(host, options).await?;
    let (remote, facts) = RemoteHost::check(session, &EVERY_RUN).await?;
    let cleaned = match facts.require_root(host) {
        Ok(()) => remote.clean_leftovers().await,
        Err(error) => Err(error),
    };
    let _ = remote.close().await;
    cleaned
}

/// `killed 3 processes, removed 1 chain and 1 directory (/var/tmp/faultline/412-1733...)`.
fn describe_cleaned(cleaned: &Cleaned) -> String {
    if cleaned == &Cleaned::default() {
        return "nothing was left".to_string();
    }
    let count = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let mut text = format!(
        "killed {}, removed {} and {}",
        count(cleaned.killed, "process", "processes"),
        count(cleaned.chains.len(), "chain", "chains"),
        count(cleaned.dirs.len(), "directory", "directories")
    );
    if !cleaned.dirs.is_empty() {
        text.push_str(&format!(": {}", cleaned.dirs.join(", ")));
    }
    text
}

/// `root, iptables, clock +0.120 ms (round trip 0.400 ms)`.
fn describe(ready: &Ready) -> String {
    let who = if ready.facts.root {
        "root".to_string()
    } else {
        format!("{} with passwordless sudo", ready.facts.user)
    };
    let mut text = format!(
        "{who}, iptables, clock {:+.3} ms from this machine's (round trip {:.3} ms)",
        ready.clock.offset_ms, ready.clock.round_trip_ms
    );
    if !ready.facts.leftovers.is_empty() {
        text.push_str(&format!(
            "; directories of other runs, live or dead: {} (--clean removes them)",
            ready.facts.leftovers.join(", ")
        ));
    }
    text
}
