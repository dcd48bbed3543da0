//! The system file's format, read with every position kept, so that whatever is wrong with
//! it is reported as `system file X.toml, line N, field node.start: ...`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::template::{Template, TemplateError};
use crate::host_addr::{HostAddr, parse_hosts};
use crate::toml_input;

/// Placeholders of the node's commands (`node.start`, `node.ready`, `node.leader`).
pub const NODE_PLACEHOLDERS: &[&str] = &[
    "id",
    "index",
    "ip",
    "client_port",
    "peer_port",
    "client_addr",
    "peer_addr",
    "data_dir",
    "node_dir",
    "peers",
    "cluster",
    "cluster_urls",
    "system_dir",
    "run_dir",
];

/// Placeholders of the exec client's command.
pub const CLIENT_PLACEHOLDERS: &[&str] = &[
    "home",
    "home_addr",
    "nodes",
    "task",
    "system_dir",
    "run_dir",
];

/// Placeholders of the `version` command.
pub const VERSION_PLACEHOLDERS: &[&str] = &["system_dir"];

/// The client kinds a file may name.
pub const CLIENT_KINDS: &[&str] = &["http", "exec"];

/// The file as TOML has it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Spanned<String>,
    version: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    namespaces: bool,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    node: RawNode,
    client: RawClient,
    hosts: Option<RawHosts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHosts {
    ssh: Spanned<Vec<String>>,
    ssh_config: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    start: Spanned<Vec<String>>,
    ready: Option<Spanned<Vec<String>>>,
    leader: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    kind: Spanned<String>,
    command: Option<Spanned<Vec<String>>>,
}

/// A system file, checked: every command is a valid template.
#[derive(Clone, Debug)]
pub struct SystemFile {
    /// The system's name, for test.json and the summary.
    pub name: String,
    /// A command whose first line of output is the system's version.
    pub version: Option<Template>,
    /// Its nodes need network namespaces for their links to be cut.
    pub namespaces: bool,
    /// Programs that must be on the PATH, each with the line that asks for it.
    pub requires: Vec<(String, usize)>,
    pub start: Template,
    pub ready: Option<Template>,
    pub leader: Option<Template>,
    pub client: ClientKind,
    /// The hosts its nodes run on (`[hosts]`), when the file names them.
    pub hosts: Option<FileHosts>,
    /// Where each checked field is, for errors found after loading (a program not found).
    pub lines: FieldLines,
}

/// The `[hosts]` section: the nodes run on these hosts over SSH, as with `--hosts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHosts {
    /// One node on each, in order (`ssh`, as `--hosts` takes them).
    pub ssh: Vec<HostAddr>,
    /// The ssh configuration to use (`ssh_config`, relative to the file's directory), as
    /// `--ssh-config`.
    pub ssh_config: Option<PathBuf>,
}

/// The lines of the fields that can still be wrong once the file is read.
#[derive(Clone, Debug, Default)]
pub struct FieldLines {
    pub start: usize,
    pub version: Option<usize>,
    pub client_command: Option<usize>,
}

/// How the harness talks to the system.
#[derive(Clone, Debug)]
pub enum ClientKind {
    /// The Faultline HTTP contract, on each node's client address.
    Http,
    /// A program per client process that speaks JSON lines on stdin and stdout.
    Exec(Template),
}

/// What is wrong with a system file, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    /// From 1; `None` when the file could not be read at all.
    pub line: Option<usize>,
    /// The field, dotted (`node.start`), when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "system file {}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

impl FileError {
    /// An error about `field` at `line` of the file at `path`.
    pub fn at(path: &Path, line: usize, field: &str, message: impl Into<String>) -> FileError {
        FileError {
            path: path.to_path_buf(),
            line: Some(line),
            field: Some(field.to_string()),
            message: message.into(),
        }
    }
}

/// Reads `text`, the contents of the file at `path`. Text past the limits of
/// [`toml_input::check`] (long lines, deep nesting) is refused before it is parsed.
pub fn parse(path: &Path, text: &str) -> Result<SystemFile, FileError> {
    toml_input::check(text).map_err(|refusal| FileError {
        path: path.to_path_buf(),
        line: refusal.line,
        field: None,
        message: refusal.message,
    })?;
    let raw: RawFile = toml::from_str(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        let message = error.message().trim().to_string();
        FileError {
            path: path.to_path_buf(),
            line: Some(line_of(text, span.start)),
            field: field_of(text, &span, &message),
            message,
        }
    })?;
    let error = |span: Range<usize>, field: &str, message: String| {
        FileError::at(path, line_of(text, span.start), field, message)
    };
    let template = |value: &Spanned<Vec<String>>, field: &str, known| {
        Template::parse(value.get_ref(), known)
            .map_err(|e: TemplateError| error(value.span(), field, e.to_string()))
    };
    if raw.name.get_ref().trim().is_empty() {
        return Err(error(raw.name.span(), "name", "the name is empty".into()));
    }
    let client = match raw.client.kind.get_ref().as_str() {
        "http" => match &raw.client.command {
            Some(command) => {
                return Err(error(
                    command.span(),
                    "client.command",
                    "an http client has no command (it talks to each node's client address); \
                     use kind = \"exec\" to run one"
                        .into(),
                ));
            }
            None => ClientKind::Http,
        },
        "exec" => match &raw.client.command {
            Some(command) => {
                ClientKind::Exec(template(command, "client.command", CLIENT_PLACEHOLDERS)?)
            }
            None => {
                return Err(error(
                    raw.client.kind.span(),
                    "client.command",
                    "an exec client needs the command that starts it".into(),
                ));
            }
        },
        other => {
            return Err(error(
                raw.client.kind.span(),
                "client.kind",
                format!(
                    "unknown client kind {other:?} (known: {})",
                    CLIENT_KINDS.join(", ")
                ),
            ));
        }
    };
    let hosts = raw
        .hosts
        .as_ref()
        .map(|hosts| file_hosts(path, hosts).map_err(|(span, field, e)| error(span, field, e)))
        .transpose()?;
    let line = |value: &Spanned<Vec<String>>| line_of(text, value.span().start);
    Ok(SystemFile {
        hosts,
        name: raw.name.get_ref().clone(),
        version: raw
            .version
            .as_ref()
            .map(|v| template(v, "version", VERSION_PLACEHOLDERS))
            .transpose()?,
        namespaces: raw.namespaces,
        requires: raw
            .requires
            .iter()
            .map(|program| {
                (
                    program.get_ref().clone(),
                    line_of(text, program.span().start),
                )
            })
            .collect(),
        start: template(&raw.node.start, "node.start", NODE_PLACEHOLDERS)?,
        ready: raw
            .node
            .ready
            .as_ref()
            .map(|v| template(v, "node.ready", NODE_PLACEHOLDERS))
            .transpose()?,
        leader: raw
            .node
            .leader
            .as_ref()
            .map(|v| template(v, "node.leader", NODE_PLACEHOLDERS))
            .transpose()?,
        client,
        lines: FieldLines {
            start: line(&raw.node.start),
            version: raw.version.as_ref().map(line),
            client_command: raw.client.command.as_ref().map(line),
        },
    })
}

/// The `[hosts]` section, checked: every host as `--hosts` takes it, and the ssh
/// configuration found from the file's directory. An error says where and what.
fn file_hosts(
    path: &Path,
    hosts: &RawHosts,
) -> Result<FileHosts, (Range<usize>, &'static str, String)> {
    if hosts.ssh.get_ref().is_empty() {
        return Err((
            hosts.ssh.span(),
            "hosts.ssh",
            "names no host: one node runs on each host named".to_string(),
        ));
    }
    let ssh = parse_hosts(&hosts.ssh.get_ref().join(","))
        .map_err(|e| (hosts.ssh.span(), "hosts.ssh", e))?;
    let ssh_config = hosts.ssh_config.as_ref().map(|config| {
        let dir = path.parent().unwrap_or(Path::new(""));
        dir.join(config.get_ref())
    });
    if let (Some(config), Some(spanned)) = (&ssh_config, &hosts.ssh_config)
        && !config.is_file()
    {
        return Err((
            spanned.span(),
            "hosts.ssh_config",
            format!("the ssh configuration {} does not exist", config.display()),
        ));
    }
    Ok(FileHosts { ssh, ssh_config })
}

/// The line (from 1) that holds byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted field an error of the TOML reader is about: the table the error is in (the
/// last `[header]` before it), then the key on its line, or the one the message names
/// (`missing field `start``, `unknown field `stat``).
fn field_of(text: &str, span: &Range<usize>, message: &str) -> Option<String> {
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[line_start..line_end].trim();
    let table = |upto: usize| -> Option<String> {
        text[..upto].lines().rev().find_map(|l| {
            let l = l.trim();
            let header = l.strip_prefix('[')?.split(']').next()?;
            Some(header.trim().to_string())
        })
    };
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix)?.split('`').next());
    let (table, key) = if line.starts_with('[') {
        // The span is a whole table: the error is about one of its fields.
        let header = line.trim_start_matches('[').split(']').next()?.trim();
        (Some(header.to_string()), named.map(str::to_string))
    } else if span.start == 0 && span.end >= text.trim_end().len() {
        // The whole document: a top-level field.
        (None, named.map(str::to_string))
    } else {
        let key = line.split('=').next().map(|k| k.trim().to_string());
        let key = named.map(str::to_string).or(key);
        (table(line_start), key)
    };
    match (table, key) {
        (Some(table), Some(key)) => Some(format!("{table}.{key}")),
        (None, Some(key)) => Some(key),
        (Some(table), None) => Some(table),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"name = "kv"
version = ["kv", "--version"]
requires = ["kv"]

[node]
start = ["kv", "--id", "{id}", "--data", "{data_dir}"]
leader = ["kvctl", "leader", "{client_addr}"]

[client]
kind = "exec"
command = ["python3", "{system_dir}/client.py", "{home}"]
"#;

    fn error(text: &str) -> FileError {
        parse(Path::new("kv.toml"), text).unwrap_err()
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::{GOOD, error, parse};
        use crate::toml_input::fuzz::{deep, deep_value, edits, mutate};
        use std::path::Path;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn any_text_is_a_system_file_or_an_error_with_a_line(text in any::<String>()) {
                if let Err(error) = parse(Path::new("kv.toml"), &text) {
                    prop_assert!(error.line.is_some(), "{}", error);
                }
            }

            #[test]
            fn a_mutated_system_file_is_one_or_an_error_with_a_line(edits in edits()) {
                let text = mutate(GOOD, &edits);
                if let Err(error) = parse(Path::new("kv.toml"), &text) {
                    prop_assert!(error.line.is_some(), "{}", error);
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

            /// Arrays and inline tables nested past the limit, up to 100,000 deep: an error
            /// naming the line and the limit.
            #[test]
            fn deep_nesting_is_an_error_naming_the_line((openers, depth) in deep()) {
                let text = format!("name = \"kv\"\n\n[node]\nstart = {}", deep_value(&openers, depth));
                let error = error(&text);
                prop_assert_eq!(error.line, Some(4));
                prop_assert!(
                    error.to_string().starts_with("system file kv.toml, line 4: arrays and \
                                                  inline tables nested deeper than 32 levels"),
                    "{}", error
                );
            }
        }
    }

    /// The good file with the line that starts with `old` replaced by `new`.
    fn with(old: &str, new: &str) -> String {
        GOOD.lines()
            .map(|line| if line.starts_with(old) { new } else { line })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_good_file_is_read_with_its_commands_as_templates() {
        let file = parse(Path::new("kv.toml"), GOOD).unwrap();
        assert_eq!(file.name, "kv");
        assert!(!file.namespaces);
        assert_eq!(file.requires, [("kv".to_string(), 3)]);
        assert_eq!(file.lines.start, 6);
        assert!(file.ready.is_none());
        let start = file.start.render(|name| format!("<{name}>"));
        assert_eq!(start, ["kv", "--id", "<id>", "--data", "<data_dir>"]);
        let ClientKind::Exec(client) = file.client else {
            panic!("an exec client")
        };
        assert_eq!(client.literal_program(), Some("python3"));
    }

    #[test]
    fn hosts_are_read_as_hosts_takes_them_and_a_bad_one_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.toml");
        std::fs::write(dir.path().join("ssh_config"), "").unwrap();
        let hosts = |section: &str| parse(&path, &format!("{GOOD}\n[hosts]\n{section}\n"));
        let file =
            hosts("ssh = [\"root@h1\", \"ci@h2:2222\"]\nssh_config = \"ssh_config\"").unwrap();
        let file_hosts = file.hosts.unwrap();
        let names: Vec<String> = file_hosts.ssh.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["root@h1", "ci@h2:2222"]);
        assert_eq!(file_hosts.ssh_config, Some(dir.path().join("ssh_config")));
        assert!(parse(&path, GOOD).unwrap().hosts.is_none());

        let twice = hosts("ssh = [\"root@h1\", \"ci@h1\"]").unwrap_err();
        assert_eq!(
            (twice.line, twice.field.as_deref()),
            (Some(14), Some("hosts.ssh"))
        );
        assert!(twice.message.contains("h1 is named twice"), "{twice}");
        let none = hosts("ssh = []").unwrap_err();
        assert!(none.message.contains("names no host"), "{none}");
        let config = hosts("ssh = [\"root@h1\"]\nssh_config = \"nowhere\"").unwrap_err();
        assert_eq!(
            (config.line, config.field.as_deref()),
            (Some(15), Some("hosts.ssh_config"))
        );
        assert!(config.message.contains("does not exist"), "{config}");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let e = error(&with("kind", "kind = \"exec"));
        assert_eq!(e.line, Some(10), "{e}");
        assert!(
            e.to_string().starts_with("system file kv.toml, line 10"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_names_its_line_and_field() {
        let e = error(&with("leader", "leadr = [\"kvctl\"]"));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(7), Some("node.leadr")),
            "{e}"
        );
        assert!(e.message.contains("unknown field `leadr`"), "{e}");
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_line_and_field() {
        let e = error(&with("start", "start = \"kv --id {id}\""));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(6), Some("node.start")),
            "{e}"
        );
        let e = error(&with("requires", "requires = [\"kv\", 3]"));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("requires")),
            "{e}"
        );
    }

    #[test]
    fn a_missing_name_or_start_command_is_named() {
        let e = error(&with("name", ""));
        assert_eq!(e.field.as_deref(), Some("name"), "{e}");
        assert!(e.message.contains("missing field `name`"), "{e}");
        let e = error(&with("start", ""));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(5), Some("node.start")),
            "{e}"
        );
        assert!(e.message.contains("missing field `start`"), "{e}");
    }

    #[test]
    fn an_unknown_placeholder_names_the_field_and_the_known_ones() {
        let e = error(&with(
            "start",
            "start = [\"kv\", \"--data\", \"{dta_dir}\"]",
        ));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(6), Some("node.start")),
            "{e}"
        );
        assert!(
            e.message.starts_with("unknown placeholder {dta_dir}"),
            "{e}"
        );
        assert!(e.message.contains("{data_dir}"), "{e}");
        let e = error(&with(
            "command",
            "command = [\"python3\", \"client.py\", \"{id}\"]",
        ));
        assert_eq!(e.field.as_deref(), Some("client.command"), "{e}");
        assert!(e.message.contains("{home}"), "{e}");
    }

    #[test]
    fn an_empty_command_is_refused() {
        let e = error(&with("start", "start = []"));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(6), Some("node.start")),
            "{e}"
        );
        assert!(e.message.contains("empty"), "{e}");
        let e = error(&with("leader", "leader = [\"\", \"x\"]"));
        assert_eq!(e.field.as_deref(), Some("node.leader"), "{e}");
    }

    #[test]
    fn an_unknown_client_kind_is_refused_with_the_known_ones() {
        let e = error(&with("kind", "kind = \"grpc\""));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(10), Some("client.kind")),
            "{e}"
        );
        assert_eq!(
            e.message,
            "unknown client kind \"grpc\" (known: http, exec)"
        );
        let e = error(&with("command", ""));
        assert_eq!(e.field.as_deref(), Some("client.command"), "{e}");
        let http = with("kind", "kind = \"http\"");
        let e = error(&http);
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(11), Some("client.command")),
            "{e}"
        );
    }
}
