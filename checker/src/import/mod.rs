//! History file formats: Faultline's JSON Lines, and Jepsen's EDN maps and `jepsen.util` log
//! lines (see `../shared/testdata/porcupine/README.md`), and telling them apart.

pub mod edn;
mod edn_reader;
pub mod jepsen_log;

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::str::FromStr;

use faultline_history::{History, ReadError};

use crate::error::Error;

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Faultline's own: one JSON event a line.
    Jsonl,
    /// Jepsen's EDN operation maps.
    Edn,
    /// Jepsen's `jepsen.util` log lines.
    JepsenLog,
}

impl Format {
    /// Every format, by name.
    pub const ALL: [Format; 3] = [Format::Jsonl, Format::Edn, Format::JepsenLog];

    /// The format's name: `jsonl`, `edn` or `jepsen-log`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::JepsenLog => "jepsen-log",
        }
    }

    /// The format of `path`: by its extension (`.jsonl`, `.edn`, `.log`), otherwise by what
    /// `text` starts with (`{"` JSON, `{:` or `[` EDN, `jepsen.util` lines a log).
    pub fn detect(path: &Path, text: &str) -> Option<Format> {
        if let Some(format) = Format::by_extension(path) {
            return Some(format);
        }
        let start = text.trim_start();
        if start.starts_with("{\"") {
            Some(Format::Jsonl)
        } else if start.starts_with("{:") || start.starts_with('[') {
            Some(Format::Edn)
        } else if text.lines().any(|line| line.contains("jepsen.util")) {
            Some(Format::JepsenLog)
        } else {
            None
        }
    }

    /// The format of `path` by its extension alone: `.jsonl`, `.edn` or `.log`.
    pub fn by_extension(path: &Path) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl") => Some(Format::Jsonl),
            Some("edn") => Some(Format::Edn),
            Some("log") => Some(Format::JepsenLog),
            _ => None,
        }
    }

    /// Parses `text` in this format.
    pub fn parse(self, text: &str) -> Result<History, Error> {
        match self {
            Format::Jsonl => Ok(History::from_jsonl(text)?),
            Format::Edn => edn::parse(text),
            Format::JepsenLog => jepsen_log::parse(text),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| format!("unknown format {name:?} (expected jsonl, edn or jepsen-log)"))
    }
}

/// Reads a history file, in `format` or else the format [`Format::detect`] finds.
///
/// JSON Lines, named so or by its `.jsonl` extension, is read as a stream, one line at a time
/// ([`History::read_jsonl`]): a history of millions of events never sits in memory as text
/// beside its events. The other formats, and a file whose format its contents tell, are read
/// whole first.
pub fn read_history(path: &Path, format: Option<Format>) -> Result<(History, Format), Error> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if format.or_else(|| Format::by_extension(path)) == Some(Format::Jsonl) {
        let file = File::open(path).map_err(io_error)?;
        let history =
            History::read_jsonl(BufReader::with_capacity(READ_BUFFER, file)).map_err(|error| {
                match error {
                    ReadError::Malformed(error) => Error::from(error),
                    ReadError::Io { source, .. } => io_error(source),
                }
            })?;
        return Ok((history, Format::Jsonl));
    }
    let text = std::fs::read_to_string(path).map_err(io_error)?;
    let format = format
        .or_else(|| Format::detect(path, &text))
        .ok_or_else(|| Error::UnknownFormat {
            path: path.to_path_buf(),
        })?;
    Ok((format.parse(&text)?, format))
}

/// How much of a JSON Lines file is read at once: 1 MiB, a few thousand events.
const READ_BUFFER: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_extension_then_contents() {
        let detect = |path: &str, text: &str| Format::detect(Path::new(path), text);
        assert_eq!(detect("h.jsonl", ""), Some(Format::Jsonl));
        assert_eq!(detect("h.edn", ""), Some(Format::Edn));
        assert_eq!(detect("etcd_000.log", ""), Some(Format::JepsenLog));
        assert_eq!(detect("c01-ok.txt", "{:process 0}"), Some(Format::Edn));
        assert_eq!(detect("h", "\n[{:process 0}]"), Some(Format::Edn));
        assert_eq!(detect("h.txt", "{\"index\":0}"), Some(Format::Jsonl));
        assert_eq!(
            detect("h.out", "noise\nINFO  jepsen.util - 1\t:invoke\t:read\tnil"),
            Some(Format::JepsenLog)
        );
        assert_eq!(detect("notes.txt", "hello"), None);
        assert_eq!("jepsen-log".parse(), Ok(Format::JepsenLog));
        assert!(
            "xml"
                .parse::<Format>()
                .unwrap_err()
                .contains("expected jsonl")
        );
    }
}
