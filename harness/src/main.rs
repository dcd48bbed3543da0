//! `faultline`: the command-line harness. Each subcommand lives in its own module; this file
//! only dispatches.

mod check;
mod cluster;
mod report;
mod run;
mod status_log;
mod store;

use std::process::ExitCode;

use clap::Parser;
use faultline_checker::ERROR_EXIT_CODE;
use tracing_subscriber::EnvFilter;

/// Jepsen-style chaos testing for Linux.
#[derive(Parser)]
#[command(name = "faultline", version)]
enum Cli {
    /// Start a cluster, run clients and faults against it, and check the history.
    Test(run::TestArgs),
    /// Check recorded histories for linearizability (and lost writes, for list-append).
    Check(check::CheckArgs),
    /// Build a run's report (report.html, latency.png, rate.png) from its directory.
    Report(report::ReportArgs),
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
        Cli::Test(args) => test(&args),
        Cli::Check(args) => check::run(&args),
        Cli::Report(args) => report::command(&args),
    }
}

/// `faultline test`: the verdict is the exit code; a harness error is 3, with the reason.
fn test(args: &run::TestArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("faultline test: cannot start the async runtime: {error}");
            return ExitCode::from(ERROR_EXIT_CODE);
        }
    };
    match runtime.block_on(run::run(args)) {
        Ok(outcome) => ExitCode::from(outcome.verdict.exit_code()),
        Err(error) => {
            eprintln!("faultline test: error: {error:#}");
            ExitCode::from(ERROR_EXIT_CODE)
        }
    }
}
