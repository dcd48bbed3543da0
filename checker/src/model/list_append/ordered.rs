//! The list-append model for a partition whose appended elements are all distinct: the order
//! the elements can take effect in is known before the search starts, so the search follows
//! it instead of trying every order of the appends that overlap.
//!
//! Why the order is known. A list only grows at its end, so of any two lists it holds, one is
//! a prefix of the other. Take the longest `ok` read, L: in any linearization, every list
//! before L's read is a prefix of L, and every list after it starts with L. No read is longer
//! than L, so once the list outgrows L no read follows, only appends of elements no read
//! returned; nothing observes their order, and putting them in order of invocation keeps real
//! time (if one returned before another was invoked, it was invoked first). So if any
//! linearization exists, one exists in which every list is a prefix of the *reference*: L,
//! then the other acknowledged elements by invocation. An element appended with an unknown
//! outcome that L lacks took effect after every read, if at all, so it may as well not have.
//!
//! The model is the list restricted to prefixes of the reference: its state is a length,
//! the reference being shared by the whole partition. That only restricts the plain
//! [`ListAppend`](super::ListAppend) model (so a linearization it finds is one), and by the
//! argument above it misses none when the appended elements are distinct and none was in the
//! initial list. With a duplicate the argument fails (the same element could take effect
//! twice, before and after L), and the plain model is used instead.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use stateright::semantics::SequentialSpec;

use super::{ListOp, ListRet};

/// An append of a partition, as the reference needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Append<V> {
    /// The element appended.
    pub element: V,
    /// When it was invoked.
    pub call: u64,
    /// Whether it completed `ok` (otherwise its outcome is unknown).
    pub acknowledged: bool,
}

/// The only order a partition's elements need be appended in (see the module documentation).
#[derive(Debug)]
pub struct ListOrder<V> {
    /// The longest read that starts with the initial list (the initial list if there is
    /// none), then the acknowledged elements it lacks, by invocation.
    reference: Vec<V>,
    /// The length of that read.
    read_len: usize,
    /// The initial list's length.
    initial_len: usize,
    /// Each element's first place in `reference`.
    places: HashMap<V, usize>,
}

impl<V: Clone + Eq + Hash> ListOrder<V> {
    /// The order for a list that starts as `initial`, given its appends (`ok` or with unknown
    /// outcome; failed ones left out) and the lists its `ok` reads returned; `None` if some
    /// element is appended twice or was in the initial list.
    pub fn new(initial: &[V], appends: &[Append<V>], reads: &[&[V]]) -> Option<Self> {
        let mut seen: HashSet<&V> = initial.iter().collect();
        if !appends.iter().all(|append| seen.insert(&append.element)) {
            return None;
        }
        // The first of the longest, in the order given.
        let longest_read = reads
            .iter()
            .rev()
            .filter(|read| read.starts_with(initial))
            .max_by_key(|read| read.len())
            .map_or(initial, |read| *read);
        let read: HashSet<&V> = longest_read.iter().collect();
        let mut unread: Vec<&Append<V>> = appends
            .iter()
            .filter(|append| append.acknowledged && !read.contains(&append.element))
            .collect();
        unread.sort_by_key(|append| append.call);
        let reference: Vec<V> = longest_read
            .iter()
            .chain(unread.iter().map(|append| &append.element))
            .cloned()
            .collect();
        let mut places = HashMap::with_capacity(reference.len());
        for (place, element) in reference.iter().enumerate() {
            places.entry(element.clone()).or_insert(place);
        }
        Some(ListOrder {
            reference,
            read_len: longest_read.len(),
            initial_len: initial.len(),
            places,
        })
    }

    /// Every list the model can hold is a prefix of this.
    pub fn reference(&self) -> &[V] {
        &self.reference
    }

    /// The longest read the order starts with (the initial list if no read starts with it).
    pub fn longest_read(&self) -> &[V] {
        &self.reference[..self.read_len]
    }

    /// Where `element` comes in the reference, if it does.
    pub fn place(&self, element: &V) -> Option<usize> {
        self.places.get(element).copied()
    }
}

impl<V: PartialEq> PartialEq for ListOrder<V> {
    /// The places follow from the rest.
    fn eq(&self, other: &Self) -> bool {
        self.reference == other.reference
            && self.read_len == other.read_len
            && self.initial_len == other.initial_len
    }
}

impl<V: Eq> Eq for ListOrder<V> {}

/// A list that is always a prefix of its partition's [`ListOrder`]: its state is its length.
///
/// An append is accepted only for the element that comes next in the reference. Invoked
/// (the effect of an operation whose outcome is unknown), an append of any other element
/// leaves the list as it was: no linearization needs it to take effect there, so it is as if
/// it never took effect, which an unknown outcome allows.
#[derive(Clone, Debug)]
pub struct OrderedList<V> {
    order: Arc<ListOrder<V>>,
    len: usize,
}

impl<V: Clone + Eq + Hash> OrderedList<V> {
    /// The initial list of `order`.
    pub fn new(order: Arc<ListOrder<V>>) -> Self {
        let len = order.initial_len;
        OrderedList { order, len }
    }

    /// The list.
    pub fn list(&self) -> &[V] {
        &self.order.reference[..self.len]
    }

    /// The order it follows.
    pub fn order(&self) -> &ListOrder<V> {
        &self.order
    }

    /// Whether `element` comes next.
    fn continues_with(&self, element: &V) -> bool {
        self.order.place(element) == Some(self.len)
    }
}

impl<V: PartialEq> PartialEq for OrderedList<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && (Arc::ptr_eq(&self.order, &other.order) || self.order == other.order)
    }
}

impl<V: Eq> Eq for OrderedList<V> {}

impl<V> Hash for OrderedList<V> {
    /// The length alone: the states compared are those of one partition, which share their
    /// order.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.len.hash(state);
    }
}

impl<V: Clone + Eq + Hash> SequentialSpec for OrderedList<V> {
    type Op = ListOp<V>;
    type Ret = ListRet<V>;

    fn invoke(&mut self, op: &ListOp<V>) -> ListRet<V> {
        match op {
            ListOp::Read => ListRet::ReadOk(self.list().to_vec()),
            ListOp::Append(element) => {
                if self.continues_with(element) {
                    self.len += 1;
                }
                ListRet::AppendOk
            }
        }
    }

    fn is_valid_step(&mut self, op: &ListOp<V>, ret: &ListRet<V>) -> bool {
        match (op, ret) {
            (ListOp::Read, ListRet::ReadOk(list)) => self.list() == list.as_slice(),
            (ListOp::Append(element), ListRet::AppendOk) if self.continues_with(element) => {
                self.len += 1;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(element: u32, call: u64, acknowledged: bool) -> Append<u32> {
        Append {
            element,
            call,
            acknowledged,
        }
    }

    #[test]
    fn the_reference_is_the_longest_read_then_unread_acknowledged_elements_by_call() {
        let appends = [
            append(1, 0, true),
            append(2, 0, false),
            append(3, 9, true),
            append(4, 5, true),
            append(5, 1, false),
        ];
        let order = ListOrder::new(&[], &appends, &[&[1], &[1, 2], &[]]).unwrap();
        assert_eq!(order.longest_read(), [1, 2]);
        assert_eq!(order.reference(), [1, 2, 4, 3], "5 may never have happened");
        assert_eq!(order.place(&3), Some(3));
        assert_eq!(order.place(&5), None);
    }

    #[test]
    fn reads_that_do_not_start_with_the_initial_list_are_no_reference() {
        let appends = [append(1, 0, true)];
        let order = ListOrder::new(&[7], &appends, &[&[1, 2, 3]]).unwrap();
        assert_eq!(order.longest_read(), [7]);
        assert_eq!(order.reference(), [7, 1]);
        assert_eq!(OrderedList::new(Arc::new(order)).list(), [7]);
    }

    #[test]
    fn duplicates_leave_the_order_unknown() {
        let twice = [append(1, 0, true), append(1, 3, false)];
        assert_eq!(ListOrder::new(&[], &twice, &[]), None);
        let initial_again = [append(1, 0, true)];
        assert_eq!(ListOrder::new(&[1], &initial_again, &[]), None);
    }

    #[test]
    fn only_the_next_element_of_the_reference_is_appended() {
        let appends = [append(1, 0, true), append(2, 0, true), append(3, 0, false)];
        let order = ListOrder::new(&[], &appends, &[&[2, 1]]).unwrap();
        let mut list = OrderedList::new(Arc::new(order));
        assert!(!list.is_valid_step(&ListOp::Append(1), &ListRet::AppendOk));
        assert_eq!(list.invoke(&ListOp::Append(3)), ListRet::AppendOk);
        assert_eq!(
            list.list(),
            [] as [u32; 0],
            "3 cannot come first: no effect"
        );
        assert!(list.is_valid_step(&ListOp::Append(2), &ListRet::AppendOk));
        assert!(!list.is_valid_step(&ListOp::Read, &ListRet::ReadOk(vec![1])));
        assert!(list.is_valid_step(&ListOp::Read, &ListRet::ReadOk(vec![2])));
        assert!(list.is_valid_step(&ListOp::Append(1), &ListRet::AppendOk));
        assert_eq!(list.invoke(&ListOp::Read), ListRet::ReadOk(vec![2, 1]));
    }

    #[test]
    fn states_of_one_order_are_equal_when_their_lengths_are() {
        let order = Arc::new(ListOrder::new(&[], &[append(1, 0, true)], &[]).unwrap());
        let mut one = OrderedList::new(order.clone());
        let other = OrderedList::new(order);
        assert_eq!(one, other);
        one.invoke(&ListOp::Append(1));
        assert_ne!(one, other);
    }
}
