//! `faultline`: the command-line harness. Each subcommand lives in its own module; this file
//! only dispatches.

mod check;
mod clocks;
mod cluster;
mod completeness;
mod console;
mod election_safety;
mod faults;
mod fingerprints;
mod host_addr;
mod node_status;
mod ports;
mod remote;
mod replicas;
mod report;
mod results;
mod run;
mod serve;
mod stalls;
mod status_log;
mod status_sample;
mod store;
mod suite;
mod system;
mod toml_input;
mod wording;

use crate::console::errln;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use faultline_checker::ERROR_EXIT_CODE;
use tracing_subscriber::EnvFilter;

/// Jepsen-style chaos testing for Linux.
#[derive(Parser)]
#[command(name = "faultline", version)]
enum Cli {
    /// Start a cluster, run clients and faults against it, and check the history.
    // Boxed: its flags outweigh every other command's.
    Test(Box<run::TestArgs>),
    /// Check recorded histories for linearizability (and lost writes, for list-append).
    Check(check::CheckArgs),
    /// Build a run's report (report.html, latency.png, rate.png) from its directory.
    Report(report::ReportArgs),
    /// Run a matrix of tests from a TOML file, one after another; write JUnit XML for CI.
    Suite(suite::SuiteArgs),
    /// Browse the stored runs, their reports and files over HTTP.
    Serve(serve::ServeArgs),
    /// Check the hosts a run would put nodes on, over SSH: reachable, root or passwordless
    /// sudo, iptables; and each host's clock against this machine's.
    Hosts(remote::command::HostsArgs),
    /// Serve a power-loss disk for a node on this host (the harness runs it over SSH).
    #[command(hide = true)]
    DiskServe(remote::disk_server::DiskServeArgs),
    /// Proxy a node's links to its peers on this host (the harness runs it over SSH).
    #[command(hide = true)]
    LinkServe(remote::link_server::LinkServeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version are not errors; a bad command line is (exit codes 0 to 2 are
            // verdicts).
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(ERROR_EXIT_CODE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli {
        Cli::Test(args) => block_on("test", async {
            Ok(ExitCode::from(run::run(&args).await?.verdict.exit_code()))
        }),
        Cli::Check(args) => check::run(&args),
        Cli::Suite(args) => block_on("suite", suite::run(&args)),
        Cli::Serve(args) => block_on("serve", async {
            serve::run(&args).await.map(|()| ExitCode::SUCCESS)
        }),
        Cli::Report(args) => report::command(&args),
        Cli::DiskServe(args) => match remote::disk_server::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("faultline disk-serve: error: {error:#}");
                ExitCode::from(ERROR_EXIT_CODE)
            }
        },
        Cli::LinkServe(args) => block_on("link-serve", async {
            remote::link_server::run(&args)
                .await
                .map(|()| ExitCode::SUCCESS)
        }),
        Cli::Hosts(args) => block_on("hosts", async {
            remote::command::run(&args)
                .await
                .map(|()| ExitCode::SUCCESS)
        }),
    }
}

/// Runs an async subcommand with logs on stderr (`RUST_LOG`, warnings by default); a harness
/// error is exit code 3, with the reason.
fn block_on(command: &str, work: impl Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            errln!("faultline {command}: cannot start the async runtime: {error}");
            return ExitCode::from(ERROR_EXIT_CODE);
        }
    };
    let code = match runtime.block_on(work) {
        Ok(code) => code,
        Err(error) => {
            errln!("faultline {command}: error: {error:#}");
            ExitCode::from(ERROR_EXIT_CODE)
        }
    };
    // Not a plain drop, which waits for every blocking task: a run stopped by Ctrl-C or
    // SIGTERM while it checked its history leaves the check running on one, and must exit now.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}
