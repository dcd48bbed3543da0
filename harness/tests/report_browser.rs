//! The report in a real browser: `faultline report` builds the page of the committed invalid
//! fixture run into a temporary directory, headless Chromium (Debian's `chromium`) opens
//! it, and the test fails on any JavaScript exception or console error, then checks that the
//! verdict and summary, the timeline (its canvas drawn), the latency and throughput plots,
//! the node states and the counterexamples are rendered, that zooming, panning and hovering
//! work, and saves a screenshot of the whole page as `target/report-screenshot.png`.
//!
//! Without Chromium it fails and says how to install it, unless `FAULTLINE_SKIP_BROWSER=1`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Log, Page, Runtime};
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The page is 1400 CSS pixels wide, as wide as its content gets.
const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1000;
/// How long the page may take to say it is drawn.
const RENDER_TIMEOUT: Duration = Duration::from_secs(15);

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-invalid")
}

/// The Cargo target directory: the faultline binary is in `<target>/<profile>/`.
fn target_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_faultline"));
    binary
        .parent()
        .and_then(Path::parent)
        .expect("the binary is in <target>/<profile>/")
        .to_path_buf()
}

/// Chromium, or why the test cannot run (`None`: skipped on purpose).
fn chromium() -> Option<PathBuf> {
    if Path::new(CHROMIUM).exists() {
        return Some(PathBuf::from(CHROMIUM));
    }
    if std::env::var_os("FAULTLINE_SKIP_BROWSER").is_some_and(|v| v == "1") {
        eprintln!("report_browser: skipped: {CHROMIUM} is missing and FAULTLINE_SKIP_BROWSER=1");
        return None;
    }
    panic!(
        "{CHROMIUM} is missing: the report's browser test needs Debian's chromium \
         (`apt-get install chromium`), or set FAULTLINE_SKIP_BROWSER=1 to skip it"
    );
}

/// Builds the fixture's report into a fresh directory and returns the directory.
fn fixture_report() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let output = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "faultline report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

/// Headless Chromium that needs no network, no sandbox (CI runs as root) and no GPU, with
/// a profile of its own.
fn launch(chromium: PathBuf, profile: &Path) -> Browser {
    let args: Vec<&OsStr> = [
        "--disable-gpu",
        "--disable-quic",
        "--disable-component-update",
        "--disable-default-apps",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    let options = LaunchOptions::default_builder()
        .path(Some(chromium))
        .headless(true)
        .sandbox(false)
        .enable_gpu(false)
        .window_size(Some((WIDTH, HEIGHT)))
        .user_data_dir(Some(profile.to_path_buf()))
        .idle_browser_timeout(Duration::from_secs(60))
        .args(args)
        .build()
        .unwrap();
    Browser::new(options).expect("starting headless chromium")
}

/// Every JavaScript exception, console error or error-level log entry of the page.
fn collect_errors(tab: &Tab) -> Arc<Mutex<Vec<String>>> {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&errors);
    tab.add_event_listener(Arc::new(move |event: &Event| {
        let error = match event {
            Event::RuntimeExceptionThrown(thrown) => {
                let details = &thrown.params.exception_details;
                let description = details
                    .exception
                    .as_ref()
                    .and_then(|e| e.description.clone())
                    .unwrap_or_default();
                Some(format!(
                    "exception at {}:{}: {} {description}",
                    details.line_number, details.column_number, details.text
                ))
            }
            Event::RuntimeConsoleAPICalled(call)
                if matches!(
                    call.params.Type,
                    Runtime::ConsoleAPICalledEventTypeOption::Error
                        | Runtime::ConsoleAPICalledEventTypeOption::Assert
                ) =>
            {
                let args: Vec<String> = call
                    .params
                    .args
                    .iter()
                    .map(|a| {
                        a.value
                            .as_ref()
                            .map(Value::to_string)
                            .or_else(|| a.description.clone())
                            .unwrap_or_default()
                    })
                    .collect();
                Some(format!("console.error: {}", args.join(" ")))
            }
            Event::LogEntryAdded(entry)
                if entry.params.entry.level == Log::LogEntryLevel::Error =>
            {
                Some(format!("log: {}", entry.params.entry.text))
            }
            _ => None,
        };
        if let Some(error) = error {
            sink.lock().unwrap().push(error);
        }
    }))
    .unwrap();
    tab.enable_runtime().unwrap();
    tab.enable_log().unwrap();
    errors
}

/// Evaluates `expression` (which must give a JSON-encodable value) and returns its value;
/// a throw comes back as a panic with its message.
fn eval(tab: &Tab, expression: &str) -> Value {
    let wrapped = format!(
        "(() => {{ try {{ return JSON.stringify({{ ok: ({expression}) }}); }} \
         catch (e) {{ return JSON.stringify({{ error: String(e && e.stack || e) }}); }} }})()"
    );
    let result = tab.evaluate(&wrapped, false).unwrap();
    let text = result
        .value
        .as_ref()
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{expression}: no value: {result:?}"));
    let mut value: Value = serde_json::from_str(text).unwrap();
    if let Some(error) = value.get("error") {
        panic!("{expression} threw: {error}");
    }
    value["ok"].take()
}

fn assert_no_errors(errors: &Mutex<Vec<String>>, when: &str) {
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "JavaScript errors {when}:\n{}",
        errors.join("\n")
    );
}

/// Waits for the page to set `document.body.dataset.rendered` (or fail trying).
fn wait_until_rendered(tab: &Tab, errors: &Mutex<Vec<String>>) {
    let started = Instant::now();
    loop {
        assert_no_errors(errors, "while the page was drawn");
        if eval(
            tab,
            "document.body && document.body.dataset.rendered === 'true'",
        ) == true
        {
            return;
        }
        assert!(
            started.elapsed() < RENDER_TIMEOUT,
            "the page did not finish drawing within {RENDER_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Page-side helpers: how many pixels of a canvas are clearly coloured (not white, grey or
/// black: the bars and points, not the grid and the text).
const HELPERS: &str = r#"
window.__colouredPixels = (canvas) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    const r = data[i], g = data[i + 1], b = data[i + 2];
    if (Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
  }
  return n;
};
window.__canvases = (selector) =>
  [...document.querySelectorAll(selector + " .chart canvas")].map((c) => ({
    width: c.width, height: c.height, coloured: window.__colouredPixels(c),
  }));
true
"#;

fn canvases(tab: &Tab, selector: &str) -> Vec<(u64, u64, u64)> {
    let value = eval(tab, &format!("window.__canvases({selector:?})"));
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["width"].as_u64().unwrap(),
                c["height"].as_u64().unwrap(),
                c["coloured"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Asserts that `selector` holds `count` canvases, each of a real size with at least
/// `min_coloured` coloured pixels.
fn assert_drawn(tab: &Tab, selector: &str, count: usize, min_coloured: u64) {
    let found = canvases(tab, selector);
    assert_eq!(found.len(), count, "{selector}: canvases {found:?}");
    for (width, height, coloured) in found {
        assert!(
            width >= 600 && height >= 60,
            "{selector}: a canvas of {width}x{height}"
        );
        assert!(
            coloured >= min_coloured,
            "{selector}: only {coloured} coloured pixels (want {min_coloured}): not drawn"
        );
    }
}

fn text(tab: &Tab, selector: &str) -> String {
    eval(
        tab,
        &format!("document.querySelector({selector:?}).innerText"),
    )
    .as_str()
    .unwrap()
    .to_owned()
}

/// A screenshot of the whole page, not only the window.
fn screenshot(tab: &Tab) -> Vec<u8> {
    let height = eval(tab, "document.documentElement.scrollHeight")
        .as_f64()
        .unwrap();
    let shot = tab
        .call_method(Page::CaptureScreenshot {
            format: Some(Page::CaptureScreenshotFormatOption::Png),
            quality: None,
            clip: Some(Page::Viewport {
                x: 0.0,
                y: 0.0,
                width: f64::from(WIDTH),
                height,
                scale: 1.0,
            }),
            from_surface: Some(true),
            capture_beyond_viewport: Some(true),
            optimize_for_speed: None,
        })
        .unwrap();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(shot.data)
        .unwrap()
}

#[test]
fn the_invalid_fixture_report_renders_in_chromium_without_errors() {
    let Some(chromium) = chromium() else {
        return;
    };
    let started = Instant::now();
    let run = fixture_report();
    let profile = tempfile::tempdir().unwrap();
    let browser = launch(chromium, profile.path());
    let tab = browser.new_tab().unwrap();
    let errors = collect_errors(&tab);
    let url = format!("file://{}", run.path().join("report.html").display());
    tab.navigate_to(&url).unwrap();
    tab.wait_until_navigated().unwrap();
    wait_until_rendered(&tab, &errors);
    let installed = tab.evaluate(HELPERS, false).unwrap();
    assert_eq!(installed.value, Some(Value::Bool(true)), "{installed:?}");

    // The verdict first, then the summary.
    let verdict = text(&tab, "#verdict");
    assert!(verdict.starts_with("INVALID"), "verdict: {verdict}");
    assert!(verdict.contains("not linearizable"), "verdict: {verdict}");
    let summary = text(&tab, "#summary");
    for expected in [
        "Workload",
        "mixed",
        "kill,partition",
        "18446744073709551557",
        "Throughput",
        "p99",
        "faultline test --nodes 3",
    ] {
        assert!(
            summary.contains(expected),
            "the summary lacks {expected:?}:\n{summary}"
        );
    }

    // Counterexamples: one per invalid key, each drawn, the rejected operation named.
    assert_eq!(
        eval(&tab, "document.getElementById('counterexamples').hidden"),
        false
    );
    let examples = text(&tab, "#counterexamples");
    for expected in [
        "Key r1",
        "Key l1",
        "cannot be placed",
        "longest linearizable prefix",
    ] {
        assert!(
            examples.contains(expected),
            "counterexamples lack {expected:?}:\n{examples}"
        );
    }
    assert_drawn(&tab, "#counterexamples", 2, 100);
    assert!(text(&tab, "#lost-writes").contains("1 lost"));

    // The timeline, the plots and the node states are drawn.
    assert_drawn(&tab, "#timeline", 1, 2_000);
    assert_drawn(&tab, "#latency", 1, 50);
    assert_drawn(&tab, "#rate", 1, 200);
    assert_drawn(&tab, "#nodes", 1, 2_000);
    let report = eval(&tab, "window.faultlineReport.operations");
    assert_eq!(report, 14, "the page decoded every operation");

    // Zoom (the wheel), pan (a drag) and hover work and raise nothing.
    let zoomed = eval(
        &tab,
        r##"(() => {
          const canvas = document.querySelector("#timeline canvas");
          const box = canvas.getBoundingClientRect();
          const at = { clientX: box.left + box.width / 2, clientY: box.top + 40, bubbles: true };
          canvas.dispatchEvent(new WheelEvent("wheel", Object.assign({ deltaY: -300, cancelable: true }, at)));
          canvas.dispatchEvent(new PointerEvent("pointerdown", Object.assign({ pointerId: 1 }, at)));
          canvas.dispatchEvent(new PointerEvent("pointermove", Object.assign({ pointerId: 1 }, at, { clientX: at.clientX - 80 })));
          canvas.dispatchEvent(new PointerEvent("pointerup", Object.assign({ pointerId: 1 }, at)));
          return window.faultlineReport.redrawMs(0, 1e12) >= 0;
        })()"##,
    );
    assert_eq!(zoomed, true);
    let hovered = eval(
        &tab,
        r##"(() => {
          const canvas = document.querySelector("#timeline canvas");
          const box = canvas.getBoundingClientRect();
          const tooltip = document.getElementById("tooltip");
          for (let y = box.top + 2; y < box.bottom; y += 3) {
            for (let x = box.left + 100; x < box.right; x += 7) {
              canvas.dispatchEvent(new PointerEvent("pointermove", { clientX: x, clientY: y, bubbles: true }));
              if (!tooltip.hidden && tooltip.textContent.includes("outcome")) return tooltip.textContent;
            }
          }
          return null;
        })()"##,
    );
    assert!(
        hovered.as_str().is_some_and(|t| t.contains("op #")),
        "hovering the timeline shows no operation: {hovered}"
    );
    let left = eval(
        &tab,
        r##"(() => {
          document.querySelector("#timeline canvas").dispatchEvent(new PointerEvent("pointerleave"));
          return document.getElementById("tooltip").hidden;
        })()"##,
    );
    assert_eq!(left, true, "the tooltip stays after the pointer left");
    // A round trip, so that events raised by the interaction have arrived.
    eval(&tab, "true");
    assert_no_errors(&errors, "after zooming, panning and hovering");

    let first_render_ms = eval(&tab, "window.faultlineReport.firstRenderMs");
    let shot = target_dir().join("report-screenshot.png");
    let png = screenshot(&tab);
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(&shot, png).unwrap();
    eprintln!(
        "report_browser: drawn in {first_render_ms} ms; screenshot {}; {:.1} s in all",
        shot.display(),
        started.elapsed().as_secs_f64()
    );
}
