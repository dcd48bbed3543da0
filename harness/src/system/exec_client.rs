//! The exec client: a program of the user's, started once per client process, that performs
//! operations on the system under test. The harness writes one operation a line as JSON on
//! its stdin and reads one answer a line from its stdout (README, "The exec protocol"):
//!
//! ```text
//! > {"f":"cas","key":"r3","value":[4,1]}
//! < {"type":"fail","error":"cas-mismatch","node":"n2"}
//! ```
//!
//! Whatever goes wrong with the program itself is `info` for the operation in flight, since
//! it may have reached the system: no answer within the client timeout (the program is
//! killed: `timeout`), an end of its output (`client crashed: <how it exited>`), a line that is
//! not an answer (`bad answer: <the line>`). The runner then opens a fresh program, as it does
//! after every `info`. Each program's stderr goes to `clients/client-<task>.log` in the run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use faultline_history::ModelKind;
use faultline_workloads::{
    BoxFuture, Client, ClientFactory, Completion, Error, Op, Outcome, Purpose, model_for_key,
};
use nix::sys::signal::Signal;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::timeout;

use super::file::template::Template;
use crate::store::CLIENTS;

/// The longest answer line read: a list read of a few hundred elements fits many times over;
/// a program that writes more without a newline is not answering.
const MAX_ANSWER: u64 = 1 << 20;

/// How much of a bad answer the `info` quotes.
const QUOTED: usize = 120;

/// How long a program whose output ended gets to exit, so that its exit status can be told.
const EXIT_WAIT: Duration = Duration::from_millis(100);

/// A node the clients may be bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientNode {
    pub name: String,
    pub client_addr: std::net::SocketAddr,
}

/// Starts exec clients: client task `i` is bound to node `i % n` (its `{home}`).
pub struct ExecClients {
    command: Template,
    nodes: Vec<ClientNode>,
    timeout: Duration,
    run_dir: PathBuf,
    system_dir: PathBuf,
}

impl ExecClients {
    /// Clients that run `command` (with the client placeholders filled in) for `nodes`,
    /// answering within `timeout`; their logs go to `run_dir/clients/`.
    pub fn new(
        command: Template,
        nodes: Vec<ClientNode>,
        timeout: Duration,
        run_dir: &Path,
        system_dir: &Path,
    ) -> ExecClients {
        ExecClients {
            command,
            nodes,
            timeout,
            run_dir: run_dir.to_path_buf(),
            system_dir: system_dir.to_path_buf(),
        }
    }

    /// `n1=127.0.0.11:7001,n2=...`: every node's client address.
    fn node_list(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}={}", n.name, n.client_addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&self, task: usize, purpose: Purpose) -> Result<ExecClient, Error> {
        let home = self
            .nodes
            .get(task % self.nodes.len().max(1))
            .ok_or(Error::NoNodes)?;
        let argv = self.command.render(|name| match name {
            "home" => home.name.clone(),
            "home_addr" => home.client_addr.to_string(),
            "nodes" => self.node_list(),
            "task" => task.to_string(),
            "system_dir" => self.system_dir.display().to_string(),
            "run_dir" => self.run_dir.display().to_string(),
            other => {
                unreachable!("the file was checked to hold only known placeholders, not {other}")
            }
        });
        let logs = self.run_dir.join(CLIENTS);
        let log_path = logs.join(format!("client-{task}.log"));
        let log = std::fs::create_dir_all(&logs)
            .and_then(|()| {
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(&log_path)
            })
            .map_err(|e| Error::OpenClient(format!("opening {}: {e}", log_path.display())))?;
        let addresses: Map<String, Value> = self
            .nodes
            .iter()
            .map(|n| (n.name.clone(), json!(n.client_addr.to_string())))
            .collect();
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env("FAULTLINE_NODE", &home.name)
            .env("FAULTLINE_NODES", Value::Object(addresses).to_string())
            .env("FAULTLINE_TIMEOUT_MS", self.timeout.as_millis().to_string())
            .env(
                "FAULTLINE_PURPOSE",
                match purpose {
                    // Never asked for bound clients: exec clients bind none.
                    Purpose::Workload | Purpose::Bound(_) => "workload",
                    Purpose::FinalRead => "final-read",
                },
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        // A client must not outlive a harness that is SIGKILLed.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| Error::OpenClient(format!("starting {}: {e}", argv[0])))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::OpenClient(format!("{}: no pipes", argv[0])));
        };
        Ok(ExecClient {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            timeout: self.timeout,
            home: home.name.clone(),
            gone: None,
        })
    }
}

impl ClientFactory for ExecClients {
    fn open(&self, task: usize, purpose: Purpose) -> BoxFuture<'_, Result<Box<dyn Client>, Error>> {
        let client = self
            .spawn(task, purpose)
            .map(|client| Box::new(client) as Box<dyn Client>);
        Box::pin(async move { client })
    }
}

/// One running client program.
struct ExecClient {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    timeout: Duration,
    /// Its home node, recorded when an answer names none.
    home: String,
    /// Why the program can no longer be asked anything, once that is so.
    gone: Option<String>,
}

/// How an exchange with the program ended, when it gave no line.
enum NoLine {
    /// Its stdin or stdout closed.
    Closed,
    /// It wrote more than [`MAX_ANSWER`] bytes without a newline.
    TooLong,
}

impl ExecClient {
    /// Writes `request` and reads one line back.
    async fn exchange(&mut self, request: &str) -> Result<String, NoLine> {
        self.stdin
            .write_all(request.as_bytes())
            .await
            .map_err(|_| NoLine::Closed)?;
        self.stdin.flush().await.map_err(|_| NoLine::Closed)?;
        let mut line = Vec::new();
        let read = (&mut self.stdout)
            .take(MAX_ANSWER)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|_| NoLine::Closed)?;
        match line.last() {
            _ if read == 0 => Err(NoLine::Closed),
            Some(b'\n') => Ok(String::from_utf8_lossy(&line).trim().to_string()),
            _ if read as u64 >= MAX_ANSWER => Err(NoLine::TooLong),
            // The output ended in the middle of a line.
            _ => Err(NoLine::Closed),
        }
    }

    /// How the program ended, after its output did.
    async fn exit_status(&mut self) -> String {
        match timeout(EXIT_WAIT, self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("cannot tell how it exited: {e}"),
            Err(_) => {
                let _ = self.child.start_kill();
                "it closed its output".to_string()
            }
        }
    }

    /// Marks the program gone, killing it, and says so as `info`.
    fn give_up(&mut self, reason: String) -> Completion {
        let _ = self.child.start_kill();
        self.gone = Some(reason.clone());
        Completion::new(Outcome::Info(reason), Some(self.home.clone()))
    }
}

impl Client for ExecClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(async move {
            if let Some(reason) = &self.gone {
                return Completion::new(Outcome::Info(reason.clone()), Some(self.home.clone()));
            }
            let request = format!(
                "{}\n",
                json!({"f": op.f(), "key": op.key(), "value": op.argument()})
            );
            match timeout(self.timeout, self.exchange(&request)).await {
                Err(_) => self.give_up("timeout".to_string()),
                Ok(Err(NoLine::Closed)) => {
                    let status = self.exit_status().await;
                    self.give_up(format!("client crashed: {status}"))
                }
                Ok(Err(NoLine::TooLong)) => self.give_up(format!(
                    "bad answer: more than {MAX_ANSWER} bytes without a newline"
                )),
                Ok(Ok(line)) => match read_answer(op, &line) {
                    Ok((outcome, node)) => {
                        Completion::new(outcome, Some(node.unwrap_or_else(|| self.home.clone())))
                    }
                    Err(why) => self.give_up(format!("bad answer: {why}: {}", quoted(&line))),
                },
            }
        })
    }
}

/// What an answer line says about `op`, and the node it names; why it cannot be read
/// otherwise.
fn read_answer(op: &Op, line: &str) -> Result<(Outcome, Option<String>), String> {
    let answer: Value = serde_json::from_str(line).map_err(|_| "not JSON".to_string())?;
    let Value::Object(answer) = answer else {
        return Err("not a JSON object".into());
    };
    let node = match answer.get("node") {
        None | Some(Value::Null) => None,
        Some(Value::String(node)) => Some(node.clone()),
        Some(_) => return Err("`node` is not a string".into()),
    };
    let error = match answer.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(error)) if !error.is_empty() => Some(error.clone()),
        Some(_) => return Err("`error` is not a non-empty string".into()),
    };
    let outcome = match answer.get("type").and_then(Value::as_str) {
        Some("ok") => Outcome::Ok(ok_value(op, answer.get("value"))?),
        Some("fail") => Outcome::Fail(error.ok_or("a fail needs its `error`")?),
        Some("info") => Outcome::Info(error.unwrap_or_else(|| "unknown".into())),
        _ => return Err("`type` is not ok, fail or info".into()),
    };
    Ok((outcome, node))
}

/// The value of an `ok`: what a read read (a number or null for a register, an array of
/// numbers or null for a list), the argument for anything else.
fn ok_value(op: &Op, value: Option<&Value>) -> Result<Value, String> {
    let Op::Read { key } = op else {
        return match value {
            None | Some(Value::Null) => Ok(op.argument()),
            Some(value) if *value == op.argument() => Ok(op.argument()),
            Some(_) => Err(format!("`value` of an ok {} is not its argument", op.f())),
        };
    };
    let value = value.ok_or("an ok read needs its `value`")?;
    let number = |v: &Value| v.as_u64().is_some();
    let fits = match model_for_key(key) {
        Some(ModelKind::ListAppend) => {
            value.is_null() || value.as_array().is_some_and(|a| a.iter().all(number))
        }
        _ => value.is_null() || number(value),
    };
    if fits {
        Ok(value.clone())
    } else {
        Err(format!("`value` is not what a read of {key} returns"))
    }
}

/// `line`, cut to [`QUOTED`] characters.
fn quoted(line: &str) -> String {
    match line.char_indices().nth(QUOTED) {
        Some((end, _)) => format!("{}...", &line[..end]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use faultline_workloads::CAS_MISMATCH;

    use super::*;

    fn read(key: &str) -> Op {
        Op::Read { key: key.into() }
    }

    fn cas() -> Op {
        Op::Cas {
            key: "r1".into(),
            from: 4,
            to: 1,
        }
    }

    fn outcome(op: &Op, line: &str) -> Result<Outcome, String> {
        read_answer(op, line).map(|(outcome, _)| outcome)
    }

    #[test]
    fn answers_are_read_as_the_protocol_says() {
        assert_eq!(
            read_answer(&read("r1"), r#"{"type":"ok","value":7,"node":"n2"}"#),
            Ok((Outcome::Ok(json!(7)), Some("n2".to_string())))
        );
        assert_eq!(
            outcome(&read("r1"), r#"{"type":"ok","value":null}"#),
            Ok(Outcome::Ok(Value::Null))
        );
        assert_eq!(
            outcome(&read("l1"), r#"{"type":"ok","value":[3,1,2]}"#),
            Ok(Outcome::Ok(json!([3, 1, 2])))
        );
        assert_eq!(
            outcome(&cas(), r#"{"type":"ok"}"#),
            Ok(Outcome::Ok(json!([4, 1])))
        );
        assert_eq!(
            outcome(&cas(), r#"{"type":"fail","error":"cas-mismatch"}"#),
            Ok(Outcome::Fail(CAS_MISMATCH.to_string()))
        );
        assert_eq!(
            outcome(&cas(), r#"{"type":"info","error":"leader changed"}"#),
            Ok(Outcome::Info("leader changed".to_string()))
        );
        assert_eq!(
            outcome(&cas(), r#"{"type":"info"}"#),
            Ok(Outcome::Info("unknown".to_string()))
        );
    }

    #[test]
    fn ill_typed_answers_are_refused_with_the_reason() {
        let refused = |op: &Op, line: &str| outcome(op, line).unwrap_err();
        assert_eq!(refused(&cas(), "ok"), "not JSON");
        assert_eq!(refused(&cas(), "[1]"), "not a JSON object");
        assert!(refused(&cas(), r#"{"type":"maybe"}"#).contains("`type`"));
        assert!(refused(&cas(), r#"{"type":"fail"}"#).contains("`error`"));
        assert!(refused(&read("r1"), r#"{"type":"ok"}"#).contains("`value`"));
        assert!(refused(&read("r1"), r#"{"type":"ok","value":"7"}"#).contains("r1"));
        assert!(refused(&read("r1"), r#"{"type":"ok","value":-1}"#).contains("r1"));
        assert!(refused(&read("l1"), r#"{"type":"ok","value":[1,"x"]}"#).contains("l1"));
        assert!(refused(&cas(), r#"{"type":"ok","value":[1,4]}"#).contains("argument"));
        assert!(refused(&cas(), r#"{"type":"ok","node":3}"#).contains("`node`"));
    }

    /// Clients of two nodes whose program is the shell script `script`, answering within
    /// 500 ms, logging in `dir/clients/`.
    fn clients(dir: &Path, script: &str) -> ExecClients {
        let path = dir.join("client.sh");
        std::fs::write(&path, script).unwrap();
        let command = Template::parse(
            &["sh".to_string(), "{system_dir}/client.sh".to_string()],
            crate::system::file::CLIENT_PLACEHOLDERS,
        )
        .unwrap();
        let nodes = ["n1", "n2"]
            .iter()
            .enumerate()
            .map(|(i, name)| ClientNode {
                name: name.to_string(),
                client_addr: format!("127.0.0.{}:7000", 11 + i).parse().unwrap(),
            })
            .collect();
        ExecClients::new(command, nodes, Duration::from_millis(500), dir, dir)
    }

    async fn invoke(clients: &ExecClients, task: usize, op: &Op) -> Completion {
        let mut client = clients.open(task, Purpose::Workload).await.unwrap();
        client.invoke(op).await
    }

    #[tokio::test]
    async fn a_good_client_answers_each_operation_as_its_home_node() {
        let dir = tempfile::tempdir().unwrap();
        let clients = clients(
            dir.path(),
            r#"echo "started on $FAULTLINE_NODE, timeout $FAULTLINE_TIMEOUT_MS ms" >&2
while read -r line; do
  case "$line" in
    *'"f":"read"'*) echo '{"type":"ok","value":7}' ;;
    *'"f":"cas"'*) echo '{"type":"fail","error":"cas-mismatch","node":"n2"}' ;;
    *) echo '{"type":"ok"}' ;;
  esac
done
"#,
        );
        let mut client = clients.open(1, Purpose::Workload).await.unwrap();
        let home = Some("n2".to_string());
        assert_eq!(
            client.invoke(&read("r1")).await,
            Completion::new(Outcome::Ok(json!(7)), home.clone())
        );
        assert_eq!(
            client.invoke(&cas()).await,
            Completion::new(Outcome::Fail(CAS_MISMATCH.into()), home.clone())
        );
        let write = Op::Write {
            key: "r1".into(),
            value: 3,
        };
        assert_eq!(
            client.invoke(&write).await,
            Completion::new(Outcome::Ok(json!(3)), home)
        );
        let log = std::fs::read_to_string(dir.path().join("clients/client-1.log")).unwrap();
        assert_eq!(log, "started on n2, timeout 500 ms\n");
    }

    #[tokio::test]
    async fn a_client_that_crashes_leaves_the_operation_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let clients = clients(dir.path(), "read -r line\necho boom >&2\nexit 3\n");
        let done = invoke(&clients, 0, &cas()).await;
        assert_eq!(
            done.outcome,
            Outcome::Info("client crashed: exit status: 3".into())
        );
        let log = std::fs::read_to_string(dir.path().join("clients/client-0.log")).unwrap();
        assert_eq!(log, "boom\n");
    }

    #[tokio::test]
    async fn a_client_that_answers_garbage_leaves_the_operation_unknown_and_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let clients = clients(
            dir.path(),
            "echo $$ > \"$(dirname \"$0\")/pid\"\nread -r line\necho hello\nexec sleep 60\n",
        );
        let mut client = clients.open(0, Purpose::Workload).await.unwrap();
        let done = client.invoke(&read("r1")).await;
        assert_eq!(
            done.outcome,
            Outcome::Info("bad answer: not JSON: hello".into())
        );
        // Nothing it says later is trusted either.
        assert_eq!(client.invoke(&read("r1")).await.outcome, done.outcome);
        // The runner drops a client after an info; the program is reaped then.
        drop(client);
        let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
        assert_gone(pid.trim()).await;
    }

    #[tokio::test]
    async fn a_client_that_hangs_is_killed_at_the_timeout_and_the_operation_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let clients = clients(
            dir.path(),
            "echo $$ > \"$(dirname \"$0\")/pid\"\nread -r line\nexec sleep 60\n",
        );
        let done = invoke(&clients, 0, &cas()).await;
        assert_eq!(done.outcome, Outcome::Info("timeout".into()));
        let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
        assert_gone(pid.trim()).await;
    }

    #[tokio::test]
    async fn a_program_that_does_not_exist_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let command = Template::parse(
            &["/nonexistent/client".to_string()],
            crate::system::file::CLIENT_PLACEHOLDERS,
        )
        .unwrap();
        let nodes = vec![ClientNode {
            name: "n1".into(),
            client_addr: "127.0.0.11:7000".parse().unwrap(),
        }];
        let clients = ExecClients::new(
            command,
            nodes,
            Duration::from_secs(1),
            dir.path(),
            dir.path(),
        );
        let Err(error) = clients.open(0, Purpose::Workload).await else {
            panic!("a missing program opened");
        };
        assert!(error.to_string().contains("/nonexistent/client"), "{error}");
    }

    /// Waits until process `pid` is gone (killed and reaped), for at most five seconds.
    async fn assert_gone(pid: &str) {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        for _ in 0..50 {
            if !proc.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("client process {pid} still runs");
    }

    #[test]
    fn long_bad_answers_are_quoted_in_part() {
        let long = "x".repeat(500);
        assert_eq!(quoted(&long).len(), QUOTED + 3);
        assert_eq!(quoted("short"), "short");
    }
}
