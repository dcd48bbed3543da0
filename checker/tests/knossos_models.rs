//! Knossos's models (mutex, multi-register, set, unordered and FIFO queues):
//! - the checker's verdicts agree with stateright's `LinearizabilityTester` on the same model,
//!   on small random histories (which come out valid and invalid alike: see
//!   `random_histories_are_both_valid_and_invalid`);
//! - small histories in EDN, as Knossos's own tests and Jepsen write them, get their known
//!   verdicts, with the model given or inferred from the operations.

mod common;

use std::collections::VecDeque;
use std::fmt::Debug;

use common::{End, Step, small_history, unlimited};
use faultline_checker::model::fifo_queue::FifoQueue;
use faultline_checker::model::multi_register::{MicroOp, MultiRegister, Txn, TxnRet};
use faultline_checker::model::mutex::{Mutex, MutexOp, MutexRet};
use faultline_checker::model::set::{Set, SetOp, SetRet};
use faultline_checker::model::unordered_queue::{QueueOp, QueueRet, UnorderedQueue};
use faultline_checker::{
    CheckOptions, Event, EventType, Format, History, ModelKind, Process, Verdict, check,
    check_history,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Value, json};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

/// One operation of a small random history on one object: how the history records it, and
/// what it is to the model the oracle checks.
trait Case: Clone + Debug {
    /// The model the oracle checks with.
    type Model: SequentialSpec<Op: Clone + Debug, Ret: Clone + Debug + PartialEq> + Clone;
    /// Its function.
    fn f(&self) -> &'static str;
    /// Its invocation's value.
    fn argument(&self) -> Value;
    /// Its `ok` completion's value.
    fn result(&self) -> Value;
    /// The model's operation.
    fn op(&self) -> <Self::Model as SequentialSpec>::Op;
    /// What the model's operation returned, if it completed `ok`.
    fn ret(&self) -> <Self::Model as SequentialSpec>::Ret;
}

/// The steps as a Faultline history of key "k".
fn history<C: Case>(steps: &[Step<C>]) -> History {
    let events = steps
        .iter()
        .zip(0..)
        .map(|(step, index)| {
            let case = &step.spec.op;
            let (value, error) = match step.kind {
                EventType::Ok => (case.result(), None),
                EventType::Fail => (case.argument(), Some("unavailable")),
                EventType::Info => (case.argument(), Some("timeout")),
                EventType::Invoke => (case.argument(), None),
            };
            Event {
                index,
                time: index,
                process: Process::Client(step.process),
                kind: step.kind,
                f: case.f().into(),
                key: Some("k".into()),
                value: value.into(),
                error: error.map(Into::into),
                node: None,
                final_read: false,
            }
        })
        .collect();
    History::new(events)
}

/// stateright's verdict on the steps, starting from `init`.
fn oracle<C: Case>(steps: &[Step<C>], init: C::Model) -> bool {
    let mut tester = LinearizabilityTester::new(init);
    for step in steps {
        match (step.kind, step.spec.end) {
            // A plain fail did not happen: the operation is not in the history at all.
            (_, End::Fail) => {}
            (EventType::Invoke, _) => {
                tester.on_invoke(step.process, step.spec.op.op()).unwrap();
            }
            // Indeterminate: stays in flight (and may take effect, as `invoke` says).
            (EventType::Info, _) => {}
            _ => {
                tester.on_return(step.process, step.spec.op.ret()).unwrap();
            }
        }
    }
    tester.is_consistent()
}

/// Our verdict with `model`, and stateright's from `init`.
fn verdicts<C: Case>(steps: &[Step<C>], model: ModelKind, init: C::Model) -> (Verdict, Verdict) {
    let ours = check_history(&history(steps), model, &unlimited())
        .unwrap()
        .valid;
    let expected = if oracle(steps, init) {
        Verdict::Valid
    } else {
        Verdict::Invalid
    };
    (ours, expected)
}

fn agree<C: Case>(
    steps: &[Step<C>],
    model: ModelKind,
    init: C::Model,
) -> Result<(), TestCaseError> {
    let (ours, expected) = verdicts(steps, model, init);
    prop_assert_eq!(ours, expected);
    Ok(())
}

fn json_value(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::from)
}

/// A small value, or now and then `null`.
fn value() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![1 => Just(None), 4 => (0i64..3).prop_map(Some)]
}

// The mutex.

#[derive(Clone, Debug)]
struct MutexCase(MutexOp);

impl Case for MutexCase {
    type Model = Mutex;

    fn f(&self) -> &'static str {
        match self.0 {
            MutexOp::Acquire => "acquire",
            MutexOp::Release => "release",
        }
    }

    fn argument(&self) -> Value {
        Value::Null
    }

    fn result(&self) -> Value {
        Value::Null
    }

    fn op(&self) -> MutexOp {
        self.0.clone()
    }

    fn ret(&self) -> MutexRet {
        MutexRet::Ok
    }
}

fn mutex_history() -> impl Strategy<Value = Vec<Step<MutexCase>>> {
    small_history(prop_oneof![
        Just(MutexCase(MutexOp::Acquire)),
        Just(MutexCase(MutexOp::Release)),
    ])
}

// The multi-register: registers "x" and "y".

const REGISTERS: [&str; 2] = ["x", "y"];

/// A micro-operation: a write of a value, or a read and what it returned (`None`: `null`,
/// which constrains nothing).
#[derive(Clone, Debug)]
enum Micro {
    Write(usize, i64),
    Read(usize, Option<i64>),
}

#[derive(Clone, Debug)]
struct TxnCase(Vec<Micro>);

impl TxnCase {
    /// The txn as the history has it; the reads' results if `completed`, else `null`s.
    fn value(&self, completed: bool) -> Value {
        let micro = |micro: &Micro| match *micro {
            Micro::Write(r, v) => json!(["write", REGISTERS[r], v]),
            Micro::Read(r, read) if completed => json!(["read", REGISTERS[r], json_value(read)]),
            Micro::Read(r, _) => json!(["read", REGISTERS[r], null]),
        };
        Value::Array(self.0.iter().map(micro).collect())
    }
}

impl Case for TxnCase {
    type Model = MultiRegister<Option<i64>>;

    fn f(&self) -> &'static str {
        "txn"
    }

    fn argument(&self) -> Value {
        self.value(false)
    }

    fn result(&self) -> Value {
        self.value(true)
    }

    fn op(&self) -> Txn<Option<i64>> {
        let ops = (self.0.iter())
            .map(|micro| match *micro {
                Micro::Write(r, v) => MicroOp::Write(r, Some(v)),
                Micro::Read(r, _) => MicroOp::Read(r),
            })
            .collect();
        Txn { ops }
    }

    fn ret(&self) -> TxnRet<Option<i64>> {
        let reads = (self.0.iter())
            .map(|micro| match *micro {
                Micro::Write(..) => None,
                Micro::Read(_, read) => read.map(Some),
            })
            .collect();
        TxnRet { reads }
    }
}

fn txn_history() -> impl Strategy<Value = Vec<Step<TxnCase>>> {
    let micro = prop_oneof![
        (0..REGISTERS.len(), 0i64..2).prop_map(|(r, v)| Micro::Write(r, v)),
        (0..REGISTERS.len(), prop::option::weighted(0.8, 0i64..2))
            .prop_map(|(r, read)| Micro::Read(r, read)),
    ];
    small_history(prop::collection::vec(micro, 1..=3).prop_map(TxnCase))
}

fn registers_at_null() -> MultiRegister<Option<i64>> {
    MultiRegister {
        values: vec![None; REGISTERS.len()],
    }
}

// The set.

#[derive(Clone, Debug)]
enum SetCase {
    Add(i64),
    /// What the read returned, in the order returned.
    Read(Vec<i64>),
}

impl Case for SetCase {
    type Model = Set<i64>;

    fn f(&self) -> &'static str {
        match self {
            SetCase::Add(_) => "add",
            SetCase::Read(_) => "read",
        }
    }

    fn argument(&self) -> Value {
        match self {
            SetCase::Add(element) => json!(element),
            SetCase::Read(_) => Value::Null,
        }
    }

    fn result(&self) -> Value {
        match self {
            SetCase::Add(element) => json!(element),
            SetCase::Read(elements) => json!(elements),
        }
    }

    fn op(&self) -> SetOp<i64> {
        match self {
            SetCase::Add(element) => SetOp::Add(*element),
            SetCase::Read(_) => SetOp::Read,
        }
    }

    fn ret(&self) -> SetRet<i64> {
        match self {
            SetCase::Add(_) => SetRet::AddOk,
            SetCase::Read(elements) => {
                let mut sorted = elements.clone();
                sorted.sort();
                SetRet::ReadOk(sorted)
            }
        }
    }
}

fn set_history() -> impl Strategy<Value = Vec<Step<SetCase>>> {
    // A read returns a subset of {0, 1, 2}, largest first (the order does not matter), and
    // now and then its first element twice.
    let read = (0u8..8, prop::bool::weighted(0.05)).prop_map(|(mask, twice)| {
        let mut elements: Vec<i64> = (0..3).rev().filter(|e| mask & (1 << e) != 0).collect();
        if twice && let Some(&first) = elements.first() {
            elements.push(first);
        }
        SetCase::Read(elements)
    });
    small_history(prop_oneof![(0i64..3).prop_map(SetCase::Add), read])
}

// The queues (both: the cases are the same, the models differ).

#[derive(Clone, Debug)]
enum QueueCase {
    Enqueue(Option<i64>),
    /// What the dequeue returned.
    Dequeue(Option<i64>),
}

impl QueueCase {
    fn f(&self) -> &'static str {
        match self {
            QueueCase::Enqueue(_) => "enqueue",
            QueueCase::Dequeue(_) => "dequeue",
        }
    }

    fn argument(&self) -> Value {
        match self {
            QueueCase::Enqueue(value) => json_value(*value),
            QueueCase::Dequeue(_) => Value::Null,
        }
    }

    fn result(&self) -> Value {
        match self {
            QueueCase::Enqueue(value) | QueueCase::Dequeue(value) => json_value(*value),
        }
    }

    fn op(&self) -> QueueOp<Option<i64>> {
        match self {
            QueueCase::Enqueue(value) => QueueOp::Enqueue(*value),
            QueueCase::Dequeue(_) => QueueOp::Dequeue,
        }
    }

    fn ret(&self) -> QueueRet<Option<i64>> {
        match self {
            QueueCase::Enqueue(_) => QueueRet::EnqueueOk,
            QueueCase::Dequeue(value) => QueueRet::DequeueOk(*value),
        }
    }
}

/// Generates `Case` for a queue case checked with `$model`, forwarding to [`QueueCase`].
macro_rules! queue_case {
    ($name:ident, $model:ty) => {
        #[derive(Clone, Debug)]
        struct $name(QueueCase);

        impl Case for $name {
            type Model = $model;

            fn f(&self) -> &'static str {
                self.0.f()
            }

            fn argument(&self) -> Value {
                self.0.argument()
            }

            fn result(&self) -> Value {
                self.0.result()
            }

            fn op(&self) -> QueueOp<Option<i64>> {
                self.0.op()
            }

            fn ret(&self) -> QueueRet<Option<i64>> {
                self.0.ret()
            }
        }
    };
}

queue_case!(UnorderedCase, UnorderedQueue<Option<i64>>);
queue_case!(FifoCase, FifoQueue<Option<i64>>);

fn queue_case() -> impl Strategy<Value = QueueCase> {
    prop_oneof![
        value().prop_map(QueueCase::Enqueue),
        value().prop_map(QueueCase::Dequeue),
    ]
}

fn unordered_history() -> impl Strategy<Value = Vec<Step<UnorderedCase>>> {
    small_history(queue_case().prop_map(UnorderedCase))
}

fn fifo_history() -> impl Strategy<Value = Vec<Step<FifoCase>>> {
    small_history(queue_case().prop_map(FifoCase))
}

fn empty_fifo() -> FifoQueue<Option<i64>> {
    FifoQueue {
        queue: VecDeque::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn mutex_verdicts_agree_with_staterights(steps in mutex_history()) {
        agree(&steps, ModelKind::Mutex, Mutex::default())?;
    }

    #[test]
    fn multi_register_verdicts_agree_with_staterights(steps in txn_history()) {
        agree(&steps, ModelKind::MultiRegister, registers_at_null())?;
    }

    #[test]
    fn set_verdicts_agree_with_staterights(steps in set_history()) {
        agree(&steps, ModelKind::Set, Set::new(vec![]))?;
    }

    #[test]
    fn unordered_queue_verdicts_agree_with_staterights(steps in unordered_history()) {
        // stateright lets a dequeue with an unknown outcome take a value out; the checker
        // leaves it out, which must never change a verdict.
        agree(&steps, ModelKind::UnorderedQueue, UnorderedQueue::new(vec![]))?;
    }

    #[test]
    fn fifo_queue_verdicts_agree_with_staterights(steps in fifo_history()) {
        agree(&steps, ModelKind::FifoQueue, empty_fifo())?;
    }
}

/// How many of `count` histories from `strategy` are valid, by the oracle (and by us: they
/// must agree), as a fraction.
fn valid_fraction<C: Case>(
    strategy: impl Strategy<Value = Vec<Step<C>>>,
    model: ModelKind,
    init: C::Model,
) -> f64 {
    const COUNT: usize = 400;
    let mut runner = TestRunner::deterministic();
    let mut valid = 0;
    for _ in 0..COUNT {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        let (ours, expected) = verdicts(&steps, model, init.clone());
        assert_eq!(ours, expected, "{steps:?}");
        valid += usize::from(ours == Verdict::Valid);
    }
    valid as f64 / COUNT as f64
}

#[test]
fn random_histories_are_both_valid_and_invalid() {
    // Agreement means little if nearly every history has the same verdict.
    let fractions = [
        (
            "mutex",
            valid_fraction(mutex_history(), ModelKind::Mutex, Mutex::default()),
        ),
        (
            "multi-register",
            valid_fraction(txn_history(), ModelKind::MultiRegister, registers_at_null()),
        ),
        (
            "set",
            valid_fraction(set_history(), ModelKind::Set, Set::new(vec![])),
        ),
        (
            "unordered-queue",
            valid_fraction(
                unordered_history(),
                ModelKind::UnorderedQueue,
                UnorderedQueue::new(vec![]),
            ),
        ),
        (
            "fifo-queue",
            valid_fraction(fifo_history(), ModelKind::FifoQueue, empty_fifo()),
        ),
    ];
    for (model, valid) in fractions {
        assert!(
            (0.15..=0.85).contains(&valid),
            "{model}: {valid:.2} of the random histories are valid"
        );
    }
}

// Histories in EDN, as Knossos's tests and Jepsen's histories write them.

fn edn(text: &str) -> History {
    Format::Edn.parse(text).unwrap()
}

/// The verdict with `model`, and with the model inferred (which must be `model`).
fn edn_verdict(text: &str, model: ModelKind) -> Verdict {
    let history = edn(text);
    let given = check_history(&history, model, &CheckOptions::default()).unwrap();
    let inferred = check(&history, None, &CheckOptions::default()).unwrap();
    assert_eq!(inferred.linearizability.len(), 1);
    assert_eq!(inferred.linearizability[0].model, model);
    assert_eq!(inferred.valid, given.valid);
    given.valid
}

#[test]
fn an_edn_mutex_history_held_twice_at_once_is_not_linearizable() {
    let valid = r#"
[{:process 0, :type :invoke, :f :acquire, :value nil}
 {:process 0, :type :ok, :f :acquire, :value nil}
 {:process 1, :type :invoke, :f :acquire, :value nil}
 {:process 1, :type :fail, :f :acquire, :value nil}
 {:process 1, :type :invoke, :f :acquire, :value nil}
 {:process 0, :type :invoke, :f :release, :value nil}
 {:process 0, :type :ok, :f :release, :value nil}
 {:process 1, :type :ok, :f :acquire, :value nil}
 {:process 2, :type :invoke, :f :release, :value nil}
 {:process 2, :type :info, :f :release, :value nil}]"#;
    assert_eq!(edn_verdict(valid, ModelKind::Mutex), Verdict::Valid);

    // Process 1 acquires while process 0 holds the lock.
    let invalid = r#"
[{:process 0, :type :invoke, :f :acquire, :value nil}
 {:process 0, :type :ok, :f :acquire, :value nil}
 {:process 1, :type :invoke, :f :acquire, :value nil}
 {:process 1, :type :ok, :f :acquire, :value nil}
 {:process 0, :type :invoke, :f :release, :value nil}
 {:process 0, :type :ok, :f :release, :value nil}]"#;
    assert_eq!(edn_verdict(invalid, ModelKind::Mutex), Verdict::Invalid);
}

#[test]
fn an_edn_multi_register_history_with_a_torn_read_is_not_linearizable() {
    // Every txn has two micro-operations, as a jepsen.independent history's [key value]
    // tuples do: it is still read as transactions.
    let history = |x: u32, y: u32| {
        format!(
            r#"
[{{:process 0, :type :invoke, :f :txn, :value [[:write :x 1] [:write :y 1]]}}
 {{:process 0, :type :ok, :f :txn, :value [[:write :x 1] [:write :y 1]]}}
 {{:process 1, :type :invoke, :f :txn, :value [[:read :x nil] [:read :y nil]]}}
 {{:process 0, :type :invoke, :f :txn, :value [[:write :x 2] [:write :y 2]]}}
 {{:process 1, :type :ok, :f :txn, :value [[:read :x {x}] [:read :y {y}]]}}
 {{:process 0, :type :ok, :f :txn, :value [[:write :x 2] [:write :y 2]]}}]"#
        )
    };
    assert_eq!(
        edn_verdict(&history(1, 1), ModelKind::MultiRegister),
        Verdict::Valid
    );
    assert_eq!(
        edn_verdict(&history(2, 2), ModelKind::MultiRegister),
        Verdict::Valid
    );
    // x from the second write, y from the first: no single instant.
    assert_eq!(
        edn_verdict(&history(2, 1), ModelKind::MultiRegister),
        Verdict::Invalid
    );
}

#[test]
fn an_edn_set_history_that_loses_an_element_is_not_linearizable() {
    let mut history = r#"
{:process 0, :type :invoke, :f :add, :value 1}
{:process 0, :type :ok, :f :add, :value 1}
{:process 1, :type :invoke, :f :add, :value 2}
{:process 2, :type :invoke, :f :read, :value nil}
{:process 2, :type :ok, :f :read, :value #{2 1}}
{:process 1, :type :info, :f :add, :value 2}
{:process 2, :type :invoke, :f :read, :value nil}
{:process 2, :type :ok, :f :read, :value nil}
"#
    .to_string();
    assert_eq!(edn_verdict(&history, ModelKind::Set), Verdict::Valid);

    // 2 was read, then is gone.
    history.push_str(
        "{:process 2, :type :invoke, :f :read, :value nil}\n\
         {:process 2, :type :ok, :f :read, :value #{1}}\n",
    );
    assert_eq!(edn_verdict(&history, ModelKind::Set), Verdict::Invalid);
}

#[test]
fn an_edn_queue_history_out_of_order_is_unordered_but_not_fifo() {
    let history = |dequeued: [u32; 2]| {
        format!(
            r#"
{{:process 0, :type :invoke, :f :enqueue, :value 1}}
{{:process 0, :type :ok, :f :enqueue, :value 1}}
{{:process 0, :type :invoke, :f :enqueue, :value 2}}
{{:process 0, :type :ok, :f :enqueue, :value 2}}
{{:process 1, :type :invoke, :f :dequeue, :value nil}}
{{:process 1, :type :ok, :f :dequeue, :value {}}}
{{:process 1, :type :invoke, :f :dequeue, :value nil}}
{{:process 1, :type :ok, :f :dequeue, :value {}}}
{{:process 1, :type :invoke, :f :dequeue, :value nil}}
{{:process 1, :type :fail, :f :dequeue, :value nil, :error :empty}}"#,
            dequeued[0], dequeued[1]
        )
    };
    // Inferred: unordered.
    assert_eq!(
        edn_verdict(&history([2, 1]), ModelKind::UnorderedQueue),
        Verdict::Valid
    );
    let fifo = |text: &str| {
        check_history(&edn(text), ModelKind::FifoQueue, &CheckOptions::default())
            .unwrap()
            .valid
    };
    assert_eq!(fifo(&history([1, 2])), Verdict::Valid);
    assert_eq!(fifo(&history([2, 1])), Verdict::Invalid);
    // 1 came out twice.
    assert_eq!(
        edn_verdict(&history([1, 1]), ModelKind::UnorderedQueue),
        Verdict::Invalid
    );
}
