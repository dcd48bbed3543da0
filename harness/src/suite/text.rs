//! What a suite prints: a line per test as it finishes, then a table of them all.

use std::fmt::Write;

use super::record::{Outcome, Status, TestRecord};

/// `[2/9] register-kill-n3: PASS (expected valid, got valid; 12034 ops, 24.1 s)`.
pub fn line(position: usize, total: usize, record: &TestRecord) -> String {
    let test = record.test;
    let detail = match &record.outcome {
        Outcome::Ran(ran) => format!(
            "expected {}, got {}; {} ops, {:.1} s; {}",
            test.expect,
            ran.verdict,
            ran.summary.total.total(),
            record.elapsed.as_secs_f64(),
            ran.run_dir.display()
        ),
        Outcome::Error(error) => error.lines().next().unwrap_or_default().to_string(),
        Outcome::NotRun(reason) => reason.clone(),
    };
    format!(
        "[{position}/{total}] {}: {} ({detail})",
        test.name,
        record.status().label()
    )
}

/// The summary table, one row per test, and a count of each result.
pub fn table(records: &[TestRecord]) -> String {
    let header = [
        "result", "test", "workload", "nemesis", "nodes", "bug", "expected", "got", "ops", "time",
        "run dir",
    ];
    let rows: Vec<[String; 11]> = records.iter().map(row).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = header.map(str::to_string);
    for cells in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let count = |status: Status| records.iter().filter(|r| r.status() == status).count();
    let _ = writeln!(
        out,
        "{} passed, {} failed, {} errors, {} not run",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Error),
        count(Status::NotRun)
    );
    out
}

fn row(record: &TestRecord) -> [String; 11] {
    let args = &record.test.args;
    let ran = record.ran();
    [
        record.status().label().to_string(),
        record.test.name.clone(),
        args.workload.to_string(),
        args.nemesis_kinds().to_string(),
        args.nodes.to_string(),
        if args.bugs.is_empty() {
            "-".to_string()
        } else {
            args.bugs.join(",")
        },
        record.test.expect.to_string(),
        record.got().to_string(),
        ran.map_or("-".to_string(), |r| r.summary.total.total().to_string()),
        match record.outcome {
            Outcome::NotRun(_) => "-".to_string(),
            _ => format!("{:.1} s", record.elapsed.as_secs_f64()),
        },
        ran.map_or("-".to_string(), |r| r.run_dir.display().to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fixtures::{records, suite};
    use super::*;

    #[test]
    fn a_line_per_test_and_a_table_with_every_column() {
        let suite = suite();
        let records = records(
            &suite,
            Outcome::NotRun("the suite was interrupted".into()),
            Duration::ZERO,
        );
        assert_eq!(
            line(2, 3, &records[1]),
            "[2/3] stale: FAIL (expected invalid, got valid; 1234 ops, 10.0 s; \
             store/stale/20260101T000000)"
        );
        assert_eq!(
            line(3, 3, &records[2]),
            "[3/3] third: NOT RUN (the suite was interrupted)"
        );

        let table = table(&records);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        let columns: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            columns,
            [
                "result", "test", "workload", "nemesis", "nodes", "bug", "expected", "got", "ops",
                "time", "run", "dir"
            ]
        );
        let stale_row: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            stale_row,
            [
                "FAIL",
                "stale",
                "mixed",
                "partition",
                "3",
                "stale-read",
                "invalid",
                "valid",
                "1234",
                "10.0",
                "s",
                "store/stale/20260101T000000"
            ]
        );
        // Columns line up: each header starts where its cells start.
        let at = lines[0].find("got").unwrap();
        assert_eq!(&lines[1][at..at + 5], "valid");
        assert_eq!(lines[4], "1 passed, 1 failed, 0 errors, 1 not run");
    }
}
