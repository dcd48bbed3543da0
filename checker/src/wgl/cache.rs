//! Lowe's cache of the configurations a search has entered: each a set of linearized
//! operations and a model state.

use std::hash::{Hash, Hasher};

use hashbrown::HashTable;

/// The set of linearized operations: a bitset, with its size, one past its highest index, and
/// a hash kept up to date as indices come and go (Zobrist hashing), so that looking it up in
/// the cache costs no pass over it.
pub(super) struct Linearized {
    words: Box<[u64]>,
    /// A random-looking key per index; the hash is the xor of the keys of the indices in the
    /// set.
    keys: Box<[u64]>,
    hash: u64,
    len: usize,
    end: usize,
}

impl Linearized {
    pub(super) fn new(operations: usize) -> Self {
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
    pub(super) fn insert(&mut self, index: usize) {
        self.words[index / 64] |= 1 << (index % 64);
        self.hash ^= self.keys[index];
        self.len += 1;
        self.end = self.end.max(index + 1);
    }

    /// Removes `index`, which is in the set.
    pub(super) fn remove(&mut self, index: usize) {
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
pub(super) struct Cache<M> {
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
    pub(super) fn new(operations: usize) -> Self {
        Cache {
            arena: Vec::new(),
            seen: HashTable::with_capacity(operations),
        }
    }

    /// Records a configuration; false if it was there already.
    pub(super) fn insert(&mut self, linearized: &Linearized, state: &M) -> bool {
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
}
