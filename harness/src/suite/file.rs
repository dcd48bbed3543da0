//! The suite file: TOML whose keys are the flags of `faultline test`.
//!
//! ```toml
//! [defaults]            # applied to every test
//! time-limit = "20s"
//! [[matrix]]            # the cross product of the lists; scalars apply to all
//! workload = ["register", "append"]
//! nemesis = ["kill", "partition"]
//! nodes = [3, 5]
//! [[matrix]]
//! bug = ["stale-read"]
//! nemesis = "partition"
//! expect = "invalid"
//! [[test]]              # a single test, named or not
//! name = "early-ack-leader"
//! bug = "early-ack"
//! nemesis = "kill,partition-leader"
//! expect = "invalid"
//! ```
//!
//! Besides the flags, `expect` says which verdicts pass (`valid` by default; a verdict or a
//! list of them), `expect-recovery` (like `"1s"`) bounds how long writes may stop after
//! each fault, and a `[[test]]` may have a `name`. A matrix test is named after what tells
//! it apart: `<workload>-<nemesis>-n<nodes>[-<bug>...]`, then `<key>-<value>` for any other
//! list of the entry. Every test is checked before the first one runs.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use toml::{Table, Value};

use super::expect::Expectation;
use super::flags::{self, Flags};
use crate::run::TestArgs;
use crate::store::derived_name;
use crate::toml_input;

/// A suite, expanded into the tests it runs, in order.
#[derive(Debug)]
pub struct Suite {
    /// The file's stem (`ci` for `suites/ci.toml`): the JUnit class name of its tests.
    pub name: String,
    pub tests: Vec<SuiteTest>,
}

/// One test of a suite, ready to run.
#[derive(Debug)]
pub struct SuiteTest {
    /// Unique in the suite; also the test's directory in the store.
    pub name: String,
    pub args: TestArgs,
    pub expect: Expectation,
}

/// What the command line of `faultline suite` imposes on every test.
#[derive(Clone, Debug)]
pub struct Overrides {
    /// Where the runs are stored.
    pub store: PathBuf,
    /// Every test's `--time-limit`, instead of the file's.
    pub time_limit: Option<Duration>,
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    #[serde(default)]
    defaults: Table,
    #[serde(default)]
    matrix: Vec<Table>,
    #[serde(default)]
    test: Vec<Table>,
}

/// Where in the file a setting comes from, for messages.
#[derive(Clone, Copy)]
enum Entry {
    Defaults,
    /// 1-based, as a person counts.
    Matrix(usize),
    Test(usize),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Defaults => f.write_str("[defaults]"),
            Entry::Matrix(n) => write!(f, "[[matrix]] #{n}"),
            Entry::Test(n) => write!(f, "[[test]] #{n}"),
        }
    }
}

/// An entry's keys, sorted out: the flags, the expectation and the name.
struct Settings<'a> {
    flags: Vec<(&'a str, &'a Value)>,
    expect: Option<Expectation>,
    expect_recovery: Option<Duration>,
    name: Option<String>,
}

impl Suite {
    /// Reads and expands a suite file (at most [`toml_input::MAX_FILE_BYTES`]).
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Suite> {
        let text = toml_input::read(path)
            .with_context(|| format!("reading the suite {}", path.display()))?;
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "suite".to_string());
        Suite::parse(&path.display().to_string(), &name, &text, overrides)
    }

    /// Expands the text of a suite file; `file` names it in messages. Text past the limits
    /// of [`toml_input::check`] (long lines, deep nesting) is refused before it is parsed.
    pub fn parse(file: &str, name: &str, text: &str, overrides: &Overrides) -> Result<Suite> {
        toml_input::check(text).map_err(|refusal| anyhow!("{file}, {refusal}"))?;
        let parsed: SuiteFile = toml::from_str(text).with_context(|| file.to_string())?;
        let flags = Flags::of_test_command();
        let in_entry = |entry: Entry| move |e: anyhow::Error| anyhow!("{file}: {entry}: {e:#}");
        let defaults = Settings::sort_out(&parsed.defaults, Entry::Defaults, &flags)
            .map_err(in_entry(Entry::Defaults))?;

        let mut expansion = Expansion {
            flags: &flags,
            defaults: &defaults,
            overrides,
            names: HashSet::new(),
            tests: Vec::new(),
        };
        for (index, table) in parsed.matrix.iter().enumerate() {
            let entry = Entry::Matrix(index + 1);
            expansion.matrix(table, entry).map_err(in_entry(entry))?;
        }
        for (index, table) in parsed.test.iter().enumerate() {
            let entry = Entry::Test(index + 1);
            expansion.single(table, entry).map_err(in_entry(entry))?;
        }
        if expansion.tests.is_empty() {
            bail!("{file}: no tests: add a [[matrix]] or a [[test]]");
        }
        Ok(Suite {
            name: name.to_string(),
            tests: expansion.tests,
        })
    }
}

impl<'a> Settings<'a> {
    /// Checks every key of an entry: a flag of `faultline test`, `expect`, or (in a
    /// `[[test]]`) `name`.
    fn sort_out(table: &'a Table, entry: Entry, flags: &Flags) -> Result<Settings<'a>> {
        let mut settings = Settings {
            flags: Vec::new(),
            expect: None,
            expect_recovery: None,
            name: None,
        };
        for (key, value) in table {
            let in_key = |e: anyhow::Error| anyhow!("key `{key}`: {e:#}");
            match key.as_str() {
                "expect" => settings.expect = Some(Expectation::from_toml(value).map_err(in_key)?),
                "expect-recovery" => {
                    let bound = Expectation::recovery_from_toml(value).map_err(in_key)?;
                    settings.expect_recovery = Some(bound);
                }
                "name" => match (entry, value) {
                    (Entry::Test(_), Value::String(name)) => settings.name = Some(name.clone()),
                    (Entry::Test(_), _) => bail!("key `name`: a test's name is a string"),
                    _ => bail!(
                        "key `name`: only a [[test]] has a name; the tests of a matrix are \
                         named after their workload, nemesis, nodes and bugs"
                    ),
                },
                "store" => bail!("key `store`: runs go where `faultline suite --store` says"),
                flag if flags.get(flag).is_some() => settings.flags.push((key, value)),
                _ => bail!(
                    "key `{key}` is unknown; the keys are `expect`, `expect-recovery`, `name` \
                     (in a [[test]]) and the flags of `faultline test`: {}",
                    flags
                        .names()
                        .filter(|name| *name != "store" && *name != "name")
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        Ok(settings)
    }
}

/// The tests expanded so far, and the names they took.
struct Expansion<'a> {
    flags: &'a Flags,
    defaults: &'a Settings<'a>,
    overrides: &'a Overrides,
    names: HashSet<String>,
    tests: Vec<SuiteTest>,
}

impl Expansion<'_> {
    /// A `[[matrix]]`: one test per combination of its lists.
    fn matrix(&mut self, table: &Table, entry: Entry) -> Result<()> {
        let settings = Settings::sort_out(table, entry, self.flags)?;
        let mut combinations: Vec<Vec<(&str, &Value)>> = vec![Vec::new()];
        // The lists of more than one value tell the tests apart, so they name them.
        let mut naming_keys = Vec::new();
        for &(key, value) in &settings.flags {
            let choices: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            if choices.is_empty() {
                bail!("key `{key}` is an empty list, which makes no test");
            }
            if choices.len() > 1 && !["workload", "nemesis", "nodes", "bug"].contains(&key) {
                naming_keys.push(key);
            }
            combinations = combinations
                .into_iter()
                .flat_map(|combination| {
                    choices.iter().map(move |choice| {
                        let mut extended = combination.clone();
                        extended.push((key, *choice));
                        extended
                    })
                })
                .collect();
        }
        for combination in combinations {
            let args = self.args(&combination)?;
            let mut name = generated_name(&args);
            for (key, value) in combination.iter().filter(|(k, _)| naming_keys.contains(k)) {
                let value = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                name.push_str(&format!("-{key}-{value}"));
            }
            let name = self.unique(&sanitized(&name));
            self.add(args, name, &settings)?;
        }
        Ok(())
    }

    /// A `[[test]]`: its lists are repeated flags, not dimensions.
    fn single(&mut self, table: &Table, entry: Entry) -> Result<()> {
        let settings = Settings::sort_out(table, entry, self.flags)?;
        let args = self.args(&settings.flags)?;
        let name = match &settings.name {
            Some(name) if self.names.contains(name) => {
                bail!("another test is already named `{name}`")
            }
            Some(name) => name.clone(),
            None => self.unique(&sanitized(&generated_name(&args))),
        };
        self.add(args, name, &settings)
    }

    /// The flags of one test: the defaults, overridden by the entry's settings.
    fn args(&self, entry: &[(&str, &Value)]) -> Result<TestArgs> {
        let mut merged: Vec<(&str, Vec<String>)> = Vec::new();
        for &(key, value) in self.defaults.flags.iter().chain(entry) {
            let flag = self.flags.get(key).expect("sorted out as a flag");
            let values = flags::values(flag, value).map_err(|e| anyhow!("key `{key}`: {e:#}"))?;
            merged.retain(|(earlier, _)| *earlier != key);
            merged.push((key, values));
        }
        flags::parse(merged.iter().map(|(key, values)| (*key, values.as_slice())))
    }

    /// Names the test, applies the command line's overrides, and checks that it can run.
    fn add(&mut self, mut args: TestArgs, name: String, settings: &Settings) -> Result<()> {
        args.name = Some(name.clone());
        args.store = self.overrides.store.clone();
        if let Some(limit) = self.overrides.time_limit {
            args.time_limit = limit;
        }
        args.resolve().with_context(|| format!("test `{name}`"))?;
        self.names.insert(name.clone());
        self.tests.push(SuiteTest {
            name,
            args,
            expect: settings
                .expect
                .clone()
                .or_else(|| self.defaults.expect.clone())
                .unwrap_or_default()
                .with_recovery(settings.expect_recovery.or(self.defaults.expect_recovery)),
        });
        Ok(())
    }

    /// `name`, or `name-2`, `name-3`... if it is taken.
    fn unique(&self, name: &str) -> String {
        let mut candidate = name.to_string();
        let mut n = 2;
        while self.names.contains(&candidate) {
            candidate = format!("{name}-{n}");
            n += 1;
        }
        candidate
    }
}

/// `<workload>-<nemesis>-n<nodes>`, then each bug.
fn generated_name(args: &TestArgs) -> String {
    let mut name = format!(
        "{}-n{}",
        derived_name(&args.workload.to_string(), &args.nemesis_label()),
        args.nodes
    );
    for bug in &args.bugs {
        name.push('-');
        name.push_str(bug);
    }
    name
}

/// A name the store accepts as a directory: `kill,pause` becomes `kill+pause`, and anything
/// else outside letters, digits and `-_.+` becomes `_`.
fn sanitized(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ',' => '+',
            c if c.is_ascii_alphanumeric() || "-_.+".contains(c) => c,
            _ => '_',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use faultline_checker::Verdict;

    use super::*;

    fn overrides() -> Overrides {
        Overrides {
            store: PathBuf::from("/tmp/faultline-suite-test-store"),
            time_limit: None,
        }
    }

    fn parse(text: &str) -> Result<Suite> {
        Suite::parse("suites/x.toml", "x", text, &overrides())
    }

    #[test]
    fn the_shipped_suites_load_and_the_nightly_one_runs_each_new_bug() {
        let suites = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
        for name in ["ci", "nightly"] {
            let suite = Suite::load(&suites.join(format!("{name}.toml")), &overrides())
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!suite.tests.is_empty(), "{name}");
        }
        let nightly = Suite::load(&suites.join("nightly.toml"), &overrides()).unwrap();
        for bug in ["membership-one-step", "lease-no-drift"] {
            let runs_it = nightly.tests.iter().any(|test| {
                test.args.bugs == [bug]
                    && test.expect.allows(Verdict::Invalid)
                    && !test.expect.allows(Verdict::Valid)
            });
            assert!(runs_it, "no nightly test of {bug}: {:?}", names(&nightly));
        }
    }

    fn names(suite: &Suite) -> Vec<&str> {
        suite.tests.iter().map(|t| t.name.as_str()).collect()
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::parse;
        use crate::toml_input::fuzz::{deep, deep_value, edits, mutate};

        const SUITE: &str = r#"[defaults]
time-limit = "15s"

[[matrix]]
workload = ["register", "append"]
nemesis = ["kill,pause", "partition"]
expect = "valid"

[[test]]
name = "stale-read-partition"
bug = "stale-read"
expect = ["invalid", "unknown"]
"#;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn any_text_is_a_suite_or_an_error(text in any::<String>()) {
                let _ = parse(&text);
            }

            #[test]
            fn a_mutated_suite_is_a_suite_or_an_error(edits in edits()) {
                let _ = parse(&mutate(SUITE, &edits));
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

            /// Arrays and inline tables nested past the limit, up to 100,000 deep: an error
            /// naming the file, the line and the limit.
            #[test]
            fn deep_nesting_is_an_error_naming_the_line((openers, depth) in deep()) {
                let text = format!("[defaults]\nnodes = {}", deep_value(&openers, depth));
                let error = format!("{:#}", parse(&text).unwrap_err());
                prop_assert!(
                    error.starts_with("suites/x.toml, line 2: arrays and inline tables nested \
                                       deeper than 32 levels"),
                    "{}", error
                );
            }
        }
    }

    #[test]
    fn a_matrix_is_the_cross_product_of_its_lists_in_the_order_written() {
        let suite = parse(
            r#"
            [[matrix]]
            workload = ["register", "append"]
            nemesis = ["kill", "partition"]
            nodes = [3, 5]
            concurrency = 4
            "#,
        )
        .unwrap();
        assert_eq!(
            names(&suite),
            [
                "register-kill-n3",
                "register-kill-n5",
                "register-partition-n3",
                "register-partition-n5",
                "append-kill-n3",
                "append-kill-n5",
                "append-partition-n3",
                "append-partition-n5",
            ]
        );
        let last = &suite.tests[7].args;
        assert_eq!(last.workload.to_string(), "append");
        assert_eq!(last.nemesis_kinds().to_string(), "partition");
        assert_eq!(last.nodes, 5);
        assert!(suite.tests.iter().all(|t| t.args.concurrency == 4));
        assert!(
            suite
                .tests
                .iter()
                .all(|t| t.expect == Expectation::default())
        );
        assert_eq!(suite.name, "x");
    }

    #[test]
    fn defaults_apply_to_every_test_unless_the_entry_or_the_command_line_says_otherwise() {
        let text = r#"
            [defaults]
            time-limit = "20s"
            nemesis-interval = "2s"
            nodes = 5
            [[matrix]]
            nemesis = "kill"
            [[test]]
            nodes = 3
            nemesis = "pause"
        "#;
        let suite = parse(text).unwrap();
        let [matrix, single] = &suite.tests[..] else {
            panic!("two tests expected: {suite:?}")
        };
        assert_eq!(matrix.args.nodes, 5);
        assert_eq!(single.args.nodes, 3);
        for test in &suite.tests {
            assert_eq!(test.args.time_limit, Duration::from_secs(20));
            assert_eq!(test.args.nemesis_interval, Duration::from_secs(2));
            assert_eq!(test.args.store, overrides().store);
            assert_eq!(test.args.name.as_deref(), Some(test.name.as_str()));
        }

        let shorter = Overrides {
            time_limit: Some(Duration::from_secs(5)),
            ..overrides()
        };
        let suite = Suite::parse("x.toml", "x", text, &shorter).unwrap();
        assert!(
            suite
                .tests
                .iter()
                .all(|t| t.args.time_limit == Duration::from_secs(5))
        );
    }

    #[test]
    fn bugs_and_expectations_name_and_judge_their_tests() {
        let suite = parse(
            r#"
            [[matrix]]
            bug = ["stale-read", "early-ack"]
            nemesis = "partition"
            expect = ["invalid", "unknown"]
            [[test]]
            name = "early-ack-leader"
            bug = "early-ack"
            nemesis = "kill,partition-leader"
            expect = "invalid"
            [[test]]
            bug = ["stale-read", "early-ack"]
            nemesis = "none"
            "#,
        )
        .unwrap();
        assert_eq!(
            names(&suite),
            [
                "mixed-partition-n3-stale-read",
                "mixed-partition-n3-early-ack",
                "early-ack-leader",
                "mixed-none-n3-stale-read-early-ack",
            ]
        );
        assert_eq!(suite.tests[0].args.bugs, ["stale-read"]);
        assert!(suite.tests[0].expect.allows(Verdict::Unknown));
        assert!(!suite.tests[0].expect.allows(Verdict::Valid));
        assert_eq!(suite.tests[2].expect.to_string(), "invalid");
        assert_eq!(suite.tests[3].args.bugs, ["stale-read", "early-ack"]);
        assert_eq!(suite.tests[3].expect.to_string(), "valid");
    }

    #[test]
    fn other_lists_add_to_the_name_and_repeats_are_numbered() {
        let suite = parse(
            r#"
            [[matrix]]
            nemesis = "kill,pause"
            concurrency = [5, 20]
            [[matrix]]
            nemesis = "pause,kill"
            [[test]]
            nemesis = "kill,pause"
            "#,
        )
        .unwrap();
        assert_eq!(
            names(&suite),
            [
                "mixed-kill+pause-n3-concurrency-5",
                "mixed-kill+pause-n3-concurrency-20",
                "mixed-kill+pause-n3",
                "mixed-kill+pause-n3-2",
            ]
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_file_and_entry() {
        let message = error(
            r#"
            [[matrix]]
            nemesis = "kill"
            [[matrix]]
            nemesis = "kill"
            time_limit = "10s"
            "#,
        );
        assert!(message.contains("suites/x.toml"), "{message}");
        assert!(message.contains("[[matrix]] #2"), "{message}");
        assert!(message.contains("key `time_limit` is unknown"), "{message}");
        assert!(
            message.contains("time-limit"),
            "lists the right spelling: {message}"
        );

        let message = error("[defaults]\nnode = 3\n[[test]]\n");
        assert!(
            message.contains("suites/x.toml: [defaults]: key `node`"),
            "{message}"
        );

        let message = error("[[tests]]\nnodes = 3\n");
        assert!(message.contains("suites/x.toml"), "{message}");
        assert!(message.contains("tests"), "{message}");
    }

    #[test]
    fn keys_the_suite_decides_itself_are_refused() {
        let message = error("[[matrix]]\nname = \"mine\"\n");
        assert!(message.contains("[[matrix]] #1: key `name`"), "{message}");
        let message = error("[defaults]\nstore = \"elsewhere\"\n[[test]]\n");
        assert!(message.contains("key `store`"), "{message}");
        assert!(message.contains("--store"), "{message}");
    }

    #[test]
    fn a_bad_value_is_refused_before_any_test_runs() {
        let message = error("[[test]]\nnemesis = \"kil\"\n");
        assert!(message.contains("suites/x.toml: [[test]] #1"), "{message}");
        assert!(message.contains("--nemesis"), "{message}");

        let message = error("[[matrix]]\nnodes = [3, 0]\n");
        assert!(message.contains("[[matrix]] #1"), "{message}");
        assert!(message.contains("-n0`"), "{message}");
        assert!(message.contains("--nodes must be between"), "{message}");

        let message = error("[[matrix]]\nnemesis = []\n");
        assert!(
            message.contains("key `nemesis` is an empty list"),
            "{message}"
        );

        let message = error("[[test]]\nexpect = \"pass\"\n");
        assert!(message.contains("[[test]] #1: key `expect`"), "{message}");
    }

    #[test]
    fn names_are_unique_and_a_repeated_explicit_name_is_an_error() {
        let message = error("[[test]]\nname = \"a\"\n[[test]]\nname = \"a\"\n");
        assert!(message.contains("[[test]] #2"), "{message}");
        assert!(message.contains("already named `a`"), "{message}");
        let message = error("[[test]]\nname = \"a/b\"\n");
        assert!(message.contains("letters, digits"), "{message}");
    }

    #[test]
    fn a_suite_without_tests_is_an_error() {
        assert!(error("[defaults]\nnodes = 3\n").contains("no tests"));
    }

    fn bundled(file: &str) -> Suite {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../suites")
            .join(file);
        Suite::load(&path, &overrides()).unwrap()
    }

    /// What `suites/ci.toml` must cover, in a few minutes.
    #[test]
    fn the_ci_suite_covers_every_workload_fault_and_bug_in_a_few_minutes() {
        let suite = bundled("ci.toml");
        assert_eq!(suite.name, "ci");
        let has = |what: &dyn Fn(&SuiteTest) -> bool| suite.tests.iter().any(what);
        for workload in ["register", "append", "mixed"] {
            assert!(
                has(&|t| t.args.workload.to_string() == workload && t.args.bugs.is_empty()),
                "{workload}"
            );
        }
        for fault in ["kill", "pause", "partition", "partition-leader"] {
            assert!(
                has(&|t| t
                    .args
                    .nemesis_kinds()
                    .to_string()
                    .split(',')
                    .any(|f| f == fault)
                    && t.args.bugs.is_empty()),
                "{fault}"
            );
        }
        assert!(has(&|t| t.args.bugs == ["stale-read"]
            && t.args.nemesis_kinds().to_string().contains("partition")
            && t.expect.allows(Verdict::Invalid)
            && !t.expect.allows(Verdict::Valid)));
        assert!(has(&|t| t.args.bugs == ["early-ack"]
            && t.args.nemesis_kinds().to_string()
                == "kill,partition-leader"
            && t.expect.allows(Verdict::Invalid)
            && !t.expect.allows(Verdict::Valid)));
        assert!(
            suite
                .tests
                .iter()
                .filter(|t| t.args.bugs.is_empty())
                .all(|t| t.expect.allows(Verdict::Valid) && !t.expect.allows(Verdict::Invalid))
        );
        // The default mix is there, with a bound on recovery; power loss catches no-fsync.
        assert!(has(&|t| t.args.nemesis.is_none()
            && t.expect.recovery_problem(&Default::default()).is_none()
            && t.expect.to_string().contains("recovery <=")));
        assert!(has(&|t| t.args.bugs == ["no-fsync"]
            && t.args.nemesis_kinds().to_string() == "power-loss"
            && !t.expect.allows(Verdict::Valid)));
        // Each test also spends a few seconds starting, healing, reading and checking.
        let total: Duration = suite
            .tests
            .iter()
            .map(|t| t.args.time_limit + Duration::from_secs(10))
            .sum();
        assert!(total <= Duration::from_secs(5 * 60), "{total:?}");
    }

    /// What `suites/nightly.toml` must cover: longer runs, 5 nodes, every fault, and every bug
    /// a run catches reliably.
    #[test]
    fn the_nightly_suite_runs_longer_on_five_nodes_with_every_fault_and_bug() {
        let suite = bundled("nightly.toml");
        let has = |what: &dyn Fn(&SuiteTest) -> bool| suite.tests.iter().any(what);
        assert!(has(&|t| t.args.nodes == 5
            && t.args.nemesis_kinds().to_string()
                == faultline_nemesis::FaultKinds::all().to_string()));
        for bug in ["stale-read", "early-ack", "no-fsync"] {
            assert!(
                has(&|t| t.args.bugs == [bug] && !t.expect.allows(Verdict::Valid)),
                "{bug}"
            );
        }
        assert!(
            suite
                .tests
                .iter()
                .all(|t| t.args.time_limit >= Duration::from_secs(60))
        );
    }
}
