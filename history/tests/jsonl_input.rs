//! JSON Lines is untrusted input (`faultline check` reads any file it is given): whatever the
//! bytes, reading ends in a history or an error naming a line, never a panic or a stack
//! overflow; and a history that reads has indexes that increase.

use faultline_history::{Error, History, Location, MAX_DEPTH};
use proptest::prelude::*;

/// A well-formed event line with this index.
fn event_line(index: u64, process: u64, kind: &str) -> String {
    format!(
        r#"{{"index":{index},"time":{index},"process":{process},"type":"{kind}","f":"write","key":"k","value":[1,{{"a":null}}]}}"#
    )
}

/// A small valid history, for mutating.
fn valid_text() -> String {
    (0..6)
        .map(|i| event_line(i, i / 2, if i % 2 == 0 { "invoke" } else { "ok" }))
        .collect::<Vec<_>>()
        .join("\n")
}

fn line_of(error: &Error) -> usize {
    let Error::Malformed { location, .. } = error;
    match location {
        Location::Line(line) => *line,
        Location::Event(_) => panic!("a history read from text names lines: {error}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_reads_or_is_refused_without_a_panic(text in any::<String>()) {
        if let Ok(history) = History::from_jsonl(&text) {
            prop_assert!(history.check_indexes().is_ok());
        }
    }

    #[test]
    fn any_bytes_read_as_text_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = History::from_jsonl(&String::from_utf8_lossy(&bytes));
    }

    /// A valid history with bytes overwritten, inserted or removed: close to real input, so
    /// the mutations reach deep into the parser.
    #[test]
    fn a_mutated_history_reads_or_names_a_line(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(
            b"{}[]\":,0123456789-enulltrfsx \n\\".to_vec())), 1..8),
    ) {
        let mut bytes = valid_text().into_bytes();
        for (at, op, byte) in edits {
            let at = at.index(bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => { bytes.remove(at); }
                _ => {}
            }
        }
        let text = String::from_utf8(bytes).expect("ASCII edits of ASCII text");
        match History::from_jsonl(&text) {
            Ok(history) => prop_assert!(history.check_indexes().is_ok()),
            Err(error) => {
                let line = line_of(&error);
                prop_assert!(line >= 1 && line <= text.lines().count().max(1), "{error}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Arrays and objects nested past the limit, up to 100,000 deep, anywhere on a line: an
    /// error naming that line and the limit.
    #[test]
    fn deep_nesting_is_an_error_naming_the_line(
        depth in (MAX_DEPTH + 1)..100_000,
        objects in any::<bool>(),
        before in 0usize..4,
    ) {
        let open = if objects { r#"{"a":"# } else { "[" };
        let deep = format!(
            r#"{{"index":{before},"time":0,"process":0,"type":"invoke","f":"read","value":{}"#,
            open.repeat(depth)
        );
        let mut lines: Vec<String> =
            (0..before as u64).map(|i| event_line(i, 9 + i, "invoke")).collect();
        lines.push(deep);
        let error = History::from_jsonl(&lines.join("\n")).unwrap_err();
        prop_assert_eq!(line_of(&error), before + 1);
        prop_assert!(error.to_string().contains("nested deeper than 128 levels"), "{}", error);
    }

    /// Increasing indexes (gaps allowed) read; repeating any one of them is an error naming
    /// the line of the repeat.
    #[test]
    fn a_repeated_index_is_an_error_naming_its_line(
        gaps in prop::collection::vec(1u64..5, 2..30),
        repeat in any::<prop::sample::Index>(),
    ) {
        let indexes: Vec<u64> = gaps
            .iter()
            .scan(0, |index, gap| { *index += gap; Some(*index) })
            .collect();
        let lines: Vec<String> =
            indexes.iter().map(|&i| event_line(i, i, "invoke")).collect();
        prop_assert!(History::from_jsonl(&lines.join("\n")).is_ok());
        // Line `at + 1` gets the index of the line before it.
        let at = 1 + repeat.index(lines.len() - 1);
        let mut repeated = lines.clone();
        repeated[at] = event_line(indexes[at - 1], 1000, "invoke");
        let error = History::from_jsonl(&repeated.join("\n")).unwrap_err();
        prop_assert_eq!(line_of(&error), at + 1);
    }
}
