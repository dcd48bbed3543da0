//! Replicas that diverge. Every copy of an append-only list, read from any node at any time,
//! holds a prefix of one and the same sequence of appends: replicas apply one log in one
//! order, so a copy can only lag, never differ. Two copies neither of which is a prefix of
//! the other (Elle's "incompatible order") mean that two nodes applied different entries at
//! one place of the log: two leaders of one term, a committed entry overwritten, a conflicting
//! suffix kept. Reading every node's own copy (not only the leader's) sees a divergence the
//! moment it happens, long before the leadership moves to the node that has it.
//!
//! The check is one pass in time order: if no two copies seen so far disagree, they all are
//! prefixes of the longest of them, so a new copy agrees with every earlier one exactly when
//! it agrees with that longest one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::verdict::Verdict;

/// One copy of a list, as read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListCopy {
    /// The list's key.
    pub key: String,
    /// The node whose own copy this is; `None` for a client's read through the leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// When the read completed, in nanoseconds since the start of the test.
    pub time: u64,
    /// The history index of a client's read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<u64>,
    /// The elements, in order (an absent list is empty).
    pub value: Vec<Value>,
}

/// Two copies of a list that cannot both be prefixes of one sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    pub key: String,
    /// The longest copy read before `diverging`, which it contradicts.
    pub agreed: ListCopy,
    /// The first copy read that contradicts an earlier one.
    pub diverging: ListCopy,
}

/// The verdict over every copy read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DivergenceResult {
    /// `false` if any two copies of a list disagree.
    pub valid: Verdict,
    /// How many copies were compared.
    pub copies: usize,
    /// How many lists they are copies of.
    pub keys: usize,
    /// The first divergence of each list that has one, by key.
    pub divergences: Vec<Divergence>,
}

/// Compares every copy of every list.
pub fn divergence(copies: impl IntoIterator<Item = ListCopy>) -> DivergenceResult {
    let mut by_key: BTreeMap<String, Vec<ListCopy>> = BTreeMap::new();
    let mut count = 0;
    for copy in copies {
        count += 1;
        by_key.entry(copy.key.clone()).or_default().push(copy);
    }
    let keys = by_key.len();
    let divergences: Vec<Divergence> = by_key.into_values().filter_map(first_divergence).collect();
    DivergenceResult {
        valid: if divergences.is_empty() {
            Verdict::Valid
        } else {
            Verdict::Invalid
        },
        copies: count,
        keys,
        divergences,
    }
}

/// The first copy, in time order, that contradicts one read before it.
fn first_divergence(mut copies: Vec<ListCopy>) -> Option<Divergence> {
    copies.sort_by_key(|copy| copy.time);
    let mut copies = copies.into_iter();
    let mut longest = copies.next()?;
    for copy in copies {
        let (shorter, longer) = if copy.value.len() <= longest.value.len() {
            (&copy.value, &longest.value)
        } else {
            (&longest.value, &copy.value)
        };
        if !longer.starts_with(shorter) {
            return Some(Divergence {
                key: copy.key.clone(),
                agreed: longest,
                diverging: copy,
            });
        }
        if copy.value.len() > longest.value.len() {
            longest = copy;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn copy(key: &str, node: &str, time: u64, value: &[u64]) -> ListCopy {
        ListCopy {
            key: key.into(),
            node: Some(node.into()),
            time,
            operation: None,
            value: value.iter().map(|&v| json!(v)).collect(),
        }
    }

    #[test]
    fn copies_that_lag_agree_in_any_order_of_reading() {
        let result = divergence([
            copy("l1", "n1", 30, &[1, 2, 3]),
            copy("l1", "n2", 10, &[1]),
            copy("l1", "n3", 20, &[]),
            copy("l1", "n2", 40, &[1, 2]),
            copy("l2", "n1", 5, &[7]),
        ]);
        assert_eq!(result.valid, Verdict::Valid);
        assert_eq!((result.copies, result.keys), (5, 2));
    }

    #[test]
    fn the_first_copy_that_contradicts_an_earlier_one_is_the_divergence() {
        let result = divergence([
            copy("l1", "n1", 10, &[1, 2]),
            copy("l1", "n2", 20, &[1, 2, 3]),
            copy("l1", "n3", 30, &[1, 4]),
            copy("l1", "n1", 40, &[1, 2, 5]),
        ]);
        assert_eq!(result.valid, Verdict::Invalid);
        let found = &result.divergences[0];
        assert_eq!(found.agreed.node.as_deref(), Some("n2"));
        assert_eq!(
            (found.diverging.node.as_deref(), found.diverging.time),
            (Some("n3"), 30)
        );
    }

    #[test]
    fn a_copy_with_an_element_dropped_from_the_middle_diverges() {
        let result = divergence([
            copy("l1", "n1", 10, &[1, 2, 3]),
            copy("l1", "n2", 20, &[1, 3]),
        ]);
        assert_eq!(result.divergences.len(), 1);
    }
}
