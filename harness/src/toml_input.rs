//! Limits on the TOML files the harness reads: suite files (`faultline suite`) and system
//! files (`--system-file`). Both are small, written by hand, and may come from anywhere (a
//! pull request's CI configuration), so they are read within limits and checked before the
//! toml crate sees them:
//!
//! - a file is at most [`MAX_FILE_BYTES`] and a line at most [`MAX_LINE_BYTES`]: a suite of
//!   hundreds of tests is tens of KB, and the toml crate quotes the whole offending line in
//!   its errors, which must stay readable;
//! - arrays and inline tables nest at most [`MAX_DEPTH`] levels. The toml crate stops at 80
//!   levels by itself, without overflowing the stack, but its error then quotes a line of
//!   100,000 brackets; this check names the line and the limit instead. Dotted keys nested
//!   past its limit get its own short "recursion limit" error.

use std::fmt;
use std::io::Read;
use std::path::Path;

use faultline_history::describe_bytes;

/// The largest file read: 1 MiB.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// The longest line: 64 KiB.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// How deeply arrays and inline tables may nest: 32 levels. Suite and system files nest two
/// (a table header, a list of values); `[[matrix]]` headers count two.
pub const MAX_DEPTH: usize = 32;

/// Why a file was refused before it was parsed: where (a line, when one is to blame) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// From 1.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Refusal {}

/// Reads the TOML file at `path`, refusing one larger than [`MAX_FILE_BYTES`] without
/// reading more of it; the parsers [`check`] the text.
pub fn read(path: &Path) -> Result<String, Refusal> {
    let refused = |message: String| Refusal {
        line: None,
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| refused(format!("cannot read it: {e}")))?;
    let mut text = String::new();
    // One byte more than the limit tells a file at the limit from one past it, without
    // reading a huge file into memory.
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| refused(format!("cannot read it: {e}")))?;
    if text.len() > MAX_FILE_BYTES {
        return Err(refused(format!(
            "the file is larger than {}, the limit for a TOML file the harness reads",
            describe_bytes(MAX_FILE_BYTES)
        )));
    }
    Ok(text)
}

/// Where a scan of TOML is: in plain TOML, a comment, or a string of one of its four kinds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Plain,
    Comment,
    /// `"..."`, with escapes.
    Basic,
    /// `'...'`, without.
    Literal,
    /// `"""..."""`, with escapes, over lines.
    MultiBasic,
    /// `'''...'''`, over lines.
    MultiLiteral,
}

/// Checks `text` against [`MAX_LINE_BYTES`] and [`MAX_DEPTH`] with one pass over its bytes,
/// skipping strings and comments, before the toml crate parses it. The scan only counts
/// brackets: a file it lets through may still be bad TOML, for the toml crate to say why.
pub fn check(text: &str) -> Result<(), Refusal> {
    let bytes = text.as_bytes();
    let (mut line, mut line_start, mut depth) = (1, 0, 0usize);
    let mut state = State::Plain;
    let starts = |at: usize, quotes: &[u8]| bytes[at..].starts_with(quotes);
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte == b'\n' {
            if at - line_start > MAX_LINE_BYTES {
                return Err(too_long(line));
            }
            line += 1;
            line_start = at + 1;
            // A one-line string or a comment ends with its line, even an unterminated one.
            if matches!(state, State::Comment | State::Basic | State::Literal) {
                state = State::Plain;
            }
            at += 1;
            continue;
        }
        let mut step = 1;
        match (state, byte) {
            (State::Plain, b'#') => state = State::Comment,
            (State::Plain, b'"') if starts(at, b"\"\"\"") => {
                (state, step) = (State::MultiBasic, 3);
            }
            (State::Plain, b'"') => state = State::Basic,
            (State::Plain, b'\'') if starts(at, b"'''") => {
                (state, step) = (State::MultiLiteral, 3);
            }
            (State::Plain, b'\'') => state = State::Literal,
            (State::Plain, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Refusal {
                        line: Some(line),
                        message: format!(
                            "arrays and inline tables nested deeper than {MAX_DEPTH} levels \
                             (column {}); a suite or system file nests two",
                            text[line_start..at].chars().count() + 1
                        ),
                    });
                }
            }
            (State::Plain, b']' | b'}') => depth = depth.saturating_sub(1),
            // An escape: the next byte is never the string's end (a newline after it is a
            // line ending, counted above).
            (State::Basic | State::MultiBasic, b'\\') if bytes.get(at + 1) != Some(&b'\n') => {
                step = 2;
            }
            (State::Basic, b'"') | (State::Literal, b'\'') => state = State::Plain,
            (State::MultiBasic, b'"') if starts(at, b"\"\"\"") => {
                (state, step) = (State::Plain, 3);
            }
            (State::MultiLiteral, b'\'') if starts(at, b"'''") => {
                (state, step) = (State::Plain, 3);
            }
            _ => {}
        }
        at += step;
    }
    if bytes.len() - line_start > MAX_LINE_BYTES {
        return Err(too_long(line));
    }
    Ok(())
}

/// What the parsers' property tests share: mutations of a good file, and deep nesting.
#[cfg(test)]
pub mod fuzz {
    use proptest::prelude::*;

    /// Edits: where, what (overwrite, insert, remove), and which byte of TOML's own.
    pub fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8, u8)>> {
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..10)
    }

    /// `text` with `edits` applied, each byte from TOML's punctuation, quotes and a few
    /// letters and digits.
    pub fn mutate(text: &str, edits: &[(prop::sample::Index, u8, u8)]) -> String {
        const ALPHABET: &[u8] = b"[]{}=\"'#.,\\ \n\tabnx019-";
        let mut bytes = text.as_bytes().to_vec();
        for (at, op, byte) in edits {
            let byte = ALPHABET[usize::from(*byte) % ALPHABET.len()];
            let at = at.index(bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A value nested `depth` levels of arrays and inline tables, mixed as `openers` says.
    pub fn deep_value(openers: &[bool], depth: usize) -> String {
        openers
            .iter()
            .cycle()
            .take(depth)
            .map(|&array| if array { "[" } else { "{a = " })
            .collect()
    }

    /// A depth past the limit, up to 100,000, and how arrays and tables mix.
    pub fn deep() -> impl Strategy<Value = (Vec<bool>, usize)> {
        (
            prop::collection::vec(any::<bool>(), 1..6),
            (super::MAX_DEPTH + 1)..100_000,
        )
    }
}

fn too_long(line: usize) -> Refusal {
    Refusal {
        line: Some(line),
        message: format!(
            "the line is longer than {}, the limit for a line of a TOML file the harness reads",
            describe_bytes(MAX_LINE_BYTES)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_and_comments_only() {
        let ok = r#"
[defaults]            # [[[[ not counted
name = "a [[[[ \" [[[["
path = 'c:\[[[['
multi = """
[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
"""
literal = '''[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['''
[[matrix]]
nodes = [[3, 5], {a = [1]}]
"#;
        assert_eq!(check(ok), Ok(()));
        let deep = format!("[defaults]\nx = {}{}", "[".repeat(33), "]".repeat(33));
        assert_eq!(
            check(&deep),
            Err(Refusal {
                line: Some(2),
                message: "arrays and inline tables nested deeper than 32 levels (column 37); \
                          a suite or system file nests two"
                    .into()
            })
        );
        let shallow = format!("x = {}{}", "[".repeat(32), "]".repeat(32));
        assert_eq!(check(&shallow), Ok(()));
    }

    #[test]
    fn long_lines_and_large_files_are_refused() {
        let long = format!("a = 1\nb = \"{}\"\n", "x".repeat(MAX_LINE_BYTES));
        assert_eq!(check(&long).unwrap_err().line, Some(2));
        let last = format!("a = 1\nb = \"{}\"", "x".repeat(MAX_LINE_BYTES));
        assert_eq!(check(&last).unwrap_err().line, Some(2));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        let lines = "a = 1\n".repeat(MAX_FILE_BYTES / 6 + 1);
        std::fs::write(&path, &lines).unwrap();
        let error = read(&path).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the file is larger than 1 MiB, the limit for a TOML file the harness reads"
        );
        std::fs::write(&path, &lines[..MAX_FILE_BYTES]).unwrap();
        assert_eq!(read(&path).unwrap().len(), MAX_FILE_BYTES);
        let missing = read(&dir.path().join("missing.toml")).unwrap_err();
        assert!(missing.message.starts_with("cannot read it: "), "{missing}");
    }
}
