//! Histories written out, for other tools and for people: Faultline's JSON Lines, and Jepsen's
//! EDN ([`edn`]), which Knossos and Jepsen read, so that a verdict can be checked again
//! by another checker. Both read back ([`crate::read_history`]) as the history written.

pub mod edn;
mod edn_writer;

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::str::FromStr;

use faultline_history::History;

use crate::error::Error;

/// A format a history can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// Faultline's own: one JSON event a line.
    Jsonl,
    /// Jepsen's EDN: a vector of operation maps, one a line.
    Edn,
}

impl ExportFormat {
    /// Every format, by name.
    pub const ALL: [ExportFormat; 2] = [ExportFormat::Jsonl, ExportFormat::Edn];

    /// The format's name: `jsonl` or `edn`.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Edn => "edn",
        }
    }

    /// Writes `history` in this format.
    pub fn write(self, history: &History, out: impl Write) -> io::Result<()> {
        match self {
            ExportFormat::Jsonl => history.write_jsonl(out),
            ExportFormat::Edn => edn::write(history, out),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        ExportFormat::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| format!("unknown export format {name:?} (expected jsonl or edn)"))
    }
}

/// Writes `history` in `format` to the file at `path`, replacing it.
pub fn export_history(history: &History, format: ExportFormat, path: &Path) -> Result<(), Error> {
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(write_error)?;
    let mut out = BufWriter::new(file);
    format.write(history, &mut out).map_err(write_error)?;
    out.flush().map_err(write_error)
}
