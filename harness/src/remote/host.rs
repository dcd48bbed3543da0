//! What the harness does on one host, each action one script and one round trip on the
//! host's [`SshSession`]: check that it can work there, put a file there, start a program
//! detached (its pid in a file beside it), signal it, ask whether it lives, copy a directory
//! back, measure the host's clock against this machine's, and clean up.
//!
//! A process is known by its pid file *and* its working directory: a program started here
//! runs in its own directory, so a pid that the host reused for another process since (the
//! node died, the pid came round) does not match and is never signalled.
//!
//! A login user that is not root runs every action through `sudo -n` (no prompt: a sudo
//! that wants a password fails at once, and [`RemoteHost::check`] says so up front).

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use faultline_nemesis::{CHAIN_PREFIX, LIBFAKETIME_PATHS, PROCESS_LEFTOVERS};
use serde::{Deserialize, Serialize};

use super::ssh::{Conversation, SshError, SshOptions, SshSession};
use crate::host_addr::HostAddr;
use crate::system::HostProgram;

/// How long copying a file to a host, or a directory back, may take.
const COPY_TIMEOUT: Duration = Duration::from_secs(300);

/// How many times the clock offset is measured; the sample with the shortest round trip wins.
const CLOCK_SAMPLES: usize = 5;

/// How long a killed process may take to be gone.
const KILL_WAIT_TENTHS: u32 = 50;

/// How long a started program may take to have its pid written.
const START_WAIT_HUNDREDTHS: u32 = 500;

/// What [`RemoteHost::check`] found on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// The login user.
    pub user: String,
    /// Whether the login user is root.
    pub root: bool,
    /// Whether the login user may run `sudo -n` (root needs none).
    pub sudo: bool,
    /// Whether `iptables` is installed (in the PATH of root, `/usr/sbin` included).
    pub iptables: bool,
    /// Whether FUSE is there (`/dev/fuse`), for power-loss disks.
    pub fuse: bool,
    /// Where libfaketime is, for the clock faults (the first of [`LIBFAKETIME_PATHS`] there).
    pub faketime: Option<String>,
    /// Programs the run needs that the host lacks.
    pub missing: Vec<String>,
    /// What the node's program, when installed on the host, says of itself (the first line
    /// of its `--version`).
    pub program_version: Option<String>,
    /// The directories of earlier runs under [`RUNS_DIR`] (live or left by a harness that
    /// was killed).
    pub leftovers: Vec<String>,
    /// Whether something listens on the nodes' ports ([`NODE_PORTS`]): a node of an earlier
    /// run, most likely.
    pub ports_taken: bool,
    /// Whether a chain of Faultline's is hooked into `INPUT` (`-j FAULTLINE-...`): an earlier
    /// run's partition, which would cut this run's links too.
    pub chains_hooked: bool,
    /// The host's address that the connection reached (sshd's `SSH_CONNECTION`): where its
    /// node listens, and what the other hosts' rules name it by. `None` if it is not IPv4.
    pub address: Option<Ipv4Addr>,
}

/// The programs every run needs on a host, each with the Debian package that has it.
const NEEDED: &[(&str, &str)] = &[
    ("tar", "tar"),
    ("setsid", "util-linux"),
    ("mv", "coreutils"),
    ("nohup", "coreutils"),
    ("readlink", "coreutils"),
    ("date", "coreutils"),
];

/// Where every run keeps what it puts on a host, one directory per run.
pub const RUNS_DIR: &str = "/var/tmp/faultline";

/// The ports a node listens on on a host of its own, for clients and for peers: one node per
/// host, so fixed ports, the same on every host; above the well-known ports and below Linux's
/// ephemeral range, as etcd's 2379 and 2380 are.
pub const NODE_PORTS: [u16; 2] = [7401, 7402];

/// Root's PATH on a host, for programs in the sbin directories (iptables).
const ROOT_PATH: &str = "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"";

/// What a run needs of each host besides what every run needs ([`NEEDED`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostNeeds {
    /// iptables, for a run that cuts links.
    pub iptables: bool,
    /// The node's program: copied there, or installed there already.
    pub program: HostProgram,
}

/// How long the node's installed program may take to tell its version.
const VERSION_TIMEOUT_SECS: u32 = 5;

/// The part of [`check_script`] that looks for what earlier runs left: their directories, a
/// listener on the nodes' ports (in /proc/net/tcp and tcp6, state 0A), a chain of ours hooked
/// into `INPUT` (read as root, if the user can become root).
fn leftovers_script() -> String {
    let ports: Vec<String> = NODE_PORTS
        .iter()
        .map(|port| format!("{port:04X}"))
        .collect();
    format!(
        "for x in {RUNS_DIR}/*/; do [ -d \"$x\" ] && echo \"leftover=${{x%/}}\"; done; \
         grep -qE '^ *[0-9]+: [0-9A-F]+:({ports}) [0-9A-F]+:[0-9A-F]+ 0A' /proc/net/tcp \
         /proc/net/tcp6 2>/dev/null && echo ports=taken; \
         $s env {ROOT_PATH} iptables -w -S INPUT 2>/dev/null | grep -q -- '-j {CHAIN_PREFIX}' \
         && echo chains=hooked; ",
        ports = ports.join("|"),
    )
}

/// The script behind [`RemoteHost::check`]: one `key=value` line per fact.
fn check_script(needs: &HostNeeds) -> String {
    // `$s` runs what follows as root, as the nodes will run (through sudo's own PATH).
    let mut script = format!(
        "echo \"uid=$(id -u)\"; echo \"user=$(id -un)\"; \
         if [ \"$(id -u)\" = 0 ]; then s=; else s='sudo -n'; fi; \
         if [ \"$(id -u)\" = 0 ] || sudo -n true >/dev/null 2>&1; \
         then echo sudo=yes; else echo sudo=no; fi; \
         if {ROOT_PATH} command -v iptables >/dev/null 2>&1; \
         then echo iptables=yes; else echo iptables=no; fi; \
         if [ -c /dev/fuse ]; then echo fuse=yes; fi; \
         for l in {libraries}; do if [ -f \"$l\" ]; then echo \"faketime=$l\"; break; fi; done; \
         echo \"connection=$SSH_CONNECTION\"; ",
        libraries = LIBFAKETIME_PATHS.join(" "),
    );
    script.push_str(&leftovers_script());
    for (program, _) in NEEDED {
        script.push_str(&format!(
            "command -v {program} >/dev/null 2>&1 || echo missing={program}; "
        ));
    }
    if let HostProgram::Installed {
        program,
        version_flag,
        ..
    } = &needs.program
    {
        // Looked for as root, as the node will be started (`RemoteHost::start`).
        let find = quote(&format!("command -v {}", quote(program)));
        script.push_str(&format!(
            "if $s sh -c {find} >/dev/null 2>&1; then :; else echo missing={program}; fi; "
        ));
        if let Some(flag) = version_flag {
            let ask = quote(&format!(
                "timeout -k 1 {VERSION_TIMEOUT_SECS} {} {flag} 2>/dev/null | head -n 1",
                quote(program)
            ));
            script.push_str(&format!("echo \"version=$($s sh -c {ask})\"; "));
        }
    }
    script
}

impl HostFacts {
    /// Reads what [`check_script`] printed.
    fn parse(text: &str) -> Result<HostFacts, String> {
        let mut facts = HostFacts {
            user: String::new(),
            root: false,
            sudo: false,
            iptables: false,
            fuse: false,
            faketime: None,
            missing: Vec::new(),
            program_version: None,
            leftovers: Vec::new(),
            ports_taken: false,
            chains_hooked: false,
            address: None,
        };
        let mut uid = None;
        for line in text.lines() {
            match line.trim().split_once('=') {
                Some(("uid", value)) => uid = Some(value.to_string()),
                Some(("user", value)) => facts.user = value.to_string(),
                Some(("sudo", value)) => facts.sudo = value == "yes",
                Some(("iptables", value)) => facts.iptables = value == "yes",
                Some(("fuse", value)) => facts.fuse = value == "yes",
                Some(("faketime", value)) => facts.faketime = Some(value.to_string()),
                Some(("missing", value)) => facts.missing.push(value.to_string()),
                Some(("leftover", value)) => facts.leftovers.push(value.to_string()),
                Some(("ports", value)) => facts.ports_taken = value == "taken",
                Some(("chains", value)) => facts.chains_hooked = value == "hooked",
                Some(("version", value)) if !value.trim().is_empty() => {
                    facts.program_version = Some(value.trim().to_string());
                }
                // `client_ip client_port server_ip server_port`.
                Some(("connection", value)) => {
                    facts.address = value
                        .split_whitespace()
                        .nth(2)
                        .and_then(|ip| ip.parse().ok());
                }
                // A login banner or a shell's greeting.
                _ => {}
            }
        }
        let Some(uid) = uid else {
            return Err(format!("the host's answer has no uid: {text:?}"));
        };
        facts.root = uid == "0";
        Ok(facts)
    }

    /// Whether the host can take part in a run that needs `needs`: the first thing missing,
    /// as an error that says what to fix.
    pub fn require(&self, name: &HostAddr, needs: &HostNeeds) -> Result<(), SshError> {
        self.require_root(name)?;
        let missing = self.missing.iter().map(String::as_str);
        let missing = missing.chain((needs.iptables && !self.iptables).then_some("iptables"));
        let Some(program) = missing.into_iter().next() else {
            self.require_version(name, needs)?;
            return self.require_no_leftovers(name);
        };
        let fix = match &needs.program {
            HostProgram::Installed {
                program: node, fix, ..
            } if node == program => fix.clone(),
            _ => {
                let package = NEEDED
                    .iter()
                    .find(|(needed, _)| *needed == program)
                    .map_or(program, |(_, package)| *package);
                format!("install it (apt-get install {package})")
            }
        };
        Err(SshError::Missing {
            host: name.to_string(),
            program: program.to_string(),
            fix,
        })
    }
}

impl HostFacts {
    /// Whether the node's installed program says the version it must, if it must.
    fn require_version(&self, name: &HostAddr, needs: &HostNeeds) -> Result<(), SshError> {
        let HostProgram::Installed {
            program,
            fix,
            version: Some(expected),
            ..
        } = &needs.program
        else {
            return Ok(());
        };
        if self.program_version.as_deref() == Some(expected.as_str()) {
            return Ok(());
        }
        Err(SshError::WrongVersion {
            host: name.to_string(),
            program: program.clone(),
            found: self
                .program_version
                .clone()
                .unwrap_or_else(|| "nothing".to_string()),
            expected: expected.clone(),
            fix: fix.clone(),
        })
    }

    /// Whether the harness can act as root on the host (root, or passwordless sudo).
    pub fn require_root(&self, name: &HostAddr) -> Result<(), SshError> {
        if self.root || self.sudo {
            return Ok(());
        }
        Err(SshError::NoSudo {
            host: name.to_string(),
            name: name.host.clone(),
            user: self.user.clone(),
        })
    }

    /// Whether an earlier run left what would get in the way: a listener on the nodes'
    /// ports, a chain of ours hooked into `INPUT`. Its directories alone are in no one's way.
    fn require_no_leftovers(&self, name: &HostAddr) -> Result<(), SshError> {
        let mut what = Vec::new();
        if self.ports_taken {
            let [client, peer] = NODE_PORTS;
            what.push(format!(
                "something listens on port {client} or {peer}, the nodes' (a node of an earlier \
                 run, or another service)"
            ));
        }
        if self.chains_hooked {
            what.push(format!("a chain {CHAIN_PREFIX}... is hooked into INPUT"));
        }
        if what.is_empty() {
            return Ok(());
        }
        if !self.leftovers.is_empty() {
            what.push(format!("runs' directories: {}", self.leftovers.join(", ")));
        }
        Err(SshError::Leftovers {
            host: name.to_string(),
            what: what.join("; "),
        })
    }
}

/// What [`RemoteHost::clean_leftovers`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Processes killed (nodes of earlier runs).
    pub killed: usize,
    /// Chains removed.
    pub chains: Vec<String>,
    /// Run directories removed.
    pub dirs: Vec<String>,
}

/// A host's clock against this machine's, as measured over SSH.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// The host's clock minus this machine's, in milliseconds (positive: the host is ahead).
    pub offset_ms: f64,
    /// The round trip of the measurement, in milliseconds: the offset is right within half
    /// of it.
    pub round_trip_ms: f64,
}

impl ClockOffset {
    /// The offset when this machine's clock read `sent_ns` just before asking and
    /// `received_ns` just after the answer, and the host's read `remote_ns` in between: the
    /// host read its clock, at best guess, at the midpoint of the round trip.
    pub fn measured(sent_ns: i128, received_ns: i128, remote_ns: i128) -> ClockOffset {
        let midpoint = sent_ns + (received_ns - sent_ns) / 2;
        ClockOffset {
            offset_ms: (remote_ns - midpoint) as f64 / 1e6,
            round_trip_ms: (received_ns - sent_ns) as f64 / 1e6,
        }
    }
}

/// Nanoseconds since the epoch on this machine's clock.
pub(super) fn now_ns() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

/// `text` quoted for `sh`, as one word.
pub(crate) fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,@+%".contains(&b))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The directory of the path `path` on a host (whose paths are `/`-separated whatever this
/// machine's are): `.` for a bare name, `/` for a file at the root.
fn parent_dir(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        None => ".",
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
    }
}

/// A program started on a host (see [`RemoteHost::start`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    /// Its pid there.
    pub pid: u32,
    /// When it was started, in nanoseconds since the epoch by the host's clock (`None` if
    /// the host's `date` has no `%N`).
    pub at_ns: Option<i128>,
}

/// A program to start on a host (see [`RemoteHost::start`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteProgram {
    /// The program, as the host runs it (a path, or a name in its PATH).
    pub program: String,
    pub args: Vec<String>,
    /// Its own directory on the host: it runs there, and its pid file is `pid` in it.
    pub dir: String,
    /// Where its stdout and stderr go (appended: a restarted program keeps its log).
    pub log: String,
}

/// The signals the harness sends to processes on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteSignal {
    Kill,
    Stop,
    Cont,
    Term,
}

impl RemoteSignal {
    fn name(self) -> &'static str {
        match self {
            RemoteSignal::Kill => "KILL",
            RemoteSignal::Stop => "STOP",
            RemoteSignal::Cont => "CONT",
            RemoteSignal::Term => "TERM",
        }
    }
}

/// A shell test that the process of `dir`'s pid file runs, as `$p`: its working directory
/// is `dir` (`$d`, symbolic links resolved; a zombie's is unreadable, so a dead process that
/// was not reaped does not count).
fn ours(dir: &str) -> String {
    ours_in(&quote(dir))
}

/// [`ours`] of a directory given as a shell word (`"$x"`, or a quoted path).
fn ours_in(dir: &str) -> String {
    format!(
        "d=$(cd {dir} 2>/dev/null && pwd -P) && p=$(cat {dir}/pid 2>/dev/null) && \
         [ -n \"$p\" ] && [ \"$(readlink /proc/$p/cwd 2>/dev/null)\" = \"$d\" ]"
    )
}

/// A host that is ready for a run: connected, checked, its clock measured.
pub struct ReadyHost {
    pub host: RemoteHost,
    pub facts: HostFacts,
    pub clock: ClockOffset,
}

impl ReadyHost {
    /// Connects to `addr`, checks that a run that needs `needs` can use it (see
    /// [`HostFacts::require`]) and measures its clock; on any failure the connection is
    /// closed and the error names the host and what to fix. What `faultline hosts` and
    /// `faultline test --hosts` both do first.
    pub async fn connect(
        addr: &HostAddr,
        options: &SshOptions,
        needs: &HostNeeds,
    ) -> Result<ReadyHost, SshError> {
        let session = SshSession::connect(addr, options).await?;
        let (host, facts) = RemoteHost::check(session, needs).await?;
        let clock = match facts.require(addr, needs) {
            Ok(()) => host.clock_offset().await,
            Err(error) => Err(error),
        };
        match clock {
            Ok(clock) => Ok(ReadyHost { host, facts, clock }),
            Err(error) => {
                // A failure to close is not the host's readiness: the master goes on drop.
                let _ = host.close().await;
                Err(error)
            }
        }
    }
}

/// Shell that removes every chain whose name starts with `prefix` (a name made of letters,
/// digits and dashes), first unhooking it from `INPUT`, saying `chain=NAME` for each; `$f` is
/// 1 after it if one could not be removed (iptables said why on stderr). No iptables, no
/// chains.
fn remove_chains_script(prefix: &str) -> String {
    format!(
        "export {ROOT_PATH}; f=0; \
         for c in $(iptables -w -S 2>/dev/null | sed -n 's/^-N \\({prefix}[^ ]*\\)$/\\1/p'); do \
         while iptables -w -D INPUT -j \"$c\" 2>/dev/null; do :; done; \
         if iptables -w -F \"$c\" && iptables -w -X \"$c\"; then echo \"chain=$c\"; else f=1; fi; \
         done;"
    )
}

/// Shell that waits (bounded) until the shell that waited for process `$p` in directory `$d`
/// (as [`ours`] sets them) wrote how it ended: then nothing of it writes in `$d` any more.
/// Removes what libfaketime left in /dev/shm for processes that are gone (a killed node
/// under the clock faults leaves its semaphore and shared memory behind, see
/// `remove_process_leftovers`).
fn dead_faketime_leftovers_script() -> String {
    let globs: Vec<String> = PROCESS_LEFTOVERS
        .iter()
        .map(|prefix| format!("{prefix}*"))
        .collect();
    format!(
        "for f in {}; do if [ -e \"$f\" ] && [ ! -d \"/proc/${{f##*_}}\" ]; then rm -f \"$f\"; fi; done;",
        globs.join(" ")
    )
}

/// SIGKILLs the node `$p` of the directory `$d` (counting it in `$n`), waits (bounded) for its
/// watcher to write its exit, then SIGKILLs what is left of its process group: whatever the
/// node started (a system file's `node.start` may be a script that starts the server).
fn kill_node_and_its_group() -> String {
    format!(
        "g=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f3); \
         kill -s KILL \"$p\" && n=$((n+1)); {wait}; \
         if [ -n \"$g\" ] && [ \"$g\" -gt 1 ]; then kill -s KILL -- \"-$g\" 2>/dev/null; fi;",
        wait = await_exit_file()
    )
}

fn await_exit_file() -> String {
    format!(
        "i=0; while [ ! -e \"$d/exit.$p\" ] && [ $i -lt {KILL_WAIT_TENTHS} ]; do sleep 0.1; i=$((i+1)); done"
    )
}

/// One host, over its connection, as the login user or through sudo.
pub struct RemoteHost {
    session: SshSession,
    /// `sudo -n ` for a login user that is not root, else nothing.
    sudo: &'static str,
}

impl RemoteHost {
    /// Checks what the host offers (see [`HostFacts`]); the host then acts through sudo if its
    /// login user is not root. Whether the facts suffice is [`HostFacts::require`]'s to say.
    pub async fn check(
        session: SshSession,
        needs: &HostNeeds,
    ) -> Result<(RemoteHost, HostFacts), SshError> {
        let answer = session
            .run_ok("checking the host", &check_script(needs))
            .await?;
        let facts = HostFacts::parse(&answer).map_err(|detail| SshError::Failed {
            host: session.host().to_string(),
            what: "checking the host".to_string(),
            status: "an answer it could not read".to_string(),
            stderr: detail,
        })?;
        let sudo = if facts.root { "" } else { "sudo -n " };
        Ok((RemoteHost { session, sudo }, facts))
    }

    /// The host's connection.
    pub fn session(&self) -> &SshSession {
        &self.session
    }

    /// Closes the connection.
    pub async fn close(self) -> Result<(), SshError> {
        self.session.close().await
    }

    /// `script` run as root (through `sudo -n sh -c` for a login user that is not root).
    fn as_root(&self, script: &str) -> String {
        if self.sudo.is_empty() {
            script.to_string()
        } else {
            format!("{}sh -c {}", self.sudo, quote(script))
        }
    }

    /// Starts `script` as root for a conversation in lines (see [`Conversation`]).
    pub async fn converse_as_root(
        &self,
        what: &str,
        script: &str,
    ) -> Result<Conversation, SshError> {
        self.session.converse(what, &self.as_root(script)).await
    }

    /// Copies the local file `from` to `to` on the host, executable, replacing what is there
    /// only once all of it arrived.
    pub async fn put_file(&self, from: &Path, to: &str) -> Result<(), SshError> {
        let what = format!("copying {} to {to}", from.display());
        let mut file = tokio::fs::File::open(from)
            .await
            .map_err(|source| SshError::Local {
                host: self.session.host().to_string(),
                what: what.clone(),
                source,
            })?;
        // The host's shell's pid in the name: hosts that share a disk (the namespaces of the
        // SSH tests) put the same file at once without writing into each other's copy.
        let part = format!("{}.$$", quote(&format!("{to}.part")));
        let dir = quote(parent_dir(to));
        let script = self.as_root(&format!(
            "mkdir -p {dir} && cat > {part} && chmod 755 {part} && mv -f {part} {to}",
            to = quote(to)
        ));
        self.session
            .run_with_input(&what, &script, &mut file, COPY_TIMEOUT)
            .await
            .map(drop)
    }

    /// Starts `program` detached from the connection (in the session of a shell of its own,
    /// immune to hangups, no terminal), in its directory, with its output appended to its log
    /// and its pid in `pid` there. That shell waits for it and writes its exit status to
    /// `exit.<pid>` when it ends (see [`RemoteHost::exit_status`]): named by the pid, so that
    /// a program started again at once in the same directory is never taken for the one
    /// that ended. Returns the pid, and when the program was started, by the host's clock.
    pub async fn start(&self, program: &RemoteProgram) -> Result<Started, SshError> {
        let mut command = quote(&program.log);
        for word in std::iter::once(&program.program).chain(&program.args) {
            command.push(' ');
            command.push_str(&quote(word));
        }
        let dir = quote(&program.dir);
        // The watcher gets the log as $0 and the command as "$@"; `$!` in it is the
        // program's own pid, which the signals go to. The time it forks it is in `start.<pid>`
        // (libfaketime, under the clock faults, counts the faked clock from then).
        let watcher = quote(
            "t=$(date +%s%N); \"$@\" </dev/null >>\"$0\" 2>&1 & p=$!; echo $t > start.$p; \
             echo $p > pid.part && mv pid.part pid; \
             wait $p; echo $? > exit.part.$p && mv exit.part.$p exit.$p",
        );
        let script = self.as_root(&format!(
            "mkdir -p {dir} && cd {dir} || exit 1; rm -f pid; \
             {{ setsid nohup sh -c {watcher} {command} </dev/null >/dev/null 2>&1 & }}; \
             i=0; while [ ! -s pid ] && [ $i -lt {START_WAIT_HUNDREDTHS} ]; do sleep 0.01; i=$((i+1)); done; \
             p=$(cat pid); echo \"$p $(cat start.$p 2>/dev/null)\""
        ));
        let what = format!("starting {} in {}", program.program, program.dir);
        let answer = self.session.run_ok(&what, &script).await?;
        let mut words = answer.split_whitespace();
        let Some(Ok(pid)) = words.next().map(str::parse) else {
            return Err(SshError::Failed {
                host: self.session.host().to_string(),
                what,
                status: "no pid".to_string(),
                stderr: answer.trim().to_string(),
            });
        };
        Ok(Started {
            pid,
            at_ns: words.next().and_then(|t| t.parse().ok()),
        })
    }

    /// How the process `pid` started in `dir` ended, once it has: its exit code, or 128 plus
    /// the signal that ended it (the shell's convention). `None` while it runs.
    pub async fn exit_status(&self, dir: &str, pid: u32) -> Result<Option<i32>, SshError> {
        let script = self.as_root(&format!(
            "cat {}/exit.{pid} 2>/dev/null || true",
            quote(dir)
        ));
        let answer = self
            .session
            .run_ok(&format!("asking how the process in {dir} ended"), &script)
            .await?;
        Ok(answer.trim().parse().ok())
    }

    /// Sends `signal` to the process started in `dir`, if it runs; with [`RemoteSignal::Kill`]
    /// waits (bounded) until the shell that waited for it wrote how it ended. Returns whether
    /// it ran.
    pub async fn signal(&self, dir: &str, signal: RemoteSignal) -> Result<bool, SshError> {
        let ours = ours(dir);
        let name = signal.name();
        let wait = if signal == RemoteSignal::Kill {
            format!("{}; ", await_exit_file())
        } else {
            String::new()
        };
        let script = self.as_root(&format!(
            "if {ours}; then kill -s {name} \"$p\" || exit 1; {wait}echo yes; else echo no; fi"
        ));
        let answer = self
            .session
            .run_ok(&format!("SIG{name} to the process in {dir}"), &script)
            .await?;
        Ok(answer.trim() == "yes")
    }

    /// Whether the process started in `dir` runs (paused counts as running).
    pub async fn alive(&self, dir: &str) -> Result<bool, SshError> {
        let script = format!("if {}; then echo yes; else echo no; fi", ours(dir));
        let answer = self
            .session
            .run_ok(
                &format!("asking whether the process in {dir} runs"),
                &self.as_root(&script),
            )
            .await?;
        Ok(answer.trim() == "yes")
    }

    /// Copies the directory `from` on the host into the local directory `into` (created if
    /// need be), as a tar stream over the connection; nothing if `from` is not there.
    pub async fn copy_dir_back(&self, from: &str, into: &Path) -> Result<(), SshError> {
        let what = format!("copying {from} back");
        let local = |source| SshError::Local {
            host: self.session.host().to_string(),
            what: what.clone(),
            source,
        };
        std::fs::create_dir_all(into).map_err(local)?;
        let mut untar = tokio::process::Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(into)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(local)?;
        let Some(mut stdin) = untar.stdin.take() else {
            return Err(local(std::io::Error::other("tar has no stdin")));
        };
        // A node that never started has no directory: an empty archive, nothing to copy.
        let script = self.as_root(&format!(
            "if [ -d {from} ]; then tar -C {from} -cf - .; else tar -cf - -T /dev/null; fi",
            from = quote(from)
        ));
        let sent = self
            .session
            .run_into(&what, &script, &mut stdin, COPY_TIMEOUT)
            .await;
        drop(stdin);
        let untarred = untar.wait_with_output().await.map_err(local)?;
        sent?;
        if !untarred.status.success() {
            let stderr = String::from_utf8_lossy(&untarred.stderr);
            return Err(local(std::io::Error::other(format!(
                "tar -x into {} failed: {}",
                into.display(),
                stderr.trim()
            ))));
        }
        Ok(())
    }

    /// The host's clock against this machine's: of [`CLOCK_SAMPLES`] readings of `date`, the
    /// one with the shortest round trip (the tightest bound). The readings are lines of one
    /// conversation: a command per reading would add a session's set-up, on the host's side
    /// of the round trip only, to every reading.
    pub async fn clock_offset(&self) -> Result<ClockOffset, SshError> {
        let what = "reading the host's clock";
        let limit = Duration::from_secs(10);
        let work = async {
            let mut clock = self
                .session
                .converse(what, "while read -r _; do date +%s%N; done")
                .await?;
            let mut best: Option<ClockOffset> = None;
            for _ in 0..CLOCK_SAMPLES {
                let sent = now_ns();
                let answer = clock.ask("now").await?;
                let received = now_ns();
                let remote: i128 = answer.trim().parse().map_err(|_| SshError::Failed {
                    host: self.session.host().to_string(),
                    what: what.to_string(),
                    status: "not a time in nanoseconds (GNU date?)".to_string(),
                    stderr: answer.trim().to_string(),
                })?;
                let sample = ClockOffset::measured(sent, received, remote);
                if best.is_none_or(|best| sample.round_trip_ms < best.round_trip_ms) {
                    best = Some(sample);
                }
            }
            clock.finish().await?;
            Ok(best.expect("at least one sample"))
        };
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(SshError::TimedOut {
                host: self.session.host().to_string(),
                what: what.to_string(),
                after: limit,
            })
        })
    }

    /// Kills (SIGKILL) every process started in a directory under `root` that still runs,
    /// and waits (bounded) until they are gone. Returns how many there were.
    pub async fn kill_all_under(&self, root: &str) -> Result<usize, SshError> {
        let root = quote(root);
        let script = self.as_root(&format!(
            "n=0; for x in {root}/*/; do x=${{x%/}}; if {ours}; then \
             {kill} fi; done; {faketime} echo $n",
            ours = ours_in("\"$x\""),
            kill = kill_node_and_its_group(),
            faketime = dead_faketime_leftovers_script(),
        ));
        let answer = self
            .session
            .run_ok(&format!("killing what runs under {root}"), &script)
            .await?;
        Ok(answer.trim().parse().unwrap_or(0))
    }

    /// Removes what every run, live or dead, has on the host: kills the processes that
    /// run in a node directory under [`RUNS_DIR`], unhooks and deletes every chain of ours,
    /// and removes the runs' directories. For `faultline hosts --clean`.
    pub async fn clean_leftovers(&self) -> Result<Cleaned, SshError> {
        let script = self.as_root(&format!(
            "n=0; for x in {RUNS_DIR}/*/nodes/*/; do x=${{x%/}}; if {ours}; then \
             {kill} fi; done; echo killed=$n; \
             {faketime} {chains} \
             for x in {RUNS_DIR}/*/; do [ -d \"$x\" ] && rm -rf \"$x\" && echo \"removed=${{x%/}}\"; done; \
             [ \"$f\" = 0 ]",
            ours = ours_in("\"$x\""),
            kill = kill_node_and_its_group(),
            faketime = dead_faketime_leftovers_script(),
            chains = remove_chains_script(CHAIN_PREFIX),
        ));
        let answer = self
            .session
            .run_ok("removing what earlier runs left", &script)
            .await?;
        let mut cleaned = Cleaned::default();
        for line in answer.lines() {
            match line.trim().split_once('=') {
                Some(("killed", n)) => cleaned.killed = n.parse().unwrap_or(0),
                Some(("chain", chain)) => cleaned.chains.push(chain.to_string()),
                Some(("removed", dir)) => cleaned.dirs.push(dir.to_string()),
                _ => {}
            }
        }
        Ok(cleaned)
    }

    /// Unhooks from `INPUT` and deletes every chain whose name starts with `prefix`: the
    /// chains of this process's runs at the end of each (whatever the partitions' own
    /// teardown did), or every chain of ours for `--clean`. Returns the chains removed.
    pub async fn remove_chains(&self, prefix: &str) -> Result<Vec<String>, SshError> {
        let script = self.as_root(&format!("{} [ \"$f\" = 0 ]", remove_chains_script(prefix)));
        let answer = self
            .session
            .run_ok("removing the run's chains", &script)
            .await?;
        Ok(answer
            .lines()
            .filter_map(|line| line.trim().strip_prefix("chain="))
            .map(str::to_string)
            .collect())
    }

    /// Runs `iptables -w ARGS` as root and returns what it printed; a failure is
    /// [`SshError::Failed`] with iptables's own words.
    pub async fn iptables(&self, args: &[String]) -> Result<String, SshError> {
        let mut command = format!("{ROOT_PATH} iptables -w");
        for arg in args {
            command.push(' ');
            command.push_str(&quote(arg));
        }
        self.session
            .run_ok(
                &format!("iptables {}", args.join(" ")),
                &self.as_root(&command),
            )
            .await
    }

    /// Writes `line` to the file `path` as root, whole: a file beside it, renamed over it, so
    /// that a reader (libfaketime, for a clock control file) never reads half of it.
    pub async fn write_line(&self, path: &str, line: &str) -> Result<(), SshError> {
        let part = format!("{}.$$", quote(&format!("{path}.part")));
        let script = self.as_root(&format!(
            "mkdir -p {dir} && printf '%s\\n' {line} > {part} && mv -f {part} {path}",
            dir = quote(parent_dir(path)),
            line = quote(line),
            path = quote(path)
        ));
        self.session
            .run_ok(&format!("writing {path}"), &script)
            .await
            .map(drop)
    }

    /// Removes the directory `dir` on the host, and everything in it.
    pub async fn remove_dir(&self, dir: &str) -> Result<(), SshError> {
        let script = self.as_root(&format!("rm -rf {}", quote(dir)));
        self.session
            .run_ok(&format!("removing {dir}"), &script)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_the_host_clock_against_the_round_trips_midpoint() {
        // Asked at 1000 ms, answered at 1010 ms, the host read 1105 ms: at the midpoint
        // (1005 ms) it was 100 ms ahead, give or take half the 10 ms round trip.
        let ahead = ClockOffset::measured(1_000_000_000, 1_010_000_000, 1_105_000_000);
        assert_eq!(ahead.offset_ms, 100.0);
        assert_eq!(ahead.round_trip_ms, 10.0);
        let behind = ClockOffset::measured(1_000_000_000, 1_002_000_000, 998_500_000);
        assert_eq!(behind.offset_ms, -2.5);
        assert_eq!(behind.round_trip_ms, 2.0);
        // Real epochs in nanoseconds do not overflow or lose the sub-millisecond part.
        let now = 1_796_000_000_123_456_789_i128;
        let close = ClockOffset::measured(now, now + 400_000, now + 200_000 + 250_000);
        assert!((close.offset_ms - 0.25).abs() < 1e-9, "{close:?}");
    }

    #[test]
    fn a_files_directory_on_a_host_is_what_precedes_its_last_slash() {
        assert_eq!(
            parent_dir("/opt/faultline/bin/faultline-node"),
            "/opt/faultline/bin"
        );
        assert_eq!(parent_dir("/faultline-node"), "/");
        assert_eq!(parent_dir("faultline-node"), ".");
        assert_eq!(parent_dir("bin/faultline-node"), "bin");
    }

    #[test]
    fn words_are_quoted_for_sh_only_when_they_need_it() {
        assert_eq!(quote("/var/lib/faultline/n1"), "/var/lib/faultline/n1");
        assert_eq!(quote("n1=198.18.0.11:7001"), "n1=198.18.0.11:7001");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote("a;b"), "'a;b'");
    }

    #[test]
    fn the_hosts_answer_says_who_logged_in_and_what_is_there() {
        let facts = HostFacts::parse(
            "Welcome to the machine\nuid=1000\nuser=ci\nsudo=no\niptables=yes\nmissing=setsid\n\
             connection=198.18.0.1 50312 198.18.0.11 22\n",
        )
        .unwrap();
        assert_eq!(
            facts,
            HostFacts {
                user: "ci".to_string(),
                root: false,
                sudo: false,
                iptables: true,
                fuse: false,
                faketime: None,
                missing: vec!["setsid".to_string()],
                program_version: None,
                leftovers: Vec::new(),
                ports_taken: false,
                chains_hooked: false,
                address: Some(Ipv4Addr::new(198, 18, 0, 11)),
            }
        );
        let root = HostFacts::parse("uid=0\nuser=root\nsudo=yes\niptables=no\n").unwrap();
        assert!(root.root && root.sudo && !root.iptables && root.missing.is_empty());
        assert_eq!(root.address, None, "no SSH_CONNECTION, or an IPv6 one");
        assert!(HostFacts::parse("sh: 1: id: not found\n").is_err());

        // What a run needs, in the order it is told: sudo, the programs, iptables.
        let host = HostAddr::parse("ci@h1").unwrap();
        let needs = |iptables: bool| HostNeeds {
            iptables,
            program: HostProgram::Copied,
        };
        let refused = |facts: &HostFacts, iptables: bool| {
            facts
                .require(&host, &needs(iptables))
                .unwrap_err()
                .to_string()
        };
        assert!(refused(&facts, true).starts_with("ci on ci@h1 is not root"));
        let sudo = HostFacts {
            sudo: true,
            ..facts.clone()
        };
        assert_eq!(
            refused(&sudo, true),
            "ci@h1 has no `setsid`, which Faultline needs there: install it (apt-get install \
             util-linux)"
        );
        let no_iptables = HostFacts {
            iptables: false,
            missing: Vec::new(),
            ..sudo.clone()
        };
        assert!(refused(&no_iptables, true).contains("(apt-get install iptables)"));
        assert!(no_iptables.require(&host, &needs(false)).is_ok());
        assert!(root.require(&host, &needs(false)).is_ok());
        // Every program the script looks for is one the facts can name a package for.
        let script = check_script(&needs(true));
        for (program, _) in NEEDED {
            assert!(
                script.contains(&format!("echo missing={program}")),
                "{script}"
            );
        }
    }

    #[test]
    fn an_installed_program_is_looked_for_and_its_version_read_and_its_fix_is_the_systems() {
        let etcd = HostNeeds {
            iptables: false,
            program: HostProgram::Installed {
                program: "etcd".to_string(),
                fix: "install it (apt-get install -y etcd-server)".to_string(),
                version_flag: Some("--version"),
                version: None,
            },
        };
        let script = check_script(&etcd);
        assert!(script.contains("command -v etcd"), "{script}");
        assert!(script.contains("etcd --version"), "{script}");
        assert!(script.contains("else echo missing=etcd"), "{script}");
        let copied = check_script(&HostNeeds {
            iptables: false,
            program: HostProgram::Copied,
        });
        assert!(!copied.contains("--version"), "{copied}");

        let facts =
            HostFacts::parse("uid=0\nuser=root\nsudo=yes\nversion=etcd Version: 3.4.23\n").unwrap();
        assert_eq!(
            facts.program_version.as_deref(),
            Some("etcd Version: 3.4.23")
        );
        assert!(
            facts
                .require(&HostAddr::parse("root@h1").unwrap(), &etcd)
                .is_ok()
        );

        let without = HostFacts::parse("uid=0\nuser=root\nsudo=yes\nmissing=etcd\n").unwrap();
        assert_eq!(
            without
                .require(&HostAddr::parse("root@h2").unwrap(), &etcd)
                .unwrap_err()
                .to_string(),
            "root@h2 has no `etcd`, which Faultline needs there: install it (apt-get install -y \
             etcd-server)"
        );
    }

    #[test]
    fn the_check_finds_libfaketime_where_this_machine_has_it() {
        let output = std::process::Command::new("sh")
            .args([
                "-c",
                &check_script(&HostNeeds {
                    iptables: false,
                    program: HostProgram::Copied,
                }),
            ])
            .output()
            .unwrap();
        let facts = HostFacts::parse(&String::from_utf8_lossy(&output.stdout)).unwrap();
        let here = LIBFAKETIME_PATHS
            .iter()
            .find(|path| Path::new(path).is_file())
            .map(|path| path.to_string());
        assert_eq!(facts.faketime, here);
    }

    #[test]
    fn what_libfaketime_left_for_a_dead_process_goes_and_a_live_ones_stays() {
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let live_pid = std::process::id();
        let [shm, sem] = PROCESS_LEFTOVERS;
        let dead_files = [format!("{shm}{dead_pid}"), format!("{sem}{dead_pid}")];
        let live_file = format!("{shm}{live_pid}");
        for file in dead_files.iter().chain([&live_file]) {
            std::fs::write(file, "").unwrap();
        }
        let status = std::process::Command::new("sh")
            .args(["-c", &dead_faketime_leftovers_script()])
            .status()
            .unwrap();
        let live_stayed = Path::new(&live_file).exists();
        let _ = std::fs::remove_file(&live_file);
        assert!(status.success());
        assert!(live_stayed, "{live_file} was removed");
        for file in &dead_files {
            assert!(!Path::new(file).exists(), "{file} stayed");
        }
    }

    #[test]
    fn what_an_earlier_run_left_in_the_way_refuses_the_host_and_its_directories_alone_do_not() {
        let host = HostAddr::parse("root@h1").unwrap();
        let needs = HostNeeds {
            iptables: true,
            program: HostProgram::Copied,
        };
        let facts = |extra: &str| {
            HostFacts::parse(&format!(
                "uid=0\nuser=root\nsudo=yes\niptables=yes\n{extra}"
            ))
            .unwrap()
        };
        let dirs = facts("leftover=/var/tmp/faultline/412-1\nleftover=/var/tmp/faultline/77-2\n");
        assert_eq!(
            dirs.leftovers,
            ["/var/tmp/faultline/412-1", "/var/tmp/faultline/77-2"]
        );
        assert!(dirs.require(&host, &needs).is_ok());
        let in_the_way = facts("leftover=/var/tmp/faultline/412-1\nports=taken\nchains=hooked\n");
        assert_eq!(
            in_the_way.require(&host, &needs).unwrap_err().to_string(),
            "root@h1 holds what an earlier run left (something listens on port 7401 or 7402, the \
             nodes' (a node of an earlier run, or another service); a chain FAULTLINE-... is \
             hooked into INPUT; runs' directories: /var/tmp/faultline/412-1): `faultline hosts \
             --hosts root@h1 [--ssh-config FILE] --clean` removes it (it stops every Faultline \
             node there, whichever run started it)"
        );
        // The ports, as /proc/net/tcp spells them.
        let script = leftovers_script();
        assert!(script.contains(":(1CE9|1CEA) "), "{script}");
    }
}
