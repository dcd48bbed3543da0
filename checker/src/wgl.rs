//! The Wing–Gong–Lowe search for one partition: is there an order of the operations that
//! respects real time and that the model accepts?
//!
//! As in Lowe's "Testing for linearizability" and Porcupine's `checker.go`: the call and return
//! entries of all operations sit in a doubly-linked list in time order. The operations that may
//! come next are the calls before the first return. Linearizing one lifts its two entries out
//! of the list; backtracking puts them back. A cache of every configuration entered (the set of
//! linearized operations as a bitset, and the model state) stops the search from exploring the
//! same configuration twice. The search is a loop with an explicit stack, never recursion.
//!
//! An operation whose completion is unknown has no return entry: it may be linearized at any
//! point after its call, or never. The search succeeds once every operation that did complete
//! is linearized.

use std::hash::{Hash, Hasher};

use hashbrown::HashTable;
use stateright::semantics::SequentialSpec;

use crate::budget::Deadline;

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
    /// The deadline passed first.
    TimedOut,
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
        }
    }

    /// Runs up to `steps` steps, looking at the deadline every so often. At least
    /// [`STEPS_BETWEEN_CLOCK_CHECKS`] steps run whatever the deadline, so a small partition is
    /// always decided.
    pub fn run(mut self: Box<Self>, steps: u64, deadline: &Deadline) -> Progress<'a, M> {
        let mut left = steps;
        while left > 0 {
            let chunk = left.min(STEPS_BETWEEN_CLOCK_CHECKS);
            left -= chunk;
            match self.steps(chunk) {
                Some(true) => return Progress::Done(SearchResult::Linearizable),
                Some(false) => return Progress::Done(SearchResult::NotLinearizable(self.deepest)),
                None if deadline.has_passed() => return Progress::Done(SearchResult::TimedOut),
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
                // A return (or the end): the operation returning here was not linearized, and
                // now nothing can come before it, so this branch is dead.
                if !self.backtrack() {
                    return Some(false);
                }
                continue;
            };
            let op = &self.ops[index];
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
            } else {
                self.linearized.remove(index);
                // Seen before, in vain; for a read-only operation that dooms this
                // configuration too.
                self.entry = if read_only {
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

/// A node of the entry list.
#[derive(Clone, Copy)]
enum Entry {
    /// Before the first entry.
    Head,
    /// Operation `op` is called; `ret` is its return entry, if it has one.
    Call { op: usize, ret: Option<usize> },
    /// An operation returns.
    Return,
    /// After the last entry.
    Tail,
}

/// Lowe's doubly-linked list of call and return entries in time order, in arrays.
struct EntryList {
    entries: Vec<Entry>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl EntryList {
    const HEAD: usize = 0;

    fn new<M: SequentialSpec>(ops: &[ModelOperation<M>]) -> Self {
        // (time, calls before returns at the same time so that they count as concurrent, op)
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
        for (index, op) in ops.iter().enumerate() {
            events.push((op.call, false, index));
            if let Some(completion) = &op.completion {
                events.push((completion.time.max(op.call), true, index));
            }
        }
        events.sort_unstable();
        // Between two returns the calls may come in any order (the candidates are the same
        // set); read-only ones first, so that they pin the state before anything is tried.
        let read_only = |index: usize| {
            ops[index]
                .completion
                .as_ref()
                .is_some_and(|completion| completion.read_only)
        };
        for run in events.split_mut(|&(_, is_return, _)| is_return) {
            run.sort_by_key(|&(time, _, index)| (!read_only(index), time, index));
        }

        let mut entries = Vec::with_capacity(events.len() + 2);
        entries.push(Entry::Head);
        let mut call_entry = vec![0; ops.len()];
        for &(_, is_return, index) in &events {
            if is_return {
                let return_entry = entries.len();
                if let Entry::Call { ret, .. } = &mut entries[call_entry[index]] {
                    *ret = Some(return_entry);
                }
                entries.push(Entry::Return);
            } else {
                call_entry[index] = entries.len();
                entries.push(Entry::Call {
                    op: index,
                    ret: None,
                });
            }
        }
        entries.push(Entry::Tail);
        let count = entries.len();
        EntryList {
            entries,
            next: (1..=count).collect(),
            prev: (0..count).map(|i| i.saturating_sub(1)).collect(),
        }
    }

    fn first(&self) -> usize {
        self.next[Self::HEAD]
    }

    fn tail(&self) -> usize {
        self.entries.len() - 1
    }

    /// The operation of a call entry.
    fn op(&self, call: usize) -> usize {
        match self.entries[call] {
            Entry::Call { op, .. } => op,
            _ => unreachable!("only call entries are linearized"),
        }
    }

    /// The operations with a return entry that may be linearized next: those whose call
    /// comes before the first return.
    fn candidates(&self) -> Vec<usize> {
        let mut candidates = Vec::new();
        let mut entry = self.first();
        while let Entry::Call { op, ret } = self.entries[entry] {
            if ret.is_some() {
                candidates.push(op);
            }
            entry = self.next[entry];
        }
        candidates
    }

    /// Takes a call entry and its return entry out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Entry::Call { ret: Some(ret), .. } = self.entries[call] {
            self.unlink(ret);
        }
    }

    /// Puts back what [`EntryList::lift`] took out (the reverse of the latest lift).
    fn unlift(&mut self, call: usize) {
        if let Entry::Call { ret: Some(ret), .. } = self.entries[call] {
            self.relink(ret);
        }
        self.relink(call);
    }

    fn unlink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    fn relink(&mut self, entry: usize) {
        let (prev, next) = (self.prev[entry], self.next[entry]);
        self.next[prev] = entry;
        self.prev[next] = entry;
    }
}

/// The set of linearized operations: a bitset, with its size, one past its highest index, and
/// a hash kept up to date as indices come and go (Zobrist hashing), so that looking it up in
/// the cache costs no pass over it.
struct Linearized {
    words: Box<[u64]>,
    /// A random-looking key per index; the hash is the xor of the keys of the indices in the
    /// set.
    keys: Box<[u64]>,
    hash: u64,
    len: usize,
    end: usize,
}

impl Linearized {
    fn new(operations: usize) -> Self {
        Linearized {
            words: vec![0; operations.div_ceil(64)].into_boxed_slice(),
            keys: (0..operations as u64).map(splitmix64).collect(),
            hash: 0,
            len: 0,
            end: 0,
        }
    }

    fn contains(&self, index: usize) -> bool {
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    /// Adds `index`, which is not in the set.
    fn insert(&mut self, index: usize) {
        self.words[index / 64] |= 1 << (index % 64);
        self.hash ^= self.keys[index];
        self.len += 1;
        self.end = self.end.max(index + 1);
    }

    /// Removes `index`, which is in the set.
    fn remove(&mut self, index: usize) {
        self.words[index / 64] &= !(1 << (index % 64));
        self.hash ^= self.keys[index];
        self.len -= 1;
        if index + 1 == self.end {
            let words = &self.words[..self.end.div_ceil(64)];
            self.end = words
                .iter()
                .rposition(|&word| word != 0)
                .map_or(0, |at| (at + 1) * 64 - words[at].leading_zeros() as usize);
        }
    }

    /// The words up to `end`.
    fn prefix(&self) -> &[u64] {
        &self.words[..self.end.div_ceil(64)]
    }

    /// The indices below `end` that are not in the set.
    fn holes(&self) -> impl Iterator<Item = usize> + '_ {
        self.prefix()
            .iter()
            .enumerate()
            .flat_map(|(at, &word)| {
                let mut missing = !word;
                std::iter::from_fn(move || {
                    let bit = missing.trailing_zeros();
                    missing &= missing.wrapping_sub(1);
                    (bit < 64).then_some(at * 64 + bit as usize)
                })
            })
            .take_while(|&hole| hole < self.end)
    }

    /// Whether a set of `len` indices below `end` is stored as its holes (`end - len` of
    /// them) rather than as its words up to `end`: whichever is shorter. A linearized set is
    /// nearly always every operation up to some point but a few (pending, or never taking
    /// effect), so in a long partition the holes are far fewer than the words.
    fn stored_as_holes(end: usize, len: usize) -> bool {
        end - len < end.div_ceil(64)
    }

    /// Appends the stored form of the set to `arena`.
    fn store(&self, arena: &mut Vec<u64>) {
        if Self::stored_as_holes(self.end, self.len) {
            arena.extend(self.holes().map(|hole| hole as u64));
        } else {
            arena.extend_from_slice(self.prefix());
        }
    }

    /// How many words the stored form of a set of `len` indices below `end` takes.
    fn stored_len(end: usize, len: usize) -> usize {
        if Self::stored_as_holes(end, len) {
            end - len
        } else {
            end.div_ceil(64)
        }
    }

    /// Whether this is the set of `len` indices below `end` stored as `stored`. As holes: the
    /// set lies below `end` and misses every hole, so it has `len` elements only if it is
    /// exactly `[0, end)` without them.
    fn is(&self, end: usize, len: usize, stored: &[u64]) -> bool {
        self.end == end
            && self.len == len
            && if Self::stored_as_holes(end, len) {
                stored.iter().all(|&hole| !self.contains(hole as usize))
            } else {
                // Word by word: a few words, where a call to memcmp would cost more.
                self.prefix().iter().zip(stored).all(|(a, b)| a == b)
            }
    }
}

/// A well-mixed 64-bit value for each index (the SplitMix64 finalizer).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Lowe's cache: every configuration the search entered. Each distinct linearized set is
/// stored once, in an arena (see [`Linearized::store`]), with the states seen with it: sets
/// are the big part (Elasticsearch's checker cut its cache 6x by storing each once).
struct Cache<M> {
    /// The stored sets, one after another.
    arena: Vec<u64>,
    seen: HashTable<Seen<M>>,
}

/// A set in the cache, and the states seen with it.
struct Seen<M> {
    hash: u64,
    end: usize,
    len: usize,
    /// Where its stored form starts in the arena.
    at: usize,
    states: States<M>,
}

impl<M: Clone + Eq + Hash> Cache<M> {
    fn new(operations: usize) -> Self {
        Cache {
            arena: Vec::new(),
            seen: HashTable::with_capacity(operations),
        }
    }

    /// Records a configuration; false if it was there already.
    fn insert(&mut self, linearized: &Linearized, state: &M) -> bool {
        let Cache { arena, seen } = self;
        let same_set = |entry: &Seen<M>| {
            let stored = entry.at..entry.at + Linearized::stored_len(entry.end, entry.len);
            entry.hash == linearized.hash && linearized.is(entry.end, entry.len, &arena[stored])
        };
        let state = Hashed::new(state);
        if let Some(entry) = seen.find_mut(linearized.hash, same_set) {
            return entry.states.insert(state);
        }
        let at = arena.len();
        linearized.store(arena);
        let entry = Seen {
            hash: linearized.hash,
            end: linearized.end,
            len: linearized.len,
            at,
            states: States::One(state.to_owned()),
        };
        seen.insert_unique(linearized.hash, entry, |entry| entry.hash);
        true
    }
}

/// A state with its hash, computed once, so that most unequal states are told apart by it.
#[derive(Clone, Copy)]
struct Hashed<S> {
    hash: u64,
    state: S,
}

impl<'a, M: Clone + Hash> Hashed<&'a M> {
    fn new(state: &'a M) -> Self {
        let mut hasher = StateHasher::default();
        state.hash(&mut hasher);
        Hashed {
            hash: hasher.finish(),
            state,
        }
    }

    fn to_owned(self) -> Hashed<M> {
        Hashed {
            hash: self.hash,
            state: self.state.clone(),
        }
    }
}

impl<M: Eq> Hashed<M> {
    fn is(&self, other: Hashed<&M>) -> bool {
        self.hash == other.hash && self.state == *other.state
    }
}

/// The states seen with one bitset: usually one, or a handful compared one by one; looked up
/// by hash when many.
enum States<M> {
    One(Hashed<M>),
    Few(Vec<Hashed<M>>),
    Many(HashTable<Hashed<M>>),
}

impl<M: Clone + Eq + Hash> States<M> {
    /// Beyond this many states, a hash table beats comparing hashes one by one.
    const FEW: usize = 8;

    /// Adds a state; false if it was there already.
    fn insert(&mut self, state: Hashed<&M>) -> bool {
        match self {
            States::One(one) if one.is(state) => false,
            States::One(one) => {
                *self = States::Few(vec![one.clone(), state.to_owned()]);
                true
            }
            States::Few(few) if few.iter().any(|seen| seen.is(state)) => false,
            States::Few(few) if few.len() < Self::FEW => {
                few.push(state.to_owned());
                true
            }
            States::Few(few) => {
                let mut many = HashTable::with_capacity(2 * Self::FEW);
                for seen in few.drain(..).chain([state.to_owned()]) {
                    many.insert_unique(seen.hash, seen, |seen| seen.hash);
                }
                *self = States::Many(many);
                true
            }
            States::Many(many) => {
                if many.find(state.hash, |seen| seen.is(state)).is_some() {
                    return false;
                }
                many.insert_unique(state.hash, state.to_owned(), |seen| seen.hash);
                true
            }
        }
    }
}

/// A fast hasher for model states (FxHash's rotate, xor and multiply): states are hashed
/// often, and need no defence against collisions crafted by an adversary.
#[derive(Default)]
struct StateHasher(u64);

impl StateHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for StateHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.add(word);
    }

    fn write_usize(&mut self, word: usize) {
        self.add(word as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        search(ops, &Deadline::after(None))
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
        let past = Deadline::after(Some(std::time::Duration::ZERO));
        assert!(matches!(search(&ops, &past), SearchResult::TimedOut));
        let short = [ok(CasOp::Write(1), CasRet::WriteOk, 0, 1)];
        assert!(matches!(search(&short, &past), SearchResult::Linearizable));
    }

    #[test]
    fn a_linearized_set_is_stored_as_its_words_or_its_holes_whichever_is_shorter() {
        let stored = |set: &Linearized| {
            let mut arena = Vec::new();
            set.store(&mut arena);
            assert_eq!(arena.len(), Linearized::stored_len(set.end, set.len));
            assert!(set.is(set.end, set.len, &arena));
            arena
        };
        let mut set = Linearized::new(1000);
        for index in [0, 1, 2, 130] {
            set.insert(index);
        }
        assert_eq!((set.end, set.len), (131, 4));
        assert_eq!(
            stored(&set),
            [0b111, 0, 1 << 2],
            "three words beat 127 holes"
        );
        set.remove(130);
        assert_eq!((set.end, set.len), (3, 3));
        assert!(stored(&set).is_empty(), "no holes at all");

        let mut long = Linearized::new(1000);
        for index in (0..900).filter(|&index| index != 5 && index != 700) {
            long.insert(index);
        }
        assert_eq!(stored(&long), [5, 700], "two holes beat 15 words");
        assert!(!long.is(900, 898, &[5, 701]));
        long.insert(5);
        long.remove(6);
        assert!(
            !long.is(900, 898, &[5, 700]),
            "another set of the same size"
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
