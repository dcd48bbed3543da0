//! Every history in `checker/testdata/knossos/EXPECTED.tsv` (histories from the `data/`
//! folder of Knossos, copied byte for byte) gets the verdict Knossos publishes for it: the
//! `good/` or `bad/` folder it sits in, or the test of Knossos's that checks it (see the
//! README there), checked from the initial value Knossos's tests give the model.

use std::path::{Path, PathBuf};

use faultline_checker::{CheckOptions, ModelKind, Verdict, check_history, read_history};
use serde_json::Value;

fn testdata() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/knossos");
    assert!(
        dir.join("EXPECTED.tsv").is_file(),
        "the Knossos test data is missing: expected {}",
        dir.display()
    );
    dir
}

/// The `.edn` files below `dir`, as paths relative to `root` with `/` between folders.
fn edn_files(root: &Path, dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            edn_files(root, &path, found);
        } else if path.extension().is_some_and(|e| e == "edn") {
            let relative = path.strip_prefix(root).unwrap();
            let parts: Vec<_> = relative.iter().map(|p| p.to_str().unwrap()).collect();
            found.push(parts.join("/"));
        }
    }
}

#[test]
fn every_knossos_history_gets_the_published_verdict() {
    let dir = testdata();
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).unwrap();
    let mut checked = Vec::new();
    let mut wrong = Vec::new();
    for line in expected
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
    {
        let [file, model, initial, linearizable] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("EXPECTED.tsv: expected file, model, initial value and verdict, found {line:?}");
        };
        let model: ModelKind = model.parse().unwrap();
        let initial: Value = serde_json::from_str(initial)
            .unwrap_or_else(|e| panic!("EXPECTED.tsv: {file}: initial value {initial:?}: {e}"));
        let expected = match linearizable {
            "true" => Verdict::Valid,
            "false" => Verdict::Invalid,
            other => panic!("EXPECTED.tsv: expected true or false, found {other:?}"),
        };
        let (history, _) = read_history(&dir.join(file), None)
            .unwrap_or_else(|e| panic!("{file}: cannot be read: {e}"));
        let options = CheckOptions {
            budget: Default::default(),
            initial: Some(initial),
            ..CheckOptions::default()
        };
        let result = check_history(&history, model, &options).unwrap();
        if result.valid != expected {
            wrong.push(format!("{file}: expected {expected}, got {}", result.valid));
        }
        if result.valid == Verdict::Invalid {
            assert!(
                !result.counterexamples.is_empty(),
                "{file}: invalid without a counterexample"
            );
        }
        checked.push(file.to_string());
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    assert_eq!(checked.len(), 16, "every listed file is checked");

    // And every history copied is listed.
    let mut copied = Vec::new();
    edn_files(&dir, &dir, &mut copied);
    copied.sort();
    checked.sort();
    assert_eq!(copied, checked, "the .edn files copied are the ones listed");
}
