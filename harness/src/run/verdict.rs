//! A run's verdict from its history: every key checked for linearizability against the model
//! its workload calls for (cas-register for register keys, list-append for list keys), and
//! the list keys checked for lost writes. The result is written to `results.json`.

use std::time::Duration;

use anyhow::{Context, Result};
use faultline_checker::{
    Budget, CheckOptions, CheckResult, History, LostWritesResult, ModelKind, Verdict,
    check_history, lost_writes,
};
use faultline_workloads::split_by_model;
use serde::{Deserialize, Serialize};

/// What `results.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResults {
    /// The overall verdict: `true`, `false` or `"unknown"`.
    pub valid: Verdict,
    /// One linearizability result per model used by the workload.
    pub linearizability: Vec<CheckResult>,
    /// Lost writes of the list keys, if the workload had any.
    pub lost_writes: Option<LostWritesResult>,
}

/// Checks a run's history within `budget` (shared by the models, one after another).
pub fn check(history: &History, budget: Duration) -> Result<RunResults> {
    let mut valid = Verdict::Valid;
    let mut linearizability = Vec::new();
    let mut lost = None;
    for (model, part) in split_by_model(history).context("splitting the history by model")? {
        let options = CheckOptions {
            budget: Budget {
                timeout: Some(budget),
                ..Budget::default()
            },
            ..CheckOptions::default()
        };
        let result = check_history(&part, model, &options)
            .with_context(|| format!("checking the {} keys", model.name()))?;
        valid = valid.and(result.valid);
        linearizability.push(result);
        if model == ModelKind::ListAppend {
            let result = lost_writes(&part).context("checking for lost writes")?;
            valid = valid.and(result.valid);
            lost = Some(result);
        }
    }
    Ok(RunResults {
        valid,
        linearizability,
        lost_writes: lost,
    })
}
