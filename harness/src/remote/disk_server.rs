//! `faultline disk-serve DIR`, the host's side of a power-loss disk on a host (`--hosts` with
//! the `power-loss` fault): the harness copies itself to the host and runs this over SSH, as
//! root, one per node. It mounts a [`PowerLossDisk`] on the node's data dir and answers one
//! JSON line for each command line on its stdin:
//!
//! - `ready`: `{"ok":true}` once mounted;
//! - `checkpoint`: everything written so far is made durable (the test begins);
//! - `cut` or `cut SEED`: the power cut (torn with SEED): `{"ok":true,"loss":{...}}`;
//! - `unmount`: the files are left as plain files in the data dir, and the server ends.
//!
//! A failure is `{"error":"..."}`. Its stdin ending (the harness's connection closed, or
//! the harness died) unmounts the disk the same way: nothing stays mounted on the host.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use faultline_nemesis::PowerLossDisk;
use serde_json::{Value, json};

/// Serve a power-loss disk on a directory, for a node on this host (the harness runs it).
#[derive(Args, Clone, Debug)]
pub struct DiskServeArgs {
    /// The directory to mount the disk on (created if missing): a node's data dir.
    pub dir: PathBuf,
}

/// Runs `faultline disk-serve`: serves until `unmount` or the end of stdin.
pub fn run(args: &DiskServeArgs) -> Result<()> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mounted = std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))
        .and_then(|()| {
            PowerLossDisk::mount(&args.dir)
                .with_context(|| format!("mounting a power-loss disk on {}", args.dir.display()))
        });
    let disk = match mounted {
        Ok(disk) => disk,
        Err(error) => {
            // Every question gets the reason, so the harness hears it whatever it asks.
            let answer = json!({"error": format!("{error:#}")});
            writeln!(stdout, "{answer}")?;
            stdout.flush()?;
            return Err(error);
        }
    };
    let mut asked_to_unmount = false;
    for line in stdin.lines() {
        let Ok(line) = line else {
            break;
        };
        if line.trim() == "unmount" {
            asked_to_unmount = true;
            break;
        }
        writeln!(stdout, "{}", answer(&disk, line.trim()))?;
        stdout.flush()?;
    }
    let unmounted = unmount(disk, &args.dir);
    if asked_to_unmount {
        let answer = match &unmounted {
            Ok(()) => json!({"ok": true}),
            Err(error) => json!({"error": format!("{error:#}")}),
        };
        writeln!(stdout, "{answer}")?;
        stdout.flush()?;
    }
    unmounted
}

/// What `command` (other than `unmount`) does to `disk`.
fn answer(disk: &PowerLossDisk, command: &str) -> Value {
    let mut words = command.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("ready"), None, None) => json!({"ok": true}),
        (Some("checkpoint"), None, None) => {
            disk.checkpoint();
            json!({"ok": true})
        }
        (Some("cut"), seed, None) => match seed.map(str::parse::<u64>).transpose() {
            Ok(torn) => json!({"ok": true, "loss": disk.lose_unsynced(torn).to_json()}),
            Err(error) => json!({"error": format!("cut: a bad seed: {error}")}),
        },
        _ => json!({"error": format!("unknown command {command:?}")}),
    }
}

/// Ends the disk, its files left as plain files where it was mounted.
fn unmount(disk: PowerLossDisk, dir: &Path) -> Result<()> {
    disk.unmount_into(dir)
        .with_context(|| format!("unmounting the power-loss disk on {}", dir.display()))
}
