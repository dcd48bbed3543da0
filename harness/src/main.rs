//! `faultline`: the command-line harness.

use clap::Parser;

/// Jepsen-style chaos testing for Linux.
#[derive(Parser)]
#[command(name = "faultline", version)]
enum Cli {}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {}
}
