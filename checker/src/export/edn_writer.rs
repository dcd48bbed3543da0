//! The EDN that Jepsen histories are written in, printed: JSON values as EDN (`null` as
//! `nil`, arrays as vectors, objects as maps with string keys), strings with only the escapes
//! every EDN reader knows, and names as keywords where they can be keywords. What this prints,
//! [`crate::import`]'s reader and Clojure's `clojure.edn` both read.

use std::fmt::Write;

use serde_json::{Number, Value};

/// Appends `value` as EDN.
pub fn value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => self::number(out, number),
        Value::String(text) => string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                self::value(out, item);
            }
            out.push(']');
        }
        Value::Object(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                string(out, key);
                out.push(' ');
                self::value(out, item);
            }
            out.push('}');
        }
    }
}

/// Integers as they are (past `i64`, with Clojure's `N` of big integers); floats in the
/// shortest form that reads back to the same `f64`, always with a `.` or an exponent, so that
/// they read back as floats.
fn number(out: &mut String, number: &Number) {
    if let Some(integer) = number.as_i64() {
        let _ = write!(out, "{integer}");
    } else if let Some(integer) = number.as_u64() {
        let _ = write!(out, "{integer}N");
    } else if let Some(float) = number.as_f64() {
        // `{:?}` is the shortest round-trip form and keeps `1.0` from becoming `1`.
        let _ = write!(out, "{float:?}");
    }
}

/// Appends `text` as an EDN string. Besides `\"` and `\\`, only `\n`, `\t`, `\r` and `\uXXXX`
/// (for the other control characters) are escapes in every EDN reader; everything else,
/// Unicode included, is written as it is.
pub fn string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `name` as a keyword (`:read`) if it can be one, else as a string: Jepsen's `:f`,
/// `:type` and `:error` are keywords, and readers take either.
pub fn name(out: &mut String, name: &str) {
    if is_keyword(name) {
        out.push(':');
        out.push_str(name);
    } else {
        string(out, name);
    }
}

/// Whether `name` can follow `:` as a keyword that every EDN reader reads back as `name`: ASCII
/// letters, digits and `* + ! - _ ? < > = .`, not starting with a digit, a `.`, or a sign
/// followed by a digit (which would read as a number). Namespaces (`/`) and the rarer
/// characters EDN allows are left to strings, which say the same.
pub fn is_keyword(name: &str) -> bool {
    let constituent = |c: char| c.is_ascii_alphanumeric() || "*+!-_?<>=.".contains(c);
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (None, _) => false,
        (Some(first), _) if first.is_ascii_digit() || first == '.' => false,
        (Some('-' | '+'), Some(second)) if second.is_ascii_digit() => false,
        _ => name.chars().all(constituent),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn edn(v: &Value) -> String {
        let mut out = String::new();
        value(&mut out, v);
        out
    }

    #[test]
    fn json_values_are_printed_as_edn() {
        assert_eq!(edn(&json!(null)), "nil");
        assert_eq!(edn(&json!([1, -2, [true, false]])), "[1 -2 [true false]]");
        assert_eq!(
            edn(&json!({"n1": ["n2", "n3"], "x": {}})),
            r#"{"n1" ["n2" "n3"], "x" {}}"#
        );
        assert_eq!(edn(&json!(1.0)), "1.0");
        assert_eq!(edn(&json!(-0.25)), "-0.25");
        assert_eq!(edn(&json!(1e300)), "1e300");
        assert_eq!(edn(&json!(u64::MAX)), "18446744073709551615N");
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_control_characters() {
        assert_eq!(
            edn(&json!("a\"b\\c\nd\te\rf\u{1}g\u{7f}é🦀")),
            r#""a\"b\\c\nd\te\rf\u0001g\u007fé🦀""#
        );
    }

    #[test]
    fn names_are_keywords_only_where_they_read_back_the_same() {
        for keyword in [
            "read",
            "cas-mismatch",
            "start-partition",
            "ok?",
            "x1",
            "-a",
            "+",
            "<=>",
        ] {
            assert!(is_keyword(keyword), "{keyword}");
        }
        for string in [
            "", "1x", "-1", "+2", ".5", "a b", "a/b", "a:b", "\"", "é", "a,b", "a;b",
        ] {
            assert!(!is_keyword(string), "{string}");
        }
        let mut out = String::new();
        name(&mut out, "timeout");
        out.push(' ');
        name(&mut out, "connection refused");
        assert_eq!(out, r#":timeout "connection refused""#);
    }
}
