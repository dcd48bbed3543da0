//! Lowe's doubly-linked list of the call and return entries of a partition's operations, in
//! time order, kept in arrays. Linearizing an operation lifts its two entries out of the list;
//! backtracking puts them back where they were.

use stateright::semantics::SequentialSpec;

use super::ModelOperation;

/// A node of the entry list.
#[derive(Clone, Copy)]
pub(super) enum Entry {
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
pub(super) struct EntryList {
    pub(super) entries: Vec<Entry>,
    pub(super) next: Vec<usize>,
    prev: Vec<usize>,
}

impl EntryList {
    const HEAD: usize = 0;

    pub(super) fn new<M: SequentialSpec>(ops: &[ModelOperation<M>]) -> Self {
        // (time, calls before returns at the same time so that they count as concurrent, op)
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
        for (index, op) in ops.iter().enumerate() {
            events.push((op.call, false, index));
            if let Some(completion) = &op.completion {
                events.push((completion.time.max(op.call), true, index));
            }
        }
        events.sort_unstable();

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

    pub(super) fn first(&self) -> usize {
        self.next[Self::HEAD]
    }

    pub(super) fn tail(&self) -> usize {
        self.entries.len() - 1
    }

    /// The operation of a call entry.
    pub(super) fn op(&self, call: usize) -> usize {
        match self.entries[call] {
            Entry::Call { op, .. } => op,
            _ => unreachable!("only call entries are linearized"),
        }
    }

    /// The operations with a return entry that may be linearized next: those whose call
    /// comes before the first return.
    pub(super) fn candidates(&self) -> Vec<usize> {
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
    pub(super) fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Entry::Call { ret: Some(ret), .. } = self.entries[call] {
            self.unlink(ret);
        }
    }

    /// Puts back what [`EntryList::lift`] took out (the reverse of the latest lift).
    pub(super) fn unlift(&mut self, call: usize) {
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
