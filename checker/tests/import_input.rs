//! Jepsen's formats are untrusted input (`faultline check` reads any file it is given):
//! whatever the text, the EDN and `jepsen.util` log readers end in a history or an error
//! naming a line, never a panic or a stack overflow; nesting past the limit is an error.

use faultline_checker::{Error, Format};
use faultline_history::Location;
use proptest::prelude::*;

/// A small EDN history in the shapes the reader knows: maps with and without indexes,
/// tuples, sets, tags, comments and strings with escapes.
const EDN: &str = r#"; a history
[{:index 0, :process 0, :type :invoke, :f :cas, :value [1 2], :time 10}
 {:index 1, :process 0, :type :ok, :f :cas, :value [1 2], :time 20}
 #jepsen.history.Op{:index 2, :process :nemesis, :type :info, :f :start, :value #{:n1 :n2}}
 {:index 3, :process 1, :type :invoke, :f :write, :value "a\"b\u0041", :time 30}
 {:index 4, :process 1, :type :info, :f :write, :value \c, :error :timeout} #_ [ignored]]
"#;

const LOG: &str = "INFO  jepsen.util - 2\t:invoke\t:write\t4\n\
                   other output\n\
                   INFO  jepsen.util - 3   :invoke :cas    [3 0]\n\
                   INFO  jepsen.util - 3\t:fail\t:cas\t[3 0]\n\
                   INFO  jepsen.util - 2\t:info\t:write\t:timed-out\n";

fn line_of(error: &Error) -> Option<usize> {
    match error {
        Error::Malformed {
            location: Location::Line(line),
            ..
        } => Some(*line),
        _ => None,
    }
}

/// `text` with a few bytes overwritten, inserted or removed, each from `alphabet`.
fn mutate(text: &str, edits: &[(prop::sample::Index, u8, u8)], alphabet: &[u8]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for (at, op, byte) in edits {
        let byte = alphabet[usize::from(*byte) % alphabet.len()];
        let at = at.index(bytes.len() + 1);
        match op % 3 {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    // Edits of ASCII into ASCII text; a multi-byte character cut in two reads lossily.
    String::from_utf8_lossy(&bytes).into_owned()
}

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8, u8)>> {
    prop::collection::vec(
        (any::<prop::sample::Index>(), any::<u8>(), any::<u8>()),
        1..10,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_read_or_refused_without_a_panic(text in any::<String>()) {
        let _ = Format::Edn.parse(&text);
        let _ = Format::JepsenLog.parse(&text);
    }

    #[test]
    fn edn_made_of_its_own_characters_is_read_or_refused(
        text in r#"[\[\]\(\)\{\}#_:;"\\ \n,a-z0-9.+\-]{0,200}"#,
    ) {
        if let Err(error) = Format::Edn.parse(&text) {
            prop_assert!(line_of(&error).is_some(), "{}", error);
        }
    }

    #[test]
    fn a_mutated_edn_history_is_read_or_names_a_line(edits in edits()) {
        let text = mutate(EDN, &edits, b"[](){}#_:;\"\\ \n,0123456789-aknilx");
        match Format::Edn.parse(&text) {
            Ok(history) => prop_assert!(history.check_indexes().is_ok()),
            Err(error) => {
                let line = line_of(&error);
                prop_assert!(line.is_some_and(|l| l <= text.lines().count() + 1), "{}", error);
            }
        }
    }

    #[test]
    fn a_mutated_jepsen_log_is_read_or_names_a_line(edits in edits()) {
        let text = mutate(LOG, &edits, b"[](){}#:\" \t\n0123456789-aknil");
        if let Err(error) = Format::JepsenLog.parse(&text) {
            prop_assert!(line_of(&error).is_some(), "{}", error);
        }
    }
}

/// An opener of a nested form, and whether it leaves the form open (a tag's or `#_`'s form
/// is the next one).
const OPENERS: &[&str] = &[
    "[",
    "(",
    "{:k ",
    "#{",
    "#_",
    "#tag ",
    "#jepsen.history.Op{:v ",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Up to 100,000 openers of every kind, mixed, on a line after a good operation: an
    /// error naming that line and the limit, in both formats.
    #[test]
    fn deep_nesting_is_an_error_naming_the_line(
        openers in prop::collection::vec(prop::sample::select(OPENERS), 1..8),
        depth in 129usize..100_000,
        in_a_vector in any::<bool>(),
    ) {
        let deep: String = openers.iter().cycle().take(depth).copied().collect();
        let op = "{:process 0, :type :invoke, :f :read, :value nil}";
        let text = format!("{}{op}\n{{:process 0, :type :ok, :f :read, :value {deep}",
            if in_a_vector { "[" } else { "" });
        let error = Format::Edn.parse(&text).unwrap_err();
        prop_assert_eq!(line_of(&error), Some(2), "{}", error);
        prop_assert!(error.to_string().contains("nested deeper than 128 levels"), "{}", error);

        let log = format!("INFO  jepsen.util - 1\t:invoke\t:write\t4\n\
                           INFO  jepsen.util - 1\t:ok\t:write\t{deep}");
        let error = Format::JepsenLog.parse(&log).unwrap_err();
        prop_assert_eq!(line_of(&error), Some(2), "{}", error);
    }
}
