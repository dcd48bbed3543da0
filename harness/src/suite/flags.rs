//! The keys of a suite file are the flags of `faultline test`. This module reads them from
//! clap's own definition of [`TestArgs`] (so the two cannot drift apart), turns TOML values
//! into flag values, and parses those exactly as the command line would: same defaults, same
//! checks, same messages.

use anyhow::{Result, anyhow, bail};
use clap::{ArgAction, CommandFactory, Parser};

use crate::run::TestArgs;

/// `faultline test`'s flags without the program name, to parse a suite entry's settings.
#[derive(Parser)]
#[command(name = "faultline test", no_binary_name = true)]
struct TestCommandLine {
    #[command(flatten)]
    args: TestArgs,
}

/// One flag of `faultline test`.
#[derive(Clone, Debug)]
pub struct Flag {
    /// The long name without dashes, e.g. `time-limit`: the key in a suite file.
    pub name: String,
    /// Whether it may be given several times (`--bug`).
    pub repeatable: bool,
}

/// Every flag of `faultline test`.
pub struct Flags {
    flags: Vec<Flag>,
}

impl Flags {
    /// The flags as clap defines them.
    pub fn of_test_command() -> Flags {
        let command = TestCommandLine::command();
        let flags = command
            .get_arguments()
            .filter_map(|arg| {
                let name = arg.get_long()?;
                Some(Flag {
                    name: name.to_string(),
                    repeatable: matches!(arg.get_action(), ArgAction::Append),
                })
            })
            .filter(|flag| flag.name != "help")
            .collect();
        Flags { flags }
    }

    /// The flag named `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<&Flag> {
        self.flags.iter().find(|flag| flag.name == key)
    }

    /// Every flag's name, in the order `faultline test --help` lists them.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|flag| flag.name.as_str())
    }
}

/// The values a TOML value stands for: a string or a number is one value; a list is one
/// value per element, for a repeatable flag only.
pub fn values(flag: &Flag, value: &toml::Value) -> Result<Vec<String>> {
    match value {
        toml::Value::Array(items) if flag.repeatable => items.iter().map(scalar).collect(),
        toml::Value::Array(_) => bail!(
            "`--{}` takes one value, not a list (in a [[matrix]], a list is a dimension)",
            flag.name
        ),
        single => Ok(vec![scalar(single)?]),
    }
}

/// A string or a number, as the command line would spell it.
fn scalar(value: &toml::Value) -> Result<String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        toml::Value::Float(number) => Ok(number.to_string()),
        other => bail!(
            "expected a string or a number, found {} `{other}`",
            other.type_str()
        ),
    }
}

/// Parses flag values as `faultline test` would (the flags not given take their defaults).
pub fn parse<'a>(settings: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Result<TestArgs> {
    let command_line = settings
        .into_iter()
        .flat_map(|(name, values)| values.iter().map(move |value| format!("--{name}={value}")));
    TestCommandLine::try_parse_from(command_line)
        .map(|parsed| parsed.args)
        .map_err(|error| {
            // clap's first line is the reason; the rest is usage advice for a command line.
            let text = error.to_string();
            let reason = text.lines().next().unwrap_or_default();
            anyhow!("{}", reason.trim_start_matches("error: "))
        })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn value(text: &str) -> toml::Value {
        let table: toml::Table = toml::from_str(&format!("v = {text}")).unwrap();
        table["v"].clone()
    }

    #[test]
    fn the_keys_are_the_flags_of_faultline_test() {
        let flags = Flags::of_test_command();
        let names: Vec<&str> = flags.names().collect();
        for expected in ["nodes", "time-limit", "workload", "nemesis", "bug", "seed"] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        assert!(!names.contains(&"help"));
        assert!(flags.get("bug").unwrap().repeatable);
        assert!(!flags.get("nodes").unwrap().repeatable);
        assert!(flags.get("time_limit").is_none());
    }

    #[test]
    fn values_are_parsed_as_on_the_command_line_with_its_defaults() {
        let flags = Flags::of_test_command();
        let nodes = values(flags.get("nodes").unwrap(), &value("5")).unwrap();
        let limit = values(flags.get("time-limit").unwrap(), &value("\"90s\"")).unwrap();
        let bugs = values(flags.get("bug").unwrap(), &value("[\"a\", \"b\"]")).unwrap();
        let args = parse([
            ("nodes", nodes.as_slice()),
            ("time-limit", limit.as_slice()),
            ("bug", bugs.as_slice()),
        ])
        .unwrap();
        assert_eq!(args.nodes, 5);
        assert_eq!(args.time_limit, Duration::from_secs(90));
        assert_eq!(args.bugs, ["a", "b"]);
        assert_eq!(args.concurrency, 10, "the default of --concurrency");
    }

    #[test]
    fn a_bad_value_is_refused_with_clap_s_reason_naming_the_flag() {
        let error = parse([("nodes", ["three".to_string()].as_slice())]).unwrap_err();
        let error = error.to_string();
        assert!(error.contains("--nodes"), "{error}");
        assert!(error.contains("three"), "{error}");
        assert!(!error.contains("--help"), "{error}");
    }

    #[test]
    fn lists_only_for_repeatable_flags_and_only_of_strings_and_numbers() {
        let flags = Flags::of_test_command();
        let nodes = flags.get("nodes").unwrap();
        let error = values(nodes, &value("[3, 5]")).unwrap_err().to_string();
        assert!(error.contains("one value"), "{error}");
        let error = values(nodes, &value("true")).unwrap_err().to_string();
        assert!(error.contains("found boolean `true`"), "{error}");
        let bug = flags.get("bug").unwrap();
        let error = values(bug, &value("[[\"a\"]]")).unwrap_err().to_string();
        assert!(error.contains("found array"), "{error}");
        assert_eq!(values(nodes, &value("0.5")).unwrap(), ["0.5"]);
    }
}
