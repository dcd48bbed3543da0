//! Every history in `checker/testdata/porcupine/EXPECTED.tsv` (real Jepsen etcd logs and
//! Porcupine's key-value histories, copied from `../shared/testdata`) gets the verdict
//! Porcupine's own tests assert.

use std::path::PathBuf;

use faultline_checker::{CheckOptions, ModelKind, Verdict, check_history, read_history};

fn testdata() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/porcupine");
    assert!(
        dir.join("EXPECTED.tsv").is_file(),
        "the Porcupine test data is missing: expected {}",
        dir.display()
    );
    dir
}

#[test]
fn every_porcupine_history_gets_the_expected_verdict() {
    let dir = testdata();
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in expected
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
    {
        let [file, model, linearizable] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("EXPECTED.tsv: expected file, model and verdict, found {line:?}");
        };
        let model: ModelKind = model.parse().unwrap();
        let expected = match linearizable {
            "true" => Verdict::Valid,
            "false" => Verdict::Invalid,
            other => panic!("EXPECTED.tsv: expected true or false, found {other:?}"),
        };
        let (history, _) = read_history(&dir.join(file), None).unwrap();
        let options = CheckOptions {
            budget: Default::default(),
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
        checked += 1;
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    assert_eq!(checked, 108, "every listed file is checked");
}
