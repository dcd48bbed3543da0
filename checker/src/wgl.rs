//! The Wing–Gong–Lowe search for one partition: is there an order of the operations that
//! respects real time and that the model accepts?
//!
//! As in Lowe's "Testing for linearizability" and Porcupine's `checker.go`: the call and return
//! entries of all operations sit in a doubly-linked list in time order. The operations that may
//! come next are the calls before the first return. Linearizing one lifts its two entries out
//! of the list; backtracking puts them back. A cache of every configuration entered (the set of
//! linearized operations, and the model state) stops the search from exploring the same
//! configuration twice. The search is a loop with an explicit stack, never recursion.
//!
//! An operation whose completion is unknown has no return entry: it may be linearized at any
//! point after its call, or never. The search succeeds once every operation that did complete
//! is linearized.
//!
//! Three prunings go beyond Porcupine, each keeping the search complete: a read-only
//! operation that fits next is linearized without trying alternatives (see
//! [`Completion::read_only`]); the read-only candidates are tried before the others, so that
//! one that fits is never left behind while another operation changes the state; and an
//! operation with an unknown result is not linearized where it would change nothing (it may
//! as well never happen).

mod cache;
mod entry_list;

use std::hash::Hash;

use stateright::semantics::SequentialSpec;

use crate::budget::{Deadline, Stop};
use cache::{Cache, Linearized};
use entry_list::{Entry, EntryList};

/// An operation as the search sees it: a model operation, when it was called, and what it
/// returned and when, if that is known.
pub struct ModelOperation<M: SequentialSpec> {
    /// The operation on the model.
    pub op: M::Op,
    /// When it was invoked.
    pub call: u64,
    /// Its result and return time; `None` if unknown: then it may take effect at any time
    /// after `call`, or not at all.
    pub completion: Option<Completion<M::Ret>>,
}

/// The known end of an operation.
pub struct Completion<R> {
    /// What it returned.
    pub ret: R,
    /// When it returned (not before its call).
    pub time: u64,
    /// Whether checking this result never changes the state (`is_valid_step` leaves it as
    /// it was, accepted or not): true of a read, or of a compare-and-set that did not match.
    /// Such an operation is tried in place, without a copy of the state; and when it can be
    /// linearized next, it is, without trying alternatives, since any linearization can be
    /// reordered to put it there. `false` is always safe.
    pub read_only: bool,
}

/// The verdict of the search on one partition.
pub enum SearchResult<M> {
    /// A linearization exists.
    Linearizable,
    /// None exists; where the search got furthest.
    NotLinearizable(Stuck<M>),
    /// The search stopped first, for this reason.
    Stopped(Stop),
}

/// The deepest point the search reached in a non-linearizable partition.
pub struct Stuck<M> {
    /// The longest linearizable prefix found: operation indices in linearization order.
    pub prefix: Vec<usize>,
    /// The model state after the prefix.
    pub state: M,
    /// The operations with known results that real time allowed next (none of which the
    /// model accepted there; operations with unknown results may always never happen, so
    /// they explain nothing).
    pub candidates: Vec<usize>,
}

/// How far a search got in the steps it was given.
pub enum Progress<'a, M: SequentialSpec> {
    /// It ended (or the deadline passed).
    Done(SearchResult<M>),
    /// It needs more steps.
    Paused(Box<Search<'a, M>>),
}

/// How many steps pass between looks at the clock.
const STEPS_BETWEEN_CLOCK_CHECKS: u64 = 1024;

/// A search in progress on one partition; it runs a given number of steps at a time, so that
/// many partitions can share the cores fairly.
pub struct Search<'a, M: SequentialSpec> {
    ops: &'a [ModelOperation<M>],
    list: EntryList,
    linearized: Linearized,
    cache: Cache<M>,
    /// The linearized calls, each with the model state from before it and whether it was
    /// forced (read-only: when it is undone there is no alternative to try).
    stack: Vec<(usize, M, bool)>,
    state: M,
    /// How many operations with a known completion are not linearized yet.
    completed_left: usize,
    deepest: Stuck<M>,
    /// How much of the stack has stayed in place since `deepest` was recorded: only the rest
    /// needs copying when a deeper point is found.
    unchanged: usize,
    /// The entry to consider next.
    entry: usize,
    /// Whether the search is in its first pass over the candidates of a configuration, which
    /// tries the read-only ones only; the second pass tries the others.
    read_only_pass: bool,
}

impl<'a, M> Search<'a, M>
where
    M: SequentialSpec + Clone + Eq + Hash,
{
    /// A search for a linearization of `ops` starting from `init`.
    pub fn new(init: &M, ops: &'a [ModelOperation<M>]) -> Self {
        let list = EntryList::new(ops);
        let deepest = Stuck {
            prefix: Vec::new(),
            state: init.clone(),
            candidates: list.candidates(),
        };
        Search {
            ops,
            entry: list.first(),
            list,
            linearized: Linearized::new(ops.len()),
            cache: Cache::new(ops.len()),
            stack: Vec::new(),
            state: init.clone(),
            completed_left: ops.iter().filter(|op| op.completion.is_some()).count(),
            deepest,
            unchanged: 0,
            read_only_pass: true,
        }
    }

    /// Runs up to `steps` steps, looking at the deadline every 1024 steps: at least that many
    /// run whatever the deadline, so a small partition is always decided.
    pub fn run(mut self: Box<Self>, steps: u64, deadline: &Deadline) -> Progress<'a, M> {
        let mut left = steps;
        while left > 0 {
            let chunk = left.min(STEPS_BETWEEN_CLOCK_CHECKS);
            left -= chunk;
            match self.steps(chunk) {
                Some(true) => return Progress::Done(SearchResult::Linearizable),
                Some(false) => return Progress::Done(SearchResult::NotLinearizable(self.deepest)),
                None if deadline.has_passed() => {
                    return Progress::Done(SearchResult::Stopped(deadline.cause()));
                }
                None => {}
            }
        }
        Progress::Paused(self)
    }

    /// Runs up to `steps` steps of the search; whether a linearization exists, if that is
    /// known by then.
    fn steps(&mut self, steps: u64) -> Option<bool> {
        for _ in 0..steps {
            if self.completed_left == 0 {
                return Some(true);
            }
            let entry = self.entry;
            let Entry::Call { op: index, .. } = self.list.entries[entry] else {
                if self.read_only_pass {
                    // No read-only candidate fits: now the others.
                    self.read_only_pass = false;
                    self.entry = self.list.first();
                    continue;
                }
                // A return (or the end): the operation returning here was not linearized, and
                // now nothing can come before it, so this branch is dead.
                if !self.backtrack() {
                    return Some(false);
                }
                continue;
            };
            let op = &self.ops[index];
            let is_read_only = op.completion.as_ref().is_some_and(|c| c.read_only);
            if is_read_only != self.read_only_pass {
                // Not for this pass (a read-only one in the second pass was tried in the
                // first, in vain: the state is the same).
                self.entry = self.list.next[entry];
                continue;
            }
            let (next, read_only) = match &op.completion {
                Some(completion) if completion.read_only => {
                    let accepted = self.state.is_valid_step(&op.op, &completion.ret);
                    (accepted.then(|| self.state.clone()), true)
                }
                Some(completion) => {
                    let mut next = self.state.clone();
                    let accepted = next.is_valid_step(&op.op, &completion.ret);
                    (accepted.then_some(next), false)
                }
                None => {
                    // Taking effect without changing the state is no better than never taking
                    // effect, which is always allowed (and blocks nothing: no return entry).
                    let mut next = self.state.clone();
                    next.invoke(&op.op);
                    ((next != self.state).then_some(next), false)
                }
            };
            let Some(next) = next else {
                self.entry = self.list.next[entry];
                continue;
            };
            self.linearized.insert(index);
            if self.cache.insert(&self.linearized, &next) {
                let previous = std::mem::replace(&mut self.state, next);
                self.stack.push((entry, previous, read_only));
                self.list.lift(entry);
                if op.completion.is_some() {
                    self.completed_left -= 1;
                }
                self.entry = self.list.first();
                self.read_only_pass = true;
            } else {
                self.linearized.remove(index);
                // Seen before, in vain; for a read-only operation that dooms this
                // configuration too.
                self.entry = if read_only {
                    self.read_only_pass = false;
                    self.list.tail()
                } else {
                    self.list.next[entry]
                };
            }
        }
        None
    }

    /// Undoes the latest linearization; false if there is none (no linearization exists).
    fn backtrack(&mut self) -> bool {
        if self.stack.len() > self.deepest.prefix.len() {
            self.record_deepest();
        }
        let Some((call, previous, forced)) = self.stack.pop() else {
            return false;
        };
        self.unchanged = self.unchanged.min(self.stack.len());
        let index = self.list.op(call);
        self.state = previous;
        self.linearized.remove(index);
        self.list.unlift(call);
        if self.ops[index].completion.is_some() {
            self.completed_left += 1;
        }
        // The configuration the search is back in had its read-only pass (or it would not
        // have gone on to a non-read-only operation).
        self.read_only_pass = false;
        self.entry = if forced {
            self.list.tail()
        } else {
            self.list.next[call]
        };
        true
    }

    fn record_deepest(&mut self) {
        let deepest = &mut self.deepest;
        deepest.prefix.truncate(self.unchanged);
        let list = &self.list;
        deepest.prefix.extend(
            self.stack[self.unchanged..]
                .iter()
                .map(|&(call, _, _)| list.op(call)),
        );
        deepest.state = self.state.clone();
        deepest.candidates = list.candidates();
        self.unchanged = self.stack.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;
    use crate::model::cas_register::{CasOp, CasRegister, CasRet};

    type Op = ModelOperation<CasRegister<i32>>;

    fn ok(op: CasOp<i32>, ret: CasRet<i32>, call: u64, time: u64) -> Op {
        let read_only = matches!(ret, CasRet::ReadOk(_));
        ModelOperation {
            op,
            call,
            completion: Some(Completion {
                ret,
                time,
                read_only,
            }),
        }
    }

    fn unknown(op: CasOp<i32>, call: u64) -> Op {
        ModelOperation {
            op,
            call,
            completion: None,
        }
    }

    fn search(ops: &[Op], deadline: &Deadline) -> SearchResult<CasRegister<i32>> {
        match Box::new(Search::new(&CasRegister { value: 0 }, ops)).run(u64::MAX, deadline) {
            Progress::Done(result) => result,
            Progress::Paused(_) => panic!("an unlimited run ends"),
        }
    }

    fn check(ops: &[Op]) -> SearchResult<CasRegister<i32>> {
        search(ops, &Deadline::new(&Budget::UNLIMITED))
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let ops = [
            ok(CasOp::Write(1), CasRet::WriteOk, 0, 10),
            ok(CasOp::Read, CasRet::ReadOk(1), 1, 5),
            ok(CasOp::Read, CasRet::ReadOk(0), 2, 4),
        ];
        assert!(matches!(check(&ops), SearchResult::Linearizable));
    }

    #[test]
    fn real_time_order_is_respected() {
        // The write returned before the read was called, so the read must see it.
        let ops = [
            ok(CasOp::Write(1), CasRet::WriteOk, 0, 1),
            ok(CasOp::Read, CasRet::ReadOk(0), 2, 3),
        ];
        let SearchResult::NotLinearizable(stuck) = check(&ops) else {
            panic!("a stale read after a completed write is not linearizable");
        };
        assert_eq!(stuck.prefix, vec![0]);
        assert_eq!(stuck.state, CasRegister { value: 1 });
        assert_eq!(stuck.candidates, vec![1]);
    }

    #[test]
    fn a_dead_end_names_only_operations_with_known_results() {
        let ops = [
            ok(CasOp::Write(1), CasRet::WriteOk, 0, 1),
            unknown(CasOp::Cas { from: 5, to: 6 }, 0),
            ok(CasOp::Read, CasRet::ReadOk(0), 2, 3),
        ];
        let SearchResult::NotLinearizable(stuck) = check(&ops) else {
            panic!("a stale read after a completed write is not linearizable");
        };
        assert_eq!(stuck.prefix, vec![0]);
        assert_eq!(stuck.candidates, vec![2]);
    }

    #[test]
    fn unknown_operations_may_take_effect_late_or_never() {
        let late = [
            unknown(CasOp::Write(7), 0),
            ok(CasOp::Read, CasRet::ReadOk(0), 1, 2),
            ok(CasOp::Read, CasRet::ReadOk(7), 3, 4),
        ];
        assert!(matches!(check(&late), SearchResult::Linearizable));
        let never = [
            unknown(CasOp::Cas { from: 0, to: 7 }, 0),
            ok(CasOp::Read, CasRet::ReadOk(0), 1, 2),
        ];
        assert!(matches!(check(&never), SearchResult::Linearizable));
        let before_call = [
            ok(CasOp::Read, CasRet::ReadOk(7), 0, 1),
            unknown(CasOp::Write(7), 2),
        ];
        assert!(matches!(
            check(&before_call),
            SearchResult::NotLinearizable(_)
        ));
    }

    #[test]
    fn a_past_deadline_stops_a_long_search_but_not_a_short_one() {
        // 24 concurrent writes and a read of a value nobody wrote: the search must try every
        // subset of the writes before it can say no.
        let mut ops: Vec<Op> = (0..24)
            .map(|i| ok(CasOp::Write(i), CasRet::WriteOk, 0, 100))
            .collect();
        ops.push(ok(CasOp::Read, CasRet::ReadOk(-1), 1, 99));
        let past = Deadline::new(&Budget {
            timeout: Some(std::time::Duration::ZERO),
            after_invalid: None,
            memory: None,
        });
        assert!(matches!(
            search(&ops, &past),
            SearchResult::Stopped(Stop::Timeout)
        ));
        let short = [ok(CasOp::Write(1), CasRet::WriteOk, 0, 1)];
        assert!(matches!(search(&short, &past), SearchResult::Linearizable));
    }

    #[test]
    fn a_read_that_fits_goes_first_even_behind_other_candidates() {
        // The write of 1 returns before the read of 1 is called, but twenty writes called
        // earlier overlap both, and come first in time order. Tried first, each of them would
        // doom the read, in every one of the 2^20 orders and subsets the search would go
        // through before trying the read.
        let mut ops = vec![ok(CasOp::Write(1), CasRet::WriteOk, 0, 10)];
        ops.extend((0..20).map(|i| ok(CasOp::Write(10 + i), CasRet::WriteOk, 1, 1000)));
        ops.push(ok(CasOp::Read, CasRet::ReadOk(1), 20, 30));
        let unlimited = Deadline::new(&Budget::UNLIMITED);
        let search = Box::new(Search::new(&CasRegister { value: 0 }, &ops));
        assert!(
            matches!(
                search.run(1000, &unlimited),
                Progress::Done(SearchResult::Linearizable)
            ),
            "decided in a thousand steps"
        );
    }

    #[test]
    fn long_sequential_histories_need_no_deep_stack() {
        let ops: Vec<Op> = (0..200_000)
            .map(|i| {
                let t = 2 * i as u64;
                ok(CasOp::Write(i), CasRet::WriteOk, t, t + 1)
            })
            .collect();
        assert!(matches!(check(&ops), SearchResult::Linearizable));
    }
}
