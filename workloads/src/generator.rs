//! Seeded operation generators, one per client, drawing on keys that all clients share.
//!
//! Each client's choices (register or list, which active key, which operation, which values)
//! come from its own ChaCha8 stream, seeded by the run's seed and numbered by the client, so a
//! seed replays every client's sequence of choices. What is shared, and so depends on timing,
//! is only the numbering: which fresh key replaces a retired one, and the next unique element
//! to append.
//!
//! - Registers (Jepsen's independent cas-register): reads, writes and cas with equal
//!   probability, values in `0..5`.
//! - Lists: an append of a unique integer, or every other time a read of the whole list.
//! - Each model has `keys` active keys; a key gets at most `ops_per_key` operations, then a
//!   fresh key takes its place.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use faultline_history::ModelKind;

use crate::keys::{list_key, model_for_key, register_key};
use crate::op::Op;
use crate::options::{WorkloadKind, WorkloadOptions};

/// Register values are drawn from `0..REGISTER_VALUES`: a small domain, so that reads, writes
/// and compare-and-sets often meet the same value.
const REGISTER_VALUES: u64 = 5;

/// One list operation in `LIST_READS_IN` is a read. Reads pin the order of the appends
/// before them; the list-append check is exponential in the appends between two reads, and
/// with 1 in 3 or 1 in 5 a run with pauses already had keys it could not decide in a minute.
const LIST_READS_IN: u32 = 2;

/// The active keys of one model. Key numbers are handed out in order, so the keys ever used
/// are those numbered below `next_key`.
struct KeySpace {
    name: fn(u64) -> String,
    ops_per_key: u64,
    state: Mutex<KeySpaceState>,
}

struct KeySpaceState {
    /// Each active key and how many operations it has had; `None` until first used.
    slots: Vec<Option<ActiveKey>>,
    next_key: u64,
}

#[derive(Clone, Copy)]
struct ActiveKey {
    number: u64,
    ops: u64,
}

impl KeySpace {
    fn new(name: fn(u64) -> String, options: &WorkloadOptions) -> Self {
        KeySpace {
            name,
            ops_per_key: options.ops_per_key,
            state: Mutex::new(KeySpaceState {
                slots: vec![None; options.keys],
                next_key: 0,
            }),
        }
    }

    /// The key in `slot` for one more operation, after retiring it for a fresh one if it has
    /// had its share.
    fn take(&self, slot: usize) -> String {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *state;
        let active = match state.slots[slot] {
            Some(active) if active.ops < self.ops_per_key => active,
            _ => {
                state.next_key += 1;
                ActiveKey {
                    number: state.next_key - 1,
                    ops: 0,
                }
            }
        };
        state.slots[slot] = Some(ActiveKey {
            ops: active.ops + 1,
            ..active
        });
        (self.name)(active.number)
    }

    /// Gives back the share of an operation on `key` that certainly did not happen, if the
    /// key is still active: a key then outlives an outage (refused operations do not wear it
    /// out), and the reads after the outage read what was written before it.
    fn refund(&self, key: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let active = state
            .slots
            .iter_mut()
            .flatten()
            .find(|active| (self.name)(active.number) == key);
        if let Some(active) = active {
            active.ops = active.ops.saturating_sub(1);
        }
    }

    /// A key no operation has used yet, handed out for one purpose outside the slots.
    fn fresh(&self) -> String {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.next_key += 1;
        (self.name)(state.next_key - 1)
    }

    /// Every key handed out so far, in order.
    fn used(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (0..state.next_key).map(self.name).collect()
    }
}

/// What the generators of all clients share: the active keys and the next element to append.
pub(crate) struct SharedKeys {
    registers: KeySpace,
    lists: KeySpace,
    next_element: AtomicU64,
}

impl SharedKeys {
    pub(crate) fn new(options: &WorkloadOptions) -> Self {
        SharedKeys {
            registers: KeySpace::new(register_key, options),
            lists: KeySpace::new(list_key, options),
            next_element: AtomicU64::new(0),
        }
    }

    /// Every list key handed out so far, in order: the keys that need a final read.
    pub(crate) fn list_keys_used(&self) -> Vec<String> {
        self.lists.used()
    }

    /// A write to a key nobody used, of the workload's kind: an append to a fresh list if
    /// the workload has lists (so the final reads read it back), else a write of a fresh
    /// register.
    pub(crate) fn probe_write(&self, kind: WorkloadKind) -> Op {
        match kind {
            WorkloadKind::Register => Op::Write {
                key: self.registers.fresh(),
                value: 0,
            },
            WorkloadKind::Append | WorkloadKind::Mixed => Op::Append {
                key: self.lists.fresh(),
                value: self.next_element.fetch_add(1, Ordering::Relaxed),
            },
        }
    }
}

/// Which operations a client performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Every kind, as the workload mixes them.
    Any,
    /// Reads only, of registers and lists.
    Reads,
    /// Writes only: register writes and compare-and-sets, list appends.
    Writes,
}

/// One client's source of operations.
pub(crate) struct Generator {
    rng: ChaCha8Rng,
    kind: WorkloadKind,
    role: Role,
    keys: usize,
    shared: Arc<SharedKeys>,
}

impl Generator {
    /// The generator of client number `client` (from 0), in `role`.
    pub(crate) fn new(
        options: &WorkloadOptions,
        client: usize,
        role: Role,
        shared: Arc<SharedKeys>,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        rng.set_stream(client as u64);
        Generator {
            rng,
            kind: options.kind,
            role,
            keys: options.keys,
            shared,
        }
    }

    /// Which operations it makes.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// Whether the next operation reads, as the role and the workload's mix have it.
    fn reads(&mut self, one_in: u32) -> bool {
        match self.role {
            Role::Any => self.rng.random_ratio(1, one_in),
            Role::Reads => true,
            Role::Writes => false,
        }
    }

    /// `op` certainly did not happen (refused, no leader): it does not count towards its
    /// key's share of operations.
    pub(crate) fn did_not_happen(&self, op: &Op) {
        match op {
            Op::Read { key } if model_for_key(key) == Some(ModelKind::ListAppend) => {
                self.shared.lists.refund(key)
            }
            Op::Append { key, .. } => self.shared.lists.refund(key),
            Op::Read { key } | Op::Write { key, .. } | Op::Cas { key, .. } => {
                self.shared.registers.refund(key)
            }
        }
    }

    /// The next operation.
    pub(crate) fn next_op(&mut self) -> Op {
        let on_register = match self.kind {
            WorkloadKind::Register => true,
            WorkloadKind::Append => false,
            WorkloadKind::Mixed => self.rng.random_bool(0.5),
        };
        let slot = self.rng.random_range(0..self.keys);
        if on_register {
            let key = self.shared.registers.take(slot);
            if self.reads(3) {
                return Op::Read { key };
            }
            match self.rng.random_range(0..2) {
                0 => Op::Write {
                    key,
                    value: self.rng.random_range(0..REGISTER_VALUES),
                },
                _ => Op::Cas {
                    key,
                    from: self.rng.random_range(0..REGISTER_VALUES),
                    to: self.rng.random_range(0..REGISTER_VALUES),
                },
            }
        } else {
            let key = self.shared.lists.take(slot);
            if self.reads(LIST_READS_IN) {
                Op::Read { key }
            } else {
                let value = self.shared.next_element.fetch_add(1, Ordering::Relaxed);
                Op::Append { key, value }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;
    use crate::keys::model_for_key;
    use faultline_history::ModelKind;

    fn options(kind: WorkloadKind, seed: u64) -> WorkloadOptions {
        WorkloadOptions {
            kind,
            seed,
            keys: 3,
            ops_per_key: 10,
            ..WorkloadOptions::default()
        }
    }

    /// `rounds` operations from each of `clients` generators, taking turns.
    fn run(
        options: &WorkloadOptions,
        clients: usize,
        rounds: usize,
    ) -> (Vec<Vec<Op>>, Arc<SharedKeys>) {
        let shared = Arc::new(SharedKeys::new(options));
        let mut generators: Vec<_> = (0..clients)
            .map(|client| Generator::new(options, client, Role::Any, shared.clone()))
            .collect();
        let mut ops = vec![Vec::new(); clients];
        for _ in 0..rounds {
            for (generator, ops) in generators.iter_mut().zip(&mut ops) {
                ops.push(generator.next_op());
            }
        }
        (ops, shared)
    }

    /// What a client chose, without the shared numbering of keys and elements.
    fn choices(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::Write { value, .. } => format!("write {value}"),
                Op::Cas { from, to, .. } => format!("cas {from} {to}"),
                other => format!("{} {:?}", other.f(), model_for_key(other.key())),
            })
            .collect()
    }

    #[test]
    fn an_operation_that_did_not_happen_does_not_wear_its_key_out() {
        let options = WorkloadOptions {
            keys: 1,
            ops_per_key: 3,
            ..options(WorkloadKind::Register, 1)
        };
        let shared = Arc::new(SharedKeys::new(&options));
        let mut generator = Generator::new(&options, 0, Role::Any, shared.clone());
        let first = generator.next_op();
        for _ in 0..10 {
            let op = generator.next_op();
            assert_eq!(op.key(), first.key(), "refused operations keep the key");
            generator.did_not_happen(&op);
        }
        assert_eq!(generator.next_op().key(), first.key());
        assert_eq!(generator.next_op().key(), first.key());
        assert_ne!(
            generator.next_op().key(),
            first.key(),
            "three that happened retire it"
        );
    }

    #[test]
    fn a_seed_replays_every_clients_choices_and_another_seed_does_not() {
        let (first, _) = run(&options(WorkloadKind::Mixed, 7), 4, 50);
        let (again, _) = run(&options(WorkloadKind::Mixed, 7), 4, 50);
        assert_eq!(first, again);
        let (other, _) = run(&options(WorkloadKind::Mixed, 8), 4, 50);
        assert_ne!(choices(&first[0]), choices(&other[0]));
        assert_ne!(
            choices(&first[0]),
            choices(&first[1]),
            "clients draw from their own streams"
        );

        // Alone, a client makes the same choices as among others.
        let (alone, _) = run(&options(WorkloadKind::Mixed, 7), 1, 50);
        assert_eq!(choices(&alone[0]), choices(&first[0]));
    }

    #[test]
    fn workloads_use_their_own_operations_and_keys() {
        for kind in WorkloadKind::ALL {
            let (ops, _) = run(&options(kind, 1), 2, 300);
            let ops: Vec<&Op> = ops.iter().flatten().collect();
            let count = |f: &str| ops.iter().filter(|op| op.f() == f).count();
            let models: HashSet<_> = ops.iter().map(|op| model_for_key(op.key())).collect();
            match kind {
                WorkloadKind::Register => {
                    assert_eq!(models, HashSet::from([Some(ModelKind::CasRegister)]));
                    assert!(count("read") > 0 && count("write") > 0 && count("cas") > 0);
                    assert_eq!(count("append"), 0);
                }
                WorkloadKind::Append => {
                    assert_eq!(models, HashSet::from([Some(ModelKind::ListAppend)]));
                    assert!(count("read") > 0 && count("append") > 0);
                }
                WorkloadKind::Mixed => {
                    assert_eq!(
                        models,
                        HashSet::from([Some(ModelKind::CasRegister), Some(ModelKind::ListAppend)])
                    );
                }
            }
            for op in &ops {
                if let Op::Write { value, .. } | Op::Cas { from: value, .. } = op {
                    assert!(*value < REGISTER_VALUES);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn keys_retire_after_their_share_and_elements_are_unique(
            seed in any::<u64>(),
            clients in 1usize..6,
            keys in 1usize..4,
            ops_per_key in 1u64..20,
            rounds in 1usize..60,
        ) {
            let options = WorkloadOptions {
                kind: WorkloadKind::Mixed,
                seed,
                keys,
                ops_per_key,
                ..WorkloadOptions::default()
            };
            let (ops, shared) = run(&options, clients, rounds);
            let mut per_key: HashMap<&str, u64> = HashMap::new();
            let mut elements = HashSet::new();
            for op in ops.iter().flatten() {
                *per_key.entry(op.key()).or_default() += 1;
                if let Op::Append { value, .. } = op {
                    prop_assert!(elements.insert(*value), "element {} appended twice", value);
                }
            }
            // No key exceeds its share, and at most `keys` of each model are still open.
            prop_assert!(per_key.values().all(|&n| n <= ops_per_key));
            for model in [ModelKind::CasRegister, ModelKind::ListAppend] {
                let open = per_key
                    .iter()
                    .filter(|(key, n)| model_for_key(key) == Some(model) && **n < ops_per_key)
                    .count();
                prop_assert!(open <= keys);
            }
            // The list keys that need a final read are exactly those used.
            let mut lists: Vec<&str> = per_key
                .keys()
                .copied()
                .filter(|key| model_for_key(key) == Some(ModelKind::ListAppend))
                .collect();
            lists.sort_by_key(|key| key[1..].parse::<u64>().unwrap_or(u64::MAX));
            prop_assert_eq!(shared.list_keys_used(), lists);
        }
    }
}
