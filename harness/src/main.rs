//! `faultline`: the command-line harness. Each subcommand lives in its own module; this file
//! only dispatches.

mod check;

use std::process::ExitCode;

use clap::Parser;
use faultline_checker::ERROR_EXIT_CODE;

/// Jepsen-style chaos testing for Linux.
#[derive(Parser)]
#[command(name = "faultline", version)]
enum Cli {
    /// Check recorded histories for linearizability (and lost writes, for list-append).
    Check(check::CheckArgs),
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
        Cli::Check(args) => check::run(&args),
    }
}
