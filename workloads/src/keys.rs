//! Key names, and which model checks which key: registers are `r0, r1, ...` (cas-register
//! model), lists are `l0, l1, ...` (list-append model, and the lost-writes checker).

use faultline_checker::{Event, History, ModelKind, Process};

use crate::error::Error;

/// The prefix of register keys.
pub const REGISTER_PREFIX: &str = "r";
/// The prefix of list keys.
pub const LIST_PREFIX: &str = "l";

/// The name of register key number `n`.
pub(crate) fn register_key(n: u64) -> String {
    format!("{REGISTER_PREFIX}{n}")
}

/// The name of list key number `n`.
pub(crate) fn list_key(n: u64) -> String {
    format!("{LIST_PREFIX}{n}")
}

/// The model that checks `key`: `cas-register` for `r<N>`, `list-append` for `l<N>`, `None`
/// for a key no workload here makes.
pub fn model_for_key(key: &str) -> Option<ModelKind> {
    let numbered = |prefix: &str| {
        key.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if numbered(REGISTER_PREFIX) {
        Some(ModelKind::CasRegister)
    } else if numbered(LIST_PREFIX) {
        Some(ModelKind::ListAppend)
    } else {
        None
    }
}

/// Splits a recorded history by model: the client events of register keys, and those of list
/// keys, each kept in order with their original `index` (so counterexamples name events of the
/// whole history). Models without events are left out; nemesis events are left out too (the
/// checkers skip them). A client event whose key no workload makes is an error.
pub fn split_by_model(history: &History) -> Result<Vec<(ModelKind, History)>, Error> {
    let mut registers: Vec<Event> = Vec::new();
    let mut lists: Vec<Event> = Vec::new();
    for event in history.events() {
        if event.process == Process::Nemesis {
            continue;
        }
        let model = event.key.as_deref().and_then(model_for_key);
        match model {
            Some(ModelKind::CasRegister) => registers.push(event.clone()),
            Some(ModelKind::ListAppend) => lists.push(event.clone()),
            _ => {
                return Err(Error::UnknownKey {
                    index: event.index,
                    key: event.key.clone(),
                });
            }
        }
    }
    Ok([
        (ModelKind::CasRegister, registers),
        (ModelKind::ListAppend, lists),
    ]
    .into_iter()
    .filter(|(_, events)| !events.is_empty())
    .map(|(model, events)| (model, History::new(events)))
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_model() {
        assert_eq!(
            model_for_key(&register_key(7)),
            Some(ModelKind::CasRegister)
        );
        assert_eq!(model_for_key(&list_key(0)), Some(ModelKind::ListAppend));
        for other in ["r", "l", "rx", "k7", "l1a", "", "R1"] {
            assert_eq!(model_for_key(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_history_splits_into_registers_and_lists_keeping_indexes() {
        let text = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"r0","value":3}
{"index":1,"time":2,"process":1,"type":"invoke","f":"append","key":"l0","value":1}
{"index":2,"time":3,"process":"nemesis","type":"info","f":"kill","value":["n1"]}
{"index":3,"time":4,"process":0,"type":"ok","f":"write","key":"r0","value":3}
{"index":4,"time":5,"process":1,"type":"ok","f":"append","key":"l0","value":1}
"#;
        let history = History::from_jsonl(text).unwrap();
        let split = split_by_model(&history).unwrap();
        let indexes = |h: &History| h.events().iter().map(|e| e.index).collect::<Vec<_>>();
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].0, ModelKind::CasRegister);
        assert_eq!(indexes(&split[0].1), [0, 3]);
        assert_eq!(split[1].0, ModelKind::ListAppend);
        assert_eq!(indexes(&split[1].1), [1, 4]);

        let registers_only = History::new(split[0].1.events().to_vec());
        assert_eq!(split_by_model(&registers_only).unwrap().len(), 1);
    }

    #[test]
    fn a_foreign_key_is_an_error_naming_the_event() {
        let text = r#"{"index":5,"time":1,"process":0,"type":"invoke","f":"read","key":"x"}"#;
        let error = split_by_model(&History::from_jsonl(text).unwrap()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "event 5: key \"x\" belongs to no workload (expected a key r<N> or l<N>)"
        );
        let text = r#"{"index":2,"time":1,"process":0,"type":"invoke","f":"read"}"#;
        let error = split_by_model(&History::from_jsonl(text).unwrap()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("event 2: an event without a key belongs")
        );
    }
}
