//! Whether the clock fault can be used here, and if not, why, in words a user can act on:
//! libfaketime must be installed and work, and the node must be a program it can reach
//! (dynamically linked, so that the loader preloads it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where Debian's and a source build's libfaketime are, in the order they are tried (here,
/// and on hosts over SSH); `FAULTLINE_LIBFAKETIME` names another here.
pub const LIBRARY_PATHS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// How far the trial moves the clock of `date`: far more than any delay of the trial.
const TRIAL_OFFSET_S: i64 = 1000;

/// Why the clock fault cannot be used here.
#[derive(Debug, thiserror::Error)]
pub enum FaketimeUnavailable {
    /// No libfaketime found.
    #[error(
        "libfaketime is not installed (looked for {}): install it (apt-get install faketime), \
         or name it with FAULTLINE_LIBFAKETIME=/path/to/libfaketime.so.1",
        LIBRARY_PATHS.join(", ")
    )]
    NotInstalled,
    /// A trial run under it did not see its clock moved.
    #[error("a trial of libfaketime ({library}) failed: {reason}")]
    TrialFailed {
        /// The library tried.
        library: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Says whether libfaketime works here, and where it is: runs `date +%s` under it with a
/// control file that puts its clock [`TRIAL_OFFSET_S`] ahead, and checks that it was.
pub fn faketime_available() -> Result<PathBuf, FaketimeUnavailable> {
    let library = find_library().ok_or(FaketimeUnavailable::NotInstalled)?;
    let failed = |reason: String| FaketimeUnavailable::TrialFailed {
        library: library.clone(),
        reason,
    };
    let dir = tempfile::Builder::new()
        .prefix("faultline-faketime-check")
        .tempdir()
        .map_err(|error| failed(format!("cannot create a temporary directory: {error}")))?;
    let control = dir.path().join("control");
    std::fs::write(&control, format!("+{TRIAL_OFFSET_S} x1\n"))
        .map_err(|error| failed(format!("cannot write {}: {error}", control.display())))?;
    let output = Command::new("date")
        .arg("+%s")
        .env("LD_PRELOAD", &library)
        .env("FAKETIME_TIMESTAMP_FILE", &control)
        .env("FAKETIME_NO_CACHE", "1")
        .output()
        .map_err(|error| failed(format!("cannot run date: {error}")))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs() as i64)
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&output.stdout);
    let read: i64 = text.trim().parse().map_err(|_| {
        failed(format!(
            "date printed {:?} ({}; stderr {:?})",
            text.trim(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    })?;
    let ahead = read - now;
    if (ahead - TRIAL_OFFSET_S).abs() > 5 {
        return Err(failed(format!(
            "date under it read {ahead} s ahead of true time, not {TRIAL_OFFSET_S} s"
        )));
    }
    Ok(library)
}

fn find_library() -> Option<PathBuf> {
    if let Some(named) = std::env::var_os("FAULTLINE_LIBFAKETIME") {
        let named = PathBuf::from(named);
        return named.is_file().then_some(named);
    }
    LIBRARY_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// Why `program` cannot run under libfaketime, if it cannot: it is not a dynamically linked
/// ELF executable (a static binary, such as a Go program, reads its clocks without the C
/// library, and a script's interpreter is another program). `None` when it can.
pub fn not_preloadable(program: &Path) -> Option<String> {
    let bytes = match std::fs::read(program) {
        Ok(bytes) => bytes,
        Err(error) => return Some(format!("{} cannot be read: {error}", program.display())),
    };
    match elf_interpreter(&bytes) {
        Ok(true) => None,
        Ok(false) => Some(format!(
            "{} is statically linked: libfaketime reaches only dynamically linked programs",
            program.display()
        )),
        Err(what) => Some(format!(
            "{} is {what}, not a dynamically linked ELF executable that libfaketime can reach",
            program.display()
        )),
    }
}

/// Whether an ELF file names a program interpreter (the dynamic loader, which preloads
/// libfaketime): a `PT_INTERP` program header. `Err` says what the file is otherwise.
fn elf_interpreter(bytes: &[u8]) -> Result<bool, &'static str> {
    const PT_INTERP: u32 = 3;
    if bytes.starts_with(b"#!") {
        return Err("a script");
    }
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file");
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF file");
    }
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let truncated = "a truncated ELF file";
    let table = u64_at(0x20).ok_or(truncated)? as usize;
    let entry_size = u16_at(0x36).ok_or(truncated)? as usize;
    let entries = u16_at(0x38).ok_or(truncated)? as usize;
    for index in 0..entries {
        let at = table
            .checked_add(index.checked_mul(entry_size).ok_or(truncated)?)
            .ok_or(truncated)?;
        if u32_at(at).ok_or(truncated)? == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit ELF header with `types` as its program headers' types.
    fn elf(types: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for kind in types {
            let mut header = vec![0u8; 56];
            header[..4].copy_from_slice(&kind.to_le_bytes());
            bytes.extend(header);
        }
        bytes
    }

    #[test]
    fn a_program_with_an_interpreter_is_dynamic_and_one_without_is_static() {
        assert_eq!(elf_interpreter(&elf(&[6, 3, 1])), Ok(true));
        assert_eq!(elf_interpreter(&elf(&[1, 1, 4])), Ok(false));
        assert_eq!(elf_interpreter(b"#!/bin/sh\necho"), Err("a script"));
        assert_eq!(elf_interpreter(b"hello"), Err("not an ELF file"));
        let mut cut = elf(&[1, 3]);
        cut.truncate(64 + 20);
        assert_eq!(elf_interpreter(&cut), Err("a truncated ELF file"));
    }

    #[test]
    fn this_test_binary_is_dynamic_and_a_missing_file_is_named() {
        let me = std::env::current_exe().unwrap();
        assert_eq!(not_preloadable(&me), None);
        let missing = not_preloadable(Path::new("/nonexistent/node")).unwrap();
        assert!(missing.contains("/nonexistent/node"), "{missing}");
    }

    #[test]
    fn libfaketime_moves_the_clock_of_a_trial_program_or_says_why_not() {
        match faketime_available() {
            Ok(library) => assert!(library.is_file()),
            Err(FaketimeUnavailable::NotInstalled) => {
                eprintln!("skipped: libfaketime is not installed (apt-get install faketime)")
            }
            Err(other) => panic!("libfaketime is installed but did not work: {other}"),
        }
    }
}
