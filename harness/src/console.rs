//! Printing that never panics. With stdout or stderr a closed pipe (`faultline test | head`, a
//! log collector that died), `println!` panics, and a panic mid-run leaves the cluster running
//! and the run unfinished. These macros drop what cannot be written instead: the run goes on,
//! its files and exit code are what they would have been.

/// `println!` to stdout, dropping the text if nobody reads it.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `print!` to stdout, dropping the text if nobody reads it.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, $($arg)*).and_then(|()| stdout.flush());
    }};
}

/// `eprintln!`, dropping the text if nobody reads it.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub(crate) use {errln, out, outln};
