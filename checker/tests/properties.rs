//! Property tests of the linearizability checker on compare-and-set registers (list-append
//! has its own, in `list_append.rs`) against independent oracles:
//! - stateright's `LinearizabilityTester` (a plain recursive search) on small random histories;
//! - P-compositionality: checking each key alone agrees with checking all keys at once;
//! - histories generated from a real sequential run are always linearizable.

use faultline_checker::generate::{Workload, cas_register_history};
use faultline_checker::model::cas_register::{CasOp, CasRegister, CasRet};
use faultline_checker::{
    Budget, CheckOptions, Event, EventType, History, ModelKind, Process, Verdict, check_history,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

mod common;

use common::{End, Step, small_history, unlimited};

/// An operation on a register: what, on which key, what a read returns if it completes `ok`,
/// and whether a cas's comparison succeeds.
#[derive(Clone, Debug)]
struct CasSpec {
    key: &'static str,
    op: CasOp<Option<i64>>,
    read: Option<i64>,
    cas_matched: bool,
}

fn value() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![Just(None), (0i64..3).prop_map(Some)]
}

fn cas_spec(keys: &'static [&'static str]) -> impl Strategy<Value = CasSpec> {
    let op = prop_oneof![
        Just(CasOp::Read),
        (0i64..3).prop_map(|v| CasOp::Write(Some(v))),
        (value(), 0i64..3).prop_map(|(from, to)| CasOp::Cas { from, to: Some(to) }),
    ];
    (prop::sample::select(keys), op, value(), any::<bool>()).prop_map(
        |(key, op, read, cas_matched)| CasSpec {
            key,
            op,
            read,
            cas_matched,
        },
    )
}

fn json_value(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::from)
}

/// The steps as a Faultline history.
fn history(steps: &[Step<CasSpec>]) -> History {
    let events = steps
        .iter()
        .zip(0..)
        .map(|(step, index)| {
            let spec = &step.spec.op;
            let (f, argument) = match &spec.op {
                CasOp::Read => ("read", Value::Null),
                CasOp::Write(v) => ("write", json_value(*v)),
                CasOp::Cas { from, to } => ("cas", json!([json_value(*from), json_value(*to)])),
            };
            let value = match (step.kind, &spec.op) {
                (EventType::Ok, CasOp::Read) => json_value(spec.read),
                _ => argument,
            };
            let error = match (step.kind, step.spec.end) {
                (EventType::Fail, End::Ok) => Some("cas-mismatch"),
                (EventType::Fail, _) => Some("unavailable"),
                (EventType::Info, _) => Some("timeout"),
                _ => None,
            };
            Event {
                index,
                time: index,
                process: Process::Client(step.process),
                kind: step.kind,
                f: f.into(),
                key: Some(spec.key.into()),
                value: value.into(),
                error: error.map(Into::into),
                node: None,
                final_read: false,
            }
        })
        .collect();
    History::new(events)
}

/// A cas that completes `ok` but did not match is recorded as a failed cas-mismatch.
fn fix_cas_mismatches(mut steps: Vec<Step<CasSpec>>) -> Vec<Step<CasSpec>> {
    for step in &mut steps {
        let spec = &step.spec.op;
        let is_mismatch = matches!(spec.op, CasOp::Cas { .. }) && !spec.cas_matched;
        if is_mismatch && step.kind == EventType::Ok {
            step.kind = EventType::Fail;
        }
    }
    steps
}

/// stateright's verdict on the steps of one key.
fn oracle(steps: &[Step<CasSpec>]) -> bool {
    let mut tester = LinearizabilityTester::new(CasRegister { value: None });
    for step in steps {
        let spec = &step.spec.op;
        let ret = match (step.kind, &spec.op, step.spec.end) {
            // A plain fail did not happen: the operation is not in the history at all.
            (_, _, End::Fail) => continue,
            (EventType::Invoke, op, _) => {
                tester.on_invoke(step.process, op.clone()).unwrap();
                continue;
            }
            // Indeterminate: stays in flight.
            (EventType::Info, ..) => continue,
            (_, CasOp::Read, _) => CasRet::ReadOk(spec.read),
            (_, CasOp::Write(_), _) => CasRet::WriteOk,
            (_, CasOp::Cas { .. }, End::Ok) if spec.cas_matched => CasRet::CasOk,
            (_, CasOp::Cas { .. }, _) => CasRet::CasMismatch,
        };
        tester.on_return(step.process, ret).unwrap();
    }
    tester.is_consistent()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn verdicts_agree_with_staterights_linearizability_tester(
        steps in small_history(cas_spec(&["k"])).prop_map(fix_cas_mismatches)
    ) {
        let ours = check_history(&history(&steps), ModelKind::CasRegister, &unlimited()).unwrap();
        let expected = if oracle(&steps) { Verdict::Valid } else { Verdict::Invalid };
        prop_assert_eq!(ours.valid, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn checking_keys_apart_or_together_gives_the_same_verdict(
        steps in small_history(cas_spec(&["a", "b"])).prop_map(fix_cas_mismatches)
    ) {
        let history = history(&steps);
        let apart = check_history(&history, ModelKind::CasRegister, &unlimited()).unwrap();
        let whole = CheckOptions { whole: true, ..unlimited() };
        let together = check_history(&history, ModelKind::CasRegister, &whole).unwrap();
        prop_assert_eq!(apart.valid, together.valid);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn histories_from_a_sequential_run_are_linearizable(
        seed in any::<u64>(),
        operations in 1usize..400,
        keys in 1usize..4,
        processes in 1usize..8,
        info_rate in 0.0f64..0.3,
        fail_rate in 0.0f64..0.2,
        values in 1u64..6,
        stretch in 0u64..300,
    ) {
        let workload = Workload { operations, keys, processes, info_rate, fail_rate, values, stretch, seed };
        let history = cas_register_history(&workload);
        let options = CheckOptions {
            budget: Budget { after_invalid: None, ..Budget::default() },
            ..CheckOptions::default()
        };
        let result = check_history(&history, ModelKind::CasRegister, &options).unwrap();
        prop_assert_eq!(result.valid, Verdict::Valid, "{:?}", result.counterexamples);
    }
}
