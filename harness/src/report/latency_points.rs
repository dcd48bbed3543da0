//! Which operations the latency plots draw. A long run has more points than a plot can show
//! or a page can carry, so beyond a budget the successful operations are thinned evenly; the
//! ones a reader looks for are always kept: every failed and indeterminate operation, and
//! every operation of a key that is not linearizable.

use std::collections::HashSet;

use super::operations::{Ending, TimelineOp};

/// Points a latency plot carries at most, unless more must be kept.
pub const LATENCY_POINTS: usize = 100_000;

/// Indices into `ops` of the points to draw, in order: every completed operation if there
/// are at most `budget`; otherwise every one that must be kept and an even stride of the
/// others to fill the rest of `budget`.
pub fn latency_points(
    ops: &[TimelineOp],
    invalid_keys: &HashSet<&str>,
    budget: usize,
) -> Vec<usize> {
    let completed: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].end.is_some()).collect();
    if completed.len() <= budget {
        return completed;
    }
    let must_keep = |op: &TimelineOp| {
        op.ending != Ending::Ok || op.key.is_some_and(|key| invalid_keys.contains(key))
    };
    let thinnable = completed.iter().filter(|&&i| !must_keep(&ops[i])).count();
    let room = budget.saturating_sub(completed.len() - thinnable);
    let mut seen = 0;
    completed
        .into_iter()
        .filter(|&i| {
            if must_keep(&ops[i]) {
                return true;
            }
            // The n-th thinnable op is kept when it starts a new stride of thinnable / room.
            let keep = (seen * room) / thinnable != ((seen + 1) * room) / thinnable;
            seen += 1;
            keep
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    const NULL: Value = Value::Null;

    fn op(i: usize, ending: Ending, key: &'static str) -> TimelineOp<'static> {
        TimelineOp {
            id: i as u64,
            process: 0,
            f: "read",
            key: Some(key),
            value: &NULL,
            start: i as u64,
            end: (ending != Ending::Pending).then_some(i as u64 + 5),
            ending,
            error: None,
            node: None,
        }
    }

    const ENDINGS: [Ending; 4] = [Ending::Ok, Ending::Fail, Ending::Info, Ending::Pending];

    fn ops_of(spec: &[(u8, bool)]) -> Vec<TimelineOp<'static>> {
        spec.iter()
            .enumerate()
            .map(|(i, &(ending, bad))| {
                op(
                    i,
                    ENDINGS[ending as usize % 4],
                    if bad { "bad" } else { "k" },
                )
            })
            .collect()
    }

    #[test]
    fn below_the_budget_every_completed_op_is_drawn() {
        let ops = ops_of(&[(0, false), (3, false), (1, false), (2, false)]);
        assert_eq!(latency_points(&ops, &HashSet::new(), 10), [0, 2, 3]);
    }

    #[test]
    fn failures_and_timeouts_are_all_kept_even_past_the_budget() {
        // 1,000 successes, then 30 failures and 30 timeouts, with room for only 10 points.
        let spec: Vec<(u8, bool)> = (0..1000)
            .map(|_| (0, false))
            .chain((0..30).map(|_| (1, false)))
            .chain((0..30).map(|_| (2, false)))
            .collect();
        let ops = ops_of(&spec);
        let points = latency_points(&ops, &HashSet::new(), 10);
        assert_eq!(points, (1000..1060).collect::<Vec<_>>());
    }

    #[test]
    fn the_successes_left_are_spread_over_the_whole_run() {
        let spec: Vec<(u8, bool)> = (0..10_000).map(|_| (0, false)).collect();
        let points = latency_points(&ops_of(&spec), &HashSet::new(), 100);
        assert_eq!(points.len(), 100);
        assert!(points[0] < 100 && points[99] >= 9_900, "{points:?}");
        assert!(
            points.windows(2).all(|w| w[1] - w[0] == 100),
            "an even stride"
        );
    }

    proptest! {
        #[test]
        fn thinning_keeps_what_matters_and_fits_the_budget(
            spec in prop::collection::vec((0u8..4, prop::bool::weighted(0.05)), 0..2000),
            budget in 1usize..600,
        ) {
            let ops = ops_of(&spec);
            let invalid: HashSet<&str> = ["bad"].into();
            let points = latency_points(&ops, &invalid, budget);
            let must: Vec<usize> = (0..ops.len())
                .filter(|&i| ops[i].end.is_some() && (ops[i].ending != Ending::Ok || ops[i].key == Some("bad")))
                .collect();
            let completed = ops.iter().filter(|op| op.end.is_some()).count();
            prop_assert!(points.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
            prop_assert!(points.iter().all(|&i| ops[i].end.is_some()), "pending ops have no latency");
            for i in &must {
                prop_assert!(points.contains(i), "op {} must be kept", i);
            }
            prop_assert_eq!(points.len(), completed.min(budget.max(must.len())));
        }
    }
}
