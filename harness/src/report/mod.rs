//! The report of a run: `report.html` (one self-contained page: verdict, summary,
//! counterexamples, lost writes, timeline, latency and throughput, node states) and the
//! `latency.png` and `rate.png` plots beside it, all built from the files in the run's
//! directory. `faultline test` writes them at the end of every run; `faultline report
//! <run-dir>` builds them again. The same page is drawn for any history checked alone
//! (`faultline check --report`, [`write_checked`]), without the parts only a run has.

mod analysis;
mod checked;
mod latency_points;
mod node_states;
mod operations;
mod page;
mod page_data;
mod plots;

use crate::console::{errln, outln};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use faultline_checker::ERROR_EXIT_CODE;

use crate::store::{RunDir, RunFiles};
use analysis::Analysis;
pub use checked::write as write_checked;
use page_data::{PageData, Subject};

/// Reads the run in `run_dir`, writes `report.html`, `latency.png` and `rate.png` there,
/// and returns the page's path.
pub fn write(run_dir: &Path) -> Result<PathBuf> {
    let files = RunFiles::read(run_dir)?;
    let nodes: Vec<String> = files.test.nodes.iter().map(|n| n.name.clone()).collect();
    let analysis = Analysis::new(&files.history, &files.results, &nodes, &files.status);
    let subject = Subject::Run {
        test: &files.test,
        dir: run_dir,
    };
    let data = PageData::new(subject, &files.history, &files.results, &analysis);
    let run = RunDir::at(run_dir);
    let page = run.report_page();
    std::fs::write(&page, page::render(&data)?)
        .with_context(|| format!("writing {}", page.display()))?;
    let latency = run.latency_plot();
    plots::latency(&analysis, &latency)
        .with_context(|| format!("writing {}", latency.display()))?;
    let rate = run.rate_plot();
    plots::rate(&analysis, &rate).with_context(|| format!("writing {}", rate.display()))?;
    Ok(page)
}

/// Build a run's report again from the files in its directory.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The run's directory, like store/<test-name>/<timestamp> or store/latest.
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
}

/// `faultline report`: 0 once written, 3 with the reason if it could not be.
pub fn command(args: &ReportArgs) -> ExitCode {
    match write(&args.run_dir) {
        Ok(page) => {
            let run = RunDir::at(&args.run_dir);
            outln!("report: {}", page.display());
            outln!(
                "plots:  {}, {}",
                run.latency_plot().display(),
                run.rate_plot().display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            errln!("faultline report: error: {error:#}");
            ExitCode::from(ERROR_EXIT_CODE)
        }
    }
}
