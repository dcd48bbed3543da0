//! `faultline suite <file.toml>`: a matrix of tests run one after another in this process,
//! the way a test runner does: a line per test as it finishes, a summary table, `junit.xml`
//! for CI, and an exit code that says whether every test got the verdict it expected
//! (0 yes, 1 no, 3 when a harness error or Ctrl-C stopped the suite).

mod expect;
mod file;
mod flags;
mod junit;
mod record;
mod text;

use crate::console::{errln, out, outln};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use crate::run::{self, Interrupt};
use crate::store;
use file::{Overrides, Suite};
use record::{Outcome, TestRecord};

/// Run every test of a suite file and report as a test runner does.
#[derive(Args, Clone, Debug)]
pub struct SuiteArgs {
    /// The suite: TOML whose keys are the flags of `faultline test` (see suites/ci.toml).
    pub file: PathBuf,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Where to write the JUnit XML report [default: <store>/junit.xml].
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Run every test for this long instead of the file's time limits, like 10s.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub time_limit: Option<Duration>,
}

/// Runs the suite; the exit code says whether every test got its expected verdict.
pub async fn run(args: &SuiteArgs) -> Result<ExitCode> {
    let suite = Suite::load(
        &args.file,
        &Overrides {
            store: args.store.clone(),
            time_limit: args.time_limit,
        },
    )?;
    let junit_path = args
        .junit
        .clone()
        .unwrap_or_else(|| args.store.join(store::JUNIT));
    let interrupt = Interrupt::install()?;
    outln!(
        "faultline suite {}: {} tests, runs stored in {}",
        suite.name,
        suite.tests.len(),
        args.store.display()
    );

    let mut records = Vec::with_capacity(suite.tests.len());
    // Why the suite stopped early, once it has.
    let mut stopped: Option<String> = None;
    for (index, test) in suite.tests.iter().enumerate() {
        if stopped.is_none() && interrupt.is_set() {
            stopped = Some("the suite was interrupted".to_string());
        }
        if let Some(reason) = &stopped {
            records.push(TestRecord {
                test,
                outcome: Outcome::NotRun(reason.clone()),
                elapsed: Duration::ZERO,
            });
            continue;
        }
        let started = Instant::now();
        let outcome = match run::run_until(&test.args, &interrupt).await {
            Ok(ran) => Outcome::Ran(Box::new(ran)),
            Err(error) => {
                stopped = Some(format!("the suite stopped when `{}` failed", test.name));
                Outcome::Error(format!("{error:#}"))
            }
        };
        let record = TestRecord {
            test,
            outcome,
            elapsed: started.elapsed(),
        };
        outln!("{}", text::line(index + 1, suite.tests.len(), &record));
        records.push(record);
    }

    outln!("\nsuite {}:", suite.name);
    out!("{}", text::table(&records));
    junit::write(&junit_path, &junit::report(&suite, &records))?;
    outln!("JUnit report: {}", junit_path.display());
    if let Some(reason) = stopped {
        errln!("faultline suite: {reason}");
    }
    Ok(ExitCode::from(record::exit_code(&records)))
}

#[cfg(test)]
mod fixtures;
