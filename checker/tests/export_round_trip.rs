//! A history written out reads back as it was: exported as Jepsen EDN (or as JSON Lines) and
//! imported again, it has the same events, so the same operations and the same verdict, key
//! by key. Over every history of the test data (Porcupine's Jepsen logs and EDN key-value
//! histories, with their known verdicts), the harness's run fixture (JSON Lines with nemesis
//! events, nodes, errors, and times that go back where a late completion was recorded),
//! generated histories (valid and made invalid, with and without keys, with final reads and
//! nemesis events), and arbitrary events (strings to escape, nested values, floats).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use faultline_checker::export::edn;
use faultline_checker::generate::{Workload, cas_register_history, list_append_history};
use faultline_checker::{
    Budget, CheckOptions, Event, EventType, ExportFormat, Format, History, HistoryCheck, Name,
    Operation, Process, Verdict, check, operations, read_history,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Writes `history` in `format` and reads it back.
fn round_trip(history: &History, format: ExportFormat) -> History {
    let mut written = Vec::new();
    format.write(history, &mut written).unwrap();
    let text = String::from_utf8(written).unwrap();
    let import = match format {
        ExportFormat::Jsonl => Format::Jsonl,
        ExportFormat::Edn => Format::Edn,
    };
    import
        .parse(&text)
        .unwrap_or_else(|error| panic!("the {format} written does not read back: {error}\n{text}"))
}

/// Without a budget, so that the verdict of every key is decided, and decided alike.
/// How long each check of a generated history may take: most take milliseconds, but a
/// generated key now and then takes minutes (many pending operations around a spoiled read),
/// which made this test's time vary from seconds to minutes from one run to the next.
const GENERATED_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

fn bounded() -> CheckOptions {
    CheckOptions {
        budget: Budget {
            timeout: Some(GENERATED_CHECK_TIMEOUT),
            after_invalid: None,
            ..Budget::default()
        },
        ..CheckOptions::default()
    }
}

/// The operations, without where each was read from (a line of one file or another).
fn ops(history: &History) -> Vec<Operation> {
    let mut ops = operations(history).unwrap();
    for op in &mut ops {
        op.location = None;
    }
    ops
}

/// Each model's verdict and each key's, as text.
fn verdicts(checked: &HistoryCheck) -> Vec<String> {
    checked
        .linearizability
        .iter()
        .map(|result| {
            let keys: Vec<String> = result
                .keys
                .iter()
                .map(|k| format!("{:?} {}", k.key, k.valid))
                .collect();
            format!("{} {}: {}", result.model, result.valid, keys.join(", "))
        })
        .collect()
}

/// Asserts that two histories have the same events, naming the first that differs (a whole
/// history would be too long to read).
fn assert_same_events(back: &History, history: &History, name: &str) {
    let (back, events) = (back.events(), history.events());
    if let Some(i) = (0..events.len().min(back.len())).find(|&i| back[i] != events[i]) {
        panic!(
            "{name}: event {i} differs: {:?} came back as {:?}",
            events[i], back[i]
        );
    }
    assert_eq!(
        back.len(),
        events.len(),
        "{name}: the number of events differs"
    );
}

/// How closely two checks of a history must agree.
#[derive(Clone, Copy, PartialEq)]
enum Agree {
    /// Key by key, each check within [`GENERATED_CHECK_TIMEOUT`] and no other limit: for
    /// generated histories and the fixture run. If either check leaves a key undecided, only what the checker
    /// reads is compared (the events and operations, asserted before any check).
    KeyByKey,
    /// In the verdict, within the default budget: once a key is invalid, the others get a
    /// second more, and which of them are decided by then depends on the machine's load (a key
    /// of Porcupine's `c50-bad.txt` takes minutes to decide).
    Verdict,
}

/// Asserts that `history`, through `format`, comes back the same; returns its verdict.
fn assert_round_trips(
    history: &History,
    format: ExportFormat,
    name: &str,
    agree: Agree,
) -> Verdict {
    let back = round_trip(history, format);
    assert_same_events(&back, history, name);
    assert_eq!(ops(&back), ops(history), "{name}: the operations differ");
    let options = match agree {
        Agree::KeyByKey => bounded(),
        Agree::Verdict => CheckOptions::default(),
    };
    let before = check(history, None, &options).unwrap();
    let after = check(&back, None, &options).unwrap();
    let decided = |checked: &HistoryCheck| {
        (checked.linearizability.iter())
            .all(|result| result.keys.iter().all(|k| k.valid != Verdict::Unknown))
    };
    if agree == Agree::KeyByKey && !(decided(&before) && decided(&after)) {
        return before.valid;
    }
    assert_eq!(after.valid, before.valid, "{name}: the verdict differs");
    if agree == Agree::Verdict {
        return before.valid;
    }
    assert_eq!(
        verdicts(&after),
        verdicts(&before),
        "{name}: a key's verdict differs"
    );
    assert_eq!(
        after
            .lost_writes
            .as_ref()
            .map(|l| (l.valid, l.lost, l.unexpected)),
        before
            .lost_writes
            .as_ref()
            .map(|l| (l.valid, l.lost, l.unexpected)),
        "{name}: the lost writes differ"
    );
    before.valid
}

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/porcupine")
}

#[test]
fn every_porcupine_history_round_trips_with_its_known_verdict() {
    let dir = testdata();
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).unwrap();
    let mut checked = 0;
    for line in expected.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (file, linearizable) = (fields[0], fields[2]);
        let (history, _) = read_history(&dir.join(file), None).unwrap();
        let verdict = assert_round_trips(&history, ExportFormat::Edn, file, Agree::Verdict);
        let expected = if linearizable == "true" {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        assert_eq!(verdict, expected, "{file}");
        checked += 1;
    }
    assert_eq!(checked, 108, "every listed file");
}

#[test]
fn the_harness_run_fixture_round_trips_through_edn_and_json_lines() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../harness/tests/fixtures/run-invalid/history.jsonl");
    let (history, _) = read_history(&path, None).unwrap();
    let events = history.events();
    assert!(events.iter().any(|e| e.process == Process::Nemesis));
    assert!(events.iter().any(|e| e.node.is_some()));
    for format in ExportFormat::ALL {
        let verdict = assert_round_trips(&history, format, "run-invalid", Agree::KeyByKey);
        assert_eq!(verdict, Verdict::Invalid);
    }
    // Knossos and Elle read keys from independent tuples.
    let text = edn::to_string(&history);
    assert!(text.starts_with("[{:index 0, :time "), "{text}");
    assert!(text.contains(":process :nemesis"), "{text}");
    assert!(!text.contains(":key "), "{text}");
}

/// A generated history, changed as `shape` says.
#[derive(Clone, Debug)]
struct Shape {
    workload: Workload,
    lists: bool,
    /// Spoils the result of the ok read at this place among them (mod their number).
    spoil: Option<usize>,
    /// Which operations lose their key: none, all, or those of every third process.
    keys: KeysKept,
    /// Nemesis events put in before the events at these places (mod the history's length).
    nemesis: Vec<usize>,
}

#[derive(Clone, Copy, Debug)]
enum KeysKept {
    All,
    None,
    Some,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        (any::<u64>(), 1usize..200, 1usize..4, 1usize..6),
        (0.0..0.2f64, 0.0..0.2f64, 1u64..6, 0u64..60),
        any::<bool>(),
        prop::option::of(any::<usize>()),
        prop_oneof![
            Just(KeysKept::All),
            Just(KeysKept::None),
            Just(KeysKept::Some)
        ],
        prop::collection::vec(any::<usize>(), 0..4),
    )
        .prop_map(
            |(
                (seed, operations, keys, processes),
                (info, fail, values, stretch),
                lists,
                spoil,
                kept,
                nemesis,
            )| {
                Shape {
                    workload: Workload {
                        operations,
                        keys,
                        processes,
                        info_rate: info,
                        fail_rate: fail,
                        values,
                        stretch,
                        seed,
                    },
                    lists,
                    spoil,
                    keys: kept,
                    nemesis,
                }
            },
        )
}

fn generated(shape: &Shape) -> History {
    let history = if shape.lists {
        list_append_history(&shape.workload)
    } else {
        cas_register_history(&shape.workload)
    };
    let mut events = history.events().to_vec();
    if let Some(spoil) = shape.spoil {
        let reads: Vec<usize> = (0..events.len())
            .filter(|&i| events[i].kind == EventType::Ok && events[i].f == "read")
            .collect();
        if !reads.is_empty() {
            let read = &mut events[reads[spoil % reads.len()]];
            read.value = Arc::new(match &*read.value {
                Value::Array(list) => {
                    Value::Array(list.iter().rev().cloned().chain([json!(-1)]).collect())
                }
                _ => json!(99),
            });
        }
    }
    if shape.lists {
        // The last read of each list is its final read, as a run marks it.
        let mut marked = std::collections::HashSet::new();
        for i in (0..events.len()).rev() {
            if events[i].kind == EventType::Ok
                && events[i].f == "read"
                && marked.insert(events[i].key.clone())
            {
                let process = events[i].process;
                events[i].final_read = true;
                if let Some(invoke) = events[..i].iter_mut().rev().find(|e| e.process == process) {
                    invoke.final_read = true;
                }
            }
        }
    }
    for event in &mut events {
        let drop_key = match (shape.keys, event.process) {
            (KeysKept::All, _) => false,
            (KeysKept::None, _) => true,
            (KeysKept::Some, Process::Client(id)) => id % 3 == 0,
            (KeysKept::Some, Process::Nemesis) => false,
        };
        if drop_key {
            event.key = None;
        }
    }
    for &place in &shape.nemesis {
        let at = place % (events.len() + 1);
        let time = events.get(at).map_or(0, |e| e.time);
        let f = if place % 2 == 0 {
            "start-partition"
        } else {
            "kill"
        };
        events.insert(
            at,
            Event {
                index: 0,
                time,
                process: Process::Nemesis,
                kind: EventType::Info,
                f: f.into(),
                key: None,
                value: Arc::new(json!({"n1": ["n2", "n3"], "why": "a \"quoted\" reason"})),
                error: None,
                node: None,
                final_read: false,
            },
        );
    }
    for (index, event) in events.iter_mut().enumerate() {
        event.index = index as u64;
    }
    History::new(events)
}

/// A history without keys whose every client value is a pair (and every CAS's a pair of
/// pairs) reads back from EDN as keyed: `jepsen.independent`'s convention cannot tell the two
/// apart. The only histories that do not round-trip.
fn looks_independent(events: &[Event]) -> bool {
    let pair = |value: &Value| value.as_array().is_some_and(|a| a.len() == 2);
    let mut clients = events
        .iter()
        .filter(|e| e.process != Process::Nemesis)
        .peekable();
    clients.peek().is_some()
        && clients.all(|e| {
            e.key.is_none()
                && ((e.kind != EventType::Invoke && e.value.is_null())
                    || (pair(&e.value)
                        && (e.f != "cas" || e.value[1].is_null() || pair(&e.value[1]))))
        })
}

/// Arbitrary text: quotes, backslashes, control characters, Unicode, things that look like
/// escapes or keywords.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9?!-]{0,8}",
        any::<String>(),
        Just("\\u0041 \\n \"".to_string()),
        Just(String::new()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |x| x.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn event() -> impl Strategy<Value = Event> {
    (
        (prop_oneof![4 => (0u64..1000).prop_map(Process::Client), 1 => Just(Process::Nemesis)]),
        prop_oneof![
            Just(EventType::Invoke),
            Just(EventType::Ok),
            Just(EventType::Fail),
            Just(EventType::Info)
        ],
        prop_oneof![Just("read".to_string()), Just("cas".to_string()), text()],
        prop::option::of(text()),
        json_value(),
        (
            prop::option::of(text()),
            prop::option::of(text()),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(process, kind, f, key, value, (error, node, final_read))| Event {
                index: 0,
                time: 0,
                process,
                kind,
                f: f.into(),
                key: key.map(Name::from),
                value: Arc::new(value),
                error: error.map(Name::from),
                node: node.map(Name::from),
                final_read,
            },
        )
}

/// Arbitrary events, with any times and increasing indices, gaps and all (a history whose
/// indices do not increase is refused when read).
fn events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec((event(), 1..=u64::from(u32::MAX), any::<u64>()), 0..12).prop_map(
        |events| {
            let mut index = 0;
            events
                .into_iter()
                .map(|(event, gap, time)| {
                    index += gap;
                    Event {
                        index,
                        // EDN integers are 64-bit signed.
                        time: time >> 1,
                        ..event
                    }
                })
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn generated_histories_round_trip_with_the_same_verdict(shape in shape()) {
        let history = generated(&shape);
        assert_round_trips(&history, ExportFormat::Edn, &format!("{shape:?}"), Agree::KeyByKey);
    }

    #[test]
    fn arbitrary_events_round_trip(events in events()) {
        prop_assume!(!looks_independent(&events));
        let history = History::new(events);
        for format in ExportFormat::ALL {
            let back = round_trip(&history, format);
            prop_assert_eq!(back.events(), history.events());
        }
    }
}
