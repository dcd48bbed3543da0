//! The index page: every run of the store, newest first, with its verdict and links to its
//! report and files.

use std::fmt::Write;
use std::path::Path;

use faultline_checker::Verdict;

use super::html::{escape, file_url, page};
use crate::store::{REPORT_PAGE, RESULTS, RunVerdict, StoredRun};

/// The index of `runs` (already newest first), stored in `store`.
pub fn render(store: &Path, runs: &[StoredRun]) -> String {
    let store = escape(&store.display().to_string());
    let mut body = format!(
        "<h1>Faultline runs</h1>\n<p>{} in <code>{store}</code> \
         (<a href=\"/files/\">all files</a>)</p>\n",
        match runs.len() {
            1 => "1 run".to_string(),
            n => format!("{n} runs"),
        }
    );
    if runs.is_empty() {
        body.push_str("<p>No runs yet: <code>faultline test</code> stores them here.</p>\n");
        return page("Faultline runs", &body);
    }
    body.push_str(
        "<table>\n<tr><th>time</th><th>name</th><th>workload</th><th>nemesis</th>\
         <th>verdict</th><th title=\"client operations the checker judged (failed ones removed)\">ops checked</th>\
         <th>report</th><th>files</th></tr>\n",
    );
    for run in runs {
        let segments = [run.test.as_str(), run.dir.as_str()];
        let report = if run.has_report {
            let url = file_url(segments.into_iter().chain([REPORT_PAGE]));
            format!("<a href=\"{url}\">report</a>")
        } else {
            "<span class=\"none\">none</span>".to_string()
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"number\">{}</td><td>{report}</td><td><a href=\"{}/\">{}</a></td></tr>",
            run.time.format("%Y-%m-%d %H:%M:%S"),
            escape(&run.test),
            escape(run.workload.as_deref().unwrap_or("?")),
            escape(run.nemesis.as_deref().unwrap_or("?")),
            verdict(&run.verdict),
            run.operations.map_or(String::new(), |n| n.to_string()),
            file_url(segments),
            escape(&run.dir),
        );
    }
    body.push_str("</table>\n");
    page("Faultline runs", &body)
}

/// The verdict cell, coloured like the report's.
fn verdict(verdict: &RunVerdict) -> String {
    match verdict {
        RunVerdict::Checked(Verdict::Valid) => "<span class=\"valid\">valid</span>".into(),
        RunVerdict::Checked(Verdict::Invalid) => "<span class=\"invalid\">INVALID</span>".into(),
        RunVerdict::Checked(Verdict::Unknown) => "<span class=\"unknown\">unknown</span>".into(),
        RunVerdict::NoResults => format!(
            "<span class=\"none\" title=\"no {RESULTS}: interrupted, failed, or still \
             running\">no verdict</span>"
        ),
        RunVerdict::Unreadable(why) => format!(
            "<span class=\"none\" title=\"{}\">unreadable {RESULTS}</span>",
            escape(why)
        ),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Local, TimeZone};

    use super::*;

    fn run(test: &str, verdict: RunVerdict, has_report: bool) -> StoredRun {
        StoredRun {
            test: test.to_string(),
            dir: "20260101T100000".to_string(),
            time: Local.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap(),
            workload: Some("append".to_string()),
            nemesis: None,
            verdict,
            operations: Some(1234),
            has_report,
        }
    }

    #[test]
    fn each_run_is_a_row_with_its_verdict_and_links() {
        let html = render(
            Path::new("/tmp/store"),
            &[
                run("bad<name>", RunVerdict::Checked(Verdict::Invalid), true),
                run("going", RunVerdict::NoResults, false),
            ],
        );
        assert!(html.contains("2 runs in <code>/tmp/store</code>"), "{html}");
        assert!(html.contains("<td>2026-01-01 10:00:00</td><td>bad&lt;name&gt;</td>"));
        assert!(html.contains("<td>append</td><td>?</td>"));
        assert!(html.contains(">INVALID<"));
        assert!(html.contains(">1234<"));
        assert!(
            html.contains(
                "<a href=\"/files/bad%3Cname%3E/20260101T100000/report.html\">report</a>"
            )
        );
        assert!(html.contains("<a href=\"/files/going/20260101T100000/\">20260101T100000</a>"));
        assert!(html.contains(">no verdict<"));
        assert!(!html.contains("<name>"));
    }

    #[test]
    fn an_empty_store_says_how_to_fill_it() {
        let html = render(Path::new("store"), &[]);
        assert!(html.contains("No runs yet"), "{html}");
        assert!(!html.contains("<table>"));
    }
}
