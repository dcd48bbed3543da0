//! One SSH connection per host, and commands on it: a multiplexed `ssh` master started by
//! the `openssh` crate (see the module's documentation for why), every command run by `sh -c`
//! on the host within a time limit, and every failure turned into an [`SshError`] that names
//! the host and says what to fix.

use std::io;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::timeout;

use crate::host_addr::HostAddr;

/// How the harness connects to its hosts.
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// An ssh configuration file to use instead of `~/.ssh/config` (`ssh -F`).
    pub config_file: Option<PathBuf>,
    /// How long establishing a connection may take (ssh's `ConnectTimeout`, in whole seconds,
    /// at least one).
    pub connect_timeout: Duration,
    /// How long a command may take, unless the caller gives it a limit of its own.
    pub command_timeout: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            config_file: None,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
        }
    }
}

/// What can go wrong on the channel. Each names the host, and says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The `ssh` client could not be run here.
    #[error(
        "cannot run the ssh client to reach {host} ({source}): install OpenSSH's client \
         (apt-get install openssh-client)"
    )]
    NoClient {
        host: String,
        #[source]
        source: io::Error,
    },
    /// Nothing answered SSH at the host's address.
    #[error(
        "{host} is unreachable over SSH ({detail}): check its address, that it is up, and that \
         sshd listens on it (port 22, unless the host or the ssh config names another)"
    )]
    Unreachable { host: String, detail: String },
    /// sshd answered and refused the login.
    #[error(
        "{host} refused the SSH login ({detail}): the login needs a key, no password: put your \
         public key in the user's ~/.ssh/authorized_keys on the host, and let ssh find the \
         private key (ssh-agent, ~/.ssh/id_*, or IdentityFile in the ssh config or \
         --ssh-config)"
    )]
    AuthFailed { host: String, detail: String },
    /// The host's key is not the one this machine knows for it.
    #[error(
        "the host key of {host} is not the one known for it ({detail}): if the host was \
         reinstalled, forget its old key with `ssh-keygen -R {name}` and connect again"
    )]
    HostKey {
        host: String,
        name: String,
        detail: String,
    },
    /// Any other failure to connect, with what ssh said.
    #[error("connecting to {host} over SSH failed: {detail}")]
    Connect { host: String, detail: String },
    /// A command ran over its time limit (it was abandoned; what it started may still run).
    #[error("{host}: {what} did not finish within {} s: the host or its connection hangs", .after.as_secs_f64())]
    TimedOut {
        host: String,
        what: String,
        after: Duration,
    },
    /// The connection broke under a command.
    #[error(
        "the SSH connection to {host} was lost during {what} ({detail}): check that the host is up and reachable"
    )]
    Lost {
        host: String,
        what: String,
        detail: String,
    },
    /// A command ran and failed.
    #[error("{host}: {what} failed ({status}): {stderr}")]
    Failed {
        host: String,
        what: String,
        status: String,
        stderr: String,
    },
    /// The login user is not root and cannot become root without a password.
    #[error(
        "{user} on {host} is not root and cannot run sudo without a password, which faults \
         need (signals to the nodes, iptables): connect as root (root@{name}), or give {user} \
         passwordless sudo (`{user} ALL=(ALL) NOPASSWD: ALL` in /etc/sudoers.d/faultline)"
    )]
    NoSudo {
        host: String,
        name: String,
        user: String,
    },
    /// A program the harness needs on the host is not there.
    #[error("{host} has no `{program}`, which Faultline needs there: {fix}")]
    Missing {
        host: String,
        program: String,
        /// What to do, e.g. `install it (apt-get install iptables)`.
        fix: String,
    },
    /// The program installed on the host is not the build the run needs.
    #[error("{host}'s `{program}` says it is {found:?}, not {expected:?} as this machine's: {fix}")]
    WrongVersion {
        host: String,
        program: String,
        found: String,
        expected: String,
        fix: String,
    },
    /// What an earlier run left on the host would get in this run's way.
    #[error(
        "{host} holds what an earlier run left ({what}): `faultline hosts --hosts {host} \
         [--ssh-config FILE] --clean` removes it (it stops every Faultline node there, whichever \
         run started it)"
    )]
    Leftovers { host: String, what: String },
    /// Something on this machine failed while talking to the host.
    #[error("{host}: {what}: {source}")]
    Local {
        host: String,
        what: String,
        #[source]
        source: io::Error,
    },
}

/// Why a connection failed, as ssh's own words say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectFailure {
    Unreachable,
    AuthFailed,
    HostKey,
    Other,
}

/// Classifies what `ssh` printed when it could not connect. The text is ssh's (OpenSSH
/// prints these for years); anything unknown is `Other`, shown as it is.
pub(crate) fn classify(stderr: &str) -> ConnectFailure {
    let text = stderr.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|needle| text.contains(needle));
    if any(&[
        "host key verification failed",
        "remote host identification has changed",
        "host key for",
    ]) {
        ConnectFailure::HostKey
    } else if any(&[
        "permission denied (",
        "too many authentication failures",
        "no more authentication methods",
    ]) {
        ConnectFailure::AuthFailed
    } else if any(&[
        "connection refused",
        "connection timed out",
        "operation timed out",
        "no route to host",
        "network is unreachable",
        "could not resolve hostname",
        "name or service not known",
        "temporary failure in name resolution",
        "connection reset by peer",
        "connection closed by",
        "kex_exchange_identification",
        "banner exchange",
    ]) {
        ConnectFailure::Unreachable
    } else {
        ConnectFailure::Other
    }
}

/// The text of ssh's failure: its log, less the warnings that are not the failure.
fn failure_text(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("Warning: Permanently added"))
        .collect();
    if lines.is_empty() {
        "ssh said nothing".to_string()
    } else {
        lines.join("; ")
    }
}

/// The error for a connection that failed with ssh's `stderr`.
pub(crate) fn connect_error(host: &HostAddr, stderr: &str) -> SshError {
    let detail = failure_text(stderr);
    let name = host.host.clone();
    let host = host.to_string();
    match classify(stderr) {
        ConnectFailure::Unreachable => SshError::Unreachable { host, detail },
        ConnectFailure::AuthFailed => SshError::AuthFailed { host, detail },
        ConnectFailure::HostKey => SshError::HostKey { host, name, detail },
        ConnectFailure::Other => SshError::Connect { host, detail },
    }
}

/// One host's connection: a multiplexed ssh master, closed by [`SshSession::close`] (or, as
/// a last resort, when dropped).
pub struct SshSession {
    host: HostAddr,
    /// Shared with the long-lived commands on it ([`Conversation`]s).
    session: Arc<Session>,
    command_timeout: Duration,
}

impl SshSession {
    /// Connects to `host`: within `options.connect_timeout`, without any prompt (a login that
    /// would need a password fails), recording the key of a host seen for the first time and
    /// refusing one whose key changed.
    pub async fn connect(host: &HostAddr, options: &SshOptions) -> Result<SshSession, SshError> {
        let seconds = options.connect_timeout.as_secs().max(1);
        let mut builder = SessionBuilder::default();
        builder
            .known_hosts_check(KnownHosts::Add)
            .connect_timeout(Duration::from_secs(seconds))
            // A host lost mid-run drops its master within 3 missed answers.
            .server_alive_interval(Duration::from_secs(5))
            // Not the crate's default (the current directory): the socket is a temporary.
            .control_directory(std::env::temp_dir());
        if let Some(config) = &options.config_file {
            builder.config_file(config);
        }
        if let Some(user) = &host.user {
            builder.user(user.clone());
        }
        if let Some(port) = host.port {
            builder.port(port);
        }
        // ssh's ConnectTimeout bounds the TCP connection and the handshake; this bounds the
        // rest (authentication against a slow agent, a stuck ProxyCommand).
        let limit = Duration::from_secs(seconds * 2 + 5);
        let connecting = builder.connect_mux(&host.host);
        match timeout(limit, connecting).await {
            Ok(Ok(session)) => Ok(SshSession {
                host: host.clone(),
                session: Arc::new(session),
                command_timeout: options.command_timeout,
            }),
            Ok(Err(openssh::Error::Connect(error))) if error.kind() == io::ErrorKind::NotFound => {
                Err(SshError::NoClient {
                    host: host.to_string(),
                    source: error,
                })
            }
            Ok(Err(openssh::Error::Connect(error))) => Err(connect_error(host, &error.to_string())),
            Ok(Err(error)) => Err(SshError::Connect {
                host: host.to_string(),
                detail: error_chain(&error),
            }),
            Err(_) => Err(SshError::Unreachable {
                host: host.to_string(),
                detail: format!("no session within {} s", limit.as_secs()),
            }),
        }
    }

    /// The host, as `--hosts` named it.
    pub fn host(&self) -> &HostAddr {
        &self.host
    }

    /// Runs `script` with `sh -c` on the host within the session's command time limit, and
    /// returns its output whatever its exit status. `what` names it in errors.
    pub async fn run(&self, what: &str, script: &str) -> Result<Output, SshError> {
        self.run_within(what, script, self.command_timeout).await
    }

    /// [`SshSession::run`] with a time limit of its own.
    pub async fn run_within(
        &self,
        what: &str,
        script: &str,
        limit: Duration,
    ) -> Result<Output, SshError> {
        let mut command = self.session.command("sh");
        command.arg("-c").arg(script);
        match timeout(limit, command.output()).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(error)) => Err(self.command_error(what, error)),
            Err(_) => Err(self.timed_out(what, limit)),
        }
    }

    /// Runs `script` and returns its stdout; a non-zero exit is [`SshError::Failed`] with
    /// its stderr.
    pub async fn run_ok(&self, what: &str, script: &str) -> Result<String, SshError> {
        let output = self.run(what, script).await?;
        self.stdout_of(what, output)
    }

    /// Runs `script` with `input` copied to its stdin (then closed), within `limit`, and
    /// returns its stdout; a non-zero exit is [`SshError::Failed`].
    pub async fn run_with_input(
        &self,
        what: &str,
        script: &str,
        input: &mut (impl AsyncRead + Unpin),
        limit: Duration,
    ) -> Result<String, SshError> {
        let work = async {
            let mut child = self
                .spawn(what, script, Stdio::piped(), Stdio::piped())
                .await?;
            if let Some(mut stdin) = child.stdin().take() {
                let sending = |source| self.local(what, "sending to the host", source);
                tokio::io::copy(input, &mut stdin).await.map_err(sending)?;
                stdin.shutdown().await.map_err(sending)?;
            }
            self.finish(what, child).await
        };
        timeout(limit, work)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(what, limit)))
    }

    /// Runs `script` and copies its stdout into `sink` as it comes, within `limit`; a
    /// non-zero exit is [`SshError::Failed`].
    pub async fn run_into(
        &self,
        what: &str,
        script: &str,
        sink: &mut (impl AsyncWrite + Unpin),
        limit: Duration,
    ) -> Result<(), SshError> {
        let work = async {
            let mut child = self
                .spawn(what, script, Stdio::null(), Stdio::piped())
                .await?;
            if let Some(mut stdout) = child.stdout().take() {
                tokio::io::copy(&mut stdout, sink)
                    .await
                    .map_err(|source| self.local(what, "receiving from the host", source))?;
            }
            self.finish(what, child).await.map(drop)
        };
        timeout(limit, work)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(what, limit)))
    }

    /// Starts `script` with `sh -c`, its stdout piped.
    async fn spawn(
        &self,
        what: &str,
        script: &str,
        stdin: Stdio,
        stderr: Stdio,
    ) -> Result<openssh::Child<&Session>, SshError> {
        let mut command = self.session.command("sh");
        command
            .arg("-c")
            .arg(script)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(stderr);
        command
            .spawn()
            .await
            .map_err(|error| self.command_error(what, error))
    }

    /// Waits for `child` to end, and returns its stdout; a non-zero exit is
    /// [`SshError::Failed`].
    async fn finish(
        &self,
        what: &str,
        child: openssh::Child<&Session>,
    ) -> Result<String, SshError> {
        let output = child
            .wait_with_output()
            .await
            .map_err(|error| self.command_error(what, error))?;
        self.stdout_of(what, output)
    }

    /// Starts `script` with its stdin and stdout piped, for a conversation in lines (see
    /// [`Conversation`]), which may outlive this handle (not the connection). Each answer
    /// is bounded by the session's command time limit.
    pub async fn converse(&self, what: &str, script: &str) -> Result<Conversation, SshError> {
        let mut command = Session::arc_raw_command(self.session.clone(), "sh");
        command
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .await
            .map_err(|error| self.command_error(what, error))?;
        let (Some(stdin), Some(stdout)) = (child.stdin().take(), child.stdout().take()) else {
            return Err(self.local(what, "starting", io::Error::other("no pipes")));
        };
        Ok(Conversation {
            host: self.host.to_string(),
            what: what.to_string(),
            command_timeout: self.command_timeout,
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    /// Closes the connection (its master and control directory); if a conversation still
    /// holds it, the last holder's drop does.
    pub async fn close(self) -> Result<(), SshError> {
        let host = self.host.to_string();
        let Ok(session) = Arc::try_unwrap(self.session) else {
            return Ok(());
        };
        session.close().await.map_err(|error| SshError::Lost {
            host,
            what: "closing the connection".to_string(),
            detail: error_chain(&error),
        })
    }

    fn stdout_of(&self, what: &str, output: Output) -> Result<String, SshError> {
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(SshError::Failed {
            host: self.host.to_string(),
            what: what.to_string(),
            status: output.status.to_string(),
            stderr: failure_text(&stderr),
        })
    }

    fn command_error(&self, what: &str, error: openssh::Error) -> SshError {
        SshError::Lost {
            host: self.host.to_string(),
            what: what.to_string(),
            detail: error_chain(&error),
        }
    }

    fn timed_out(&self, what: &str, after: Duration) -> SshError {
        SshError::TimedOut {
            host: self.host.to_string(),
            what: what.to_string(),
            after,
        }
    }

    fn local(&self, what: &str, doing: &str, source: io::Error) -> SshError {
        SshError::Local {
            host: self.host.to_string(),
            what: format!("{what}: {doing}"),
            source,
        }
    }
}

/// A command on the host that answers lines with lines: one round trip each on the open
/// connection, with no session to set up, so the round trip is the network's (the clock
/// offset is measured this way; a power-loss disk on a host is driven this way).
pub struct Conversation {
    host: String,
    what: String,
    command_timeout: Duration,
    child: openssh::Child<Arc<Session>>,
    stdin: openssh::ChildStdin,
    stdout: BufReader<openssh::ChildStdout>,
}

impl Conversation {
    /// Sends `line` and returns the line that answers it (without its newline), within the
    /// session's command time limit.
    pub async fn ask(&mut self, line: &str) -> Result<String, SshError> {
        let limit = self.command_timeout;
        match timeout(limit, self.exchange(line)).await {
            Ok(answer) => answer,
            Err(_) => Err(SshError::TimedOut {
                host: self.host.clone(),
                what: self.what.clone(),
                after: limit,
            }),
        }
    }

    async fn exchange(&mut self, line: &str) -> Result<String, SshError> {
        let broken = |source| SshError::Local {
            host: self.host.clone(),
            what: format!("{}: talking to the host", self.what),
            source,
        };
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(broken)?;
        self.stdin.flush().await.map_err(broken)?;
        let mut answer = String::new();
        let read = self.stdout.read_line(&mut answer).await.map_err(broken)?;
        if read == 0 {
            return Err(broken(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the command ended without an answer",
            )));
        }
        Ok(answer.trim_end().to_string())
    }

    /// Closes its stdin and waits (within the command time limit) for it to end.
    pub async fn finish(self) -> Result<(), SshError> {
        let Conversation {
            host,
            what,
            command_timeout,
            child,
            mut stdin,
            stdout,
        } = self;
        let _ = stdin.shutdown().await;
        drop((stdin, stdout));
        match timeout(command_timeout, child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(SshError::Lost {
                host,
                what,
                detail: error_chain(&error),
            }),
            Err(_) => Err(SshError::TimedOut {
                host,
                what,
                after: command_timeout,
            }),
        }
    }
}

/// An error with its causes, `a: b: c`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_ssh_prints_when_it_cannot_connect_is_classified() {
        use ConnectFailure::*;
        for (stderr, expected) in [
            (
                "ssh: connect to host 198.18.0.13 port 22: Connection refused",
                Unreachable,
            ),
            (
                "ssh: connect to host 10.255.255.1 port 22: Connection timed out",
                Unreachable,
            ),
            (
                "ssh: connect to host 198.18.0.99 port 22: No route to host",
                Unreachable,
            ),
            (
                "ssh: Could not resolve hostname nosuch: Name or service not known",
                Unreachable,
            ),
            (
                "Connection timed out during banner exchange\r\nConnection to 198.18.0.12 port 22 timed out",
                Unreachable,
            ),
            (
                "kex_exchange_identification: read: Connection reset by peer",
                Unreachable,
            ),
            (
                "Warning: Permanently added '198.18.0.11' (ED25519) to the list of known hosts.\r\n\
                 root@198.18.0.11: Permission denied (publickey).",
                AuthFailed,
            ),
            (
                "Received disconnect from 198.18.0.11 port 22:2: Too many authentication failures",
                AuthFailed,
            ),
            (
                "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
                 @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                 Host key verification failed.",
                HostKey,
            ),
            ("Host key verification failed.", HostKey),
            ("Bad configuration option: frobnicate", Other),
        ] {
            assert_eq!(classify(stderr), expected, "{stderr}");
        }
    }

    #[test]
    fn each_connect_failure_names_the_host_and_what_to_fix() {
        let host = HostAddr::parse("ci@h1:2222").unwrap();
        let refused = connect_error(
            &host,
            "ssh: connect to host h1 port 2222: Connection refused",
        );
        let text = refused.to_string();
        assert!(
            text.starts_with("ci@h1:2222 is unreachable over SSH"),
            "{text}"
        );
        assert!(text.contains("Connection refused"), "{text}");
        assert!(text.contains("sshd listens"), "{text}");

        let denied = connect_error(
            &host,
            "Warning: Permanently added 'h1' (ED25519) to the list of known hosts.\n\
             ci@h1: Permission denied (publickey).",
        )
        .to_string();
        assert!(
            denied.starts_with("ci@h1:2222 refused the SSH login"),
            "{denied}"
        );
        assert!(!denied.contains("Permanently added"), "{denied}");
        assert!(denied.contains("authorized_keys"), "{denied}");
        assert!(denied.contains("ssh-agent"), "{denied}");

        let changed = connect_error(&host, "Host key verification failed.").to_string();
        assert!(changed.contains("ssh-keygen -R h1"), "{changed}");

        let other = connect_error(&host, "").to_string();
        assert_eq!(
            other,
            "connecting to ci@h1:2222 over SSH failed: ssh said nothing"
        );
    }

    #[test]
    fn missing_sudo_and_programs_say_what_to_install_or_configure() {
        let sudo = SshError::NoSudo {
            host: "ci@h1".to_string(),
            name: "h1".to_string(),
            user: "ci".to_string(),
        }
        .to_string();
        assert!(sudo.starts_with("ci on ci@h1 is not root"), "{sudo}");
        assert!(sudo.contains("root@h1"), "{sudo}");
        assert!(sudo.contains("ci ALL=(ALL) NOPASSWD: ALL"), "{sudo}");
        let iptables = SshError::Missing {
            host: "root@h2".to_string(),
            program: "iptables".to_string(),
            fix: "install it (apt-get install iptables)".to_string(),
        }
        .to_string();
        assert_eq!(
            iptables,
            "root@h2 has no `iptables`, which Faultline needs there: install it (apt-get install iptables)"
        );
    }
}
