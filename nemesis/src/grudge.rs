//! Who cannot hear from whom: Jepsen's grudges and the topologies that make
//! them (complete components, halves, isolating one node, majorities ring,
//! bridge, one-way halves), and the directed links a partition backend must
//! cut for each.

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::NodeName;

/// A directed peer link: the connections `from` opens to `to`.
///
/// Cutting it stops those connections both ways (`from`'s requests and
/// `to`'s answers on them), with either backend; the connections `to` opens
/// to `from` are another link, untouched. So a one-way grudge is one-way
/// with either backend: in a request/answer protocol, `to` cannot hear
/// `from`'s requests, while `from` still hears `to`'s and answers them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    /// The sender.
    pub from: NodeName,
    /// The receiver.
    pub to: NodeName,
}

/// A map from each node to the nodes it must not hear from, as in Jepsen
/// (`jepsen.nemesis/complete-grudge`). Nodes that hear everyone are absent.
///
/// The constructors take nodes in an order that decides who lands where;
/// the schedule passes them shuffled by its seeded generator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grudge(BTreeMap<NodeName, BTreeSet<NodeName>>);

impl Grudge {
    /// No node hears from any node outside its own component.
    pub fn complete(components: &[&[NodeName]]) -> Self {
        let universe: BTreeSet<&NodeName> = components.iter().copied().flatten().collect();
        let mut grudge = BTreeMap::new();
        for component in components {
            let outside: BTreeSet<NodeName> = universe
                .iter()
                .filter(|node| !component.contains(node))
                .map(|node| (*node).clone())
                .collect();
            for node in *component {
                grudge.insert(node.clone(), outside.clone());
            }
        }
        Grudge::without_empty_entries(grudge)
    }

    /// `loner` and the other `nodes` cannot hear each other.
    pub fn isolate(loner: &str, nodes: &[NodeName]) -> Self {
        let rest: Vec<NodeName> = nodes.iter().filter(|n| *n != loner).cloned().collect();
        Grudge::complete(&[&[loner.to_owned()], &rest])
    }

    /// The first ⌊n/2⌋ nodes (a minority) and the rest (a majority) cannot
    /// hear each other. For three nodes this isolates the first one.
    pub fn halves(order: &[NodeName]) -> Self {
        let (minority, majority) = bisect(order);
        Grudge::complete(&[minority, majority])
    }

    /// Each node hears exactly a majority window of the ring `order`, with
    /// itself at the window's middle, so every node sees a majority and no
    /// two see the same one (Jepsen's `majorities-ring-perfect`). For five
    /// nodes it is symmetric: each node hears its two neighbours each side.
    /// For three nodes it is necessarily one-way: each node hears one other.
    pub fn majorities_ring(order: &[NodeName]) -> Self {
        let n = order.len();
        let majority = n / 2 + 1;
        let mut grudge = BTreeMap::new();
        for start in 0..n {
            let window: BTreeSet<&NodeName> =
                (0..majority).map(|i| &order[(start + i) % n]).collect();
            let middle = &order[(start + majority / 2) % n];
            let unheard = order
                .iter()
                .filter(|node| !window.contains(node))
                .cloned()
                .collect();
            grudge.insert(middle.clone(), unheard);
        }
        Grudge::without_empty_entries(grudge)
    }

    /// The halves of [`Grudge::halves`], except that the first node of the
    /// majority half (the bridge, [`Grudge::bridge_node`]) hears and is heard
    /// by everyone.
    pub fn bridge(order: &[NodeName]) -> Self {
        let (minority, majority) = bisect(order);
        let Some(bridge) = Grudge::bridge_node(order) else {
            return Grudge::default();
        };
        let mut grudge = Grudge::complete(&[minority, majority]).0;
        grudge.remove(bridge);
        for unheard in grudge.values_mut() {
            unheard.remove(bridge);
        }
        Grudge::without_empty_entries(grudge)
    }

    /// [`Grudge::bridge`] over `order` with `bridge` as the bridge: swapped with the node
    /// in the bridge's place, so that the others keep their sides. `order` as it is if
    /// `bridge` is not in it.
    pub fn bridge_through(bridge: &str, order: &[NodeName]) -> Self {
        let mut order = order.to_vec();
        let place = order.len() / 2; // bisect's majority half starts there
        if let Some(at) = order.iter().position(|node| node == bridge) {
            order.swap(at, place);
        }
        Grudge::bridge(&order)
    }

    /// The node that joins the two sides of [`Grudge::bridge`] over `order`:
    /// the first of the majority half. `None` only when `order` is empty.
    pub fn bridge_node(order: &[NodeName]) -> Option<&NodeName> {
        bisect(order).1.first()
    }

    /// The first ⌊n/2⌋ nodes (A) and the rest (B) of `order` split one way:
    /// every link A -> B is cut and every B -> A stays, so B hears nothing
    /// from A while A hears B. For three nodes, the first node is heard by
    /// no one but hears both others.
    pub fn one_way(order: &[NodeName]) -> Self {
        let (unheard, deaf) = bisect(order);
        let unheard: BTreeSet<NodeName> = unheard.iter().cloned().collect();
        let grudge = deaf
            .iter()
            .map(|node| (node.clone(), unheard.clone()))
            .collect();
        Grudge::without_empty_entries(grudge)
    }

    /// True when no node is cut from any other.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The directed links to cut so that this grudge holds.
    pub fn links(&self) -> Vec<Link> {
        self.0
            .iter()
            .flat_map(|(to, unheard)| {
                unheard.iter().map(|from| Link {
                    from: from.clone(),
                    to: to.clone(),
                })
            })
            .collect()
    }

    /// The history value: `{"n1":["n2","n3"], ...}`, node to nodes it does not hear.
    pub fn to_json(&self) -> serde_json::Value {
        self.0
            .iter()
            .map(|(node, unheard)| (node.clone(), unheard.iter().cloned().collect()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    fn without_empty_entries(mut grudge: BTreeMap<NodeName, BTreeSet<NodeName>>) -> Self {
        grudge.retain(|_, unheard| !unheard.is_empty());
        Grudge(grudge)
    }
}

/// Jepsen's `bisect`: the smaller half first.
fn bisect(order: &[NodeName]) -> (&[NodeName], &[NodeName]) {
    order.split_at(order.len() / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(n: usize) -> Vec<NodeName> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn can_hear(grudge: &Grudge, listener: &str, speaker: &str) -> bool {
        grudge
            .0
            .get(listener)
            .is_none_or(|unheard| !unheard.contains(speaker))
    }

    /// The nodes `listener` hears, itself included.
    fn view(grudge: &Grudge, nodes: &[NodeName], listener: &str) -> BTreeSet<NodeName> {
        nodes
            .iter()
            .filter(|speaker| can_hear(grudge, listener, speaker))
            .cloned()
            .collect()
    }

    fn is_symmetric(grudge: &Grudge, nodes: &[NodeName]) -> bool {
        nodes.iter().all(|a| {
            nodes
                .iter()
                .all(|b| can_hear(grudge, a, b) == can_hear(grudge, b, a))
        })
    }

    fn set(names: &[&str]) -> BTreeSet<NodeName> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn complete_cuts_every_pair_across_components_and_none_within() {
        let nodes = names(5);
        let grudge = Grudge::complete(&[&nodes[..2], &nodes[2..]]);
        for a in &nodes {
            for b in &nodes {
                let same_side = (a.as_str() < "n3") == (b.as_str() < "n3");
                assert_eq!(can_hear(&grudge, a, b), same_side, "{a} hears {b}?");
            }
        }
    }

    #[test]
    fn halves_of_three_isolate_the_first_node() {
        let nodes = names(3);
        let grudge = Grudge::halves(&nodes);
        assert_eq!(grudge, Grudge::isolate("n1", &nodes));
        assert_eq!(view(&grudge, &nodes, "n1"), set(&["n1"]));
        assert_eq!(view(&grudge, &nodes, "n2"), set(&["n2", "n3"]));
        assert!(is_symmetric(&grudge, &nodes));
    }

    #[test]
    fn halves_of_five_split_two_from_three() {
        let nodes = names(5);
        let grudge = Grudge::halves(&nodes);
        assert_eq!(view(&grudge, &nodes, "n2"), set(&["n1", "n2"]));
        assert_eq!(view(&grudge, &nodes, "n4"), set(&["n3", "n4", "n5"]));
        assert!(is_symmetric(&grudge, &nodes));
    }

    #[test]
    fn isolate_cuts_one_node_from_all_others_both_ways() {
        let nodes = names(5);
        let grudge = Grudge::isolate("n4", &nodes);
        assert_eq!(view(&grudge, &nodes, "n4"), set(&["n4"]));
        for other in nodes.iter().filter(|n| *n != "n4") {
            assert_eq!(view(&grudge, &nodes, other).len(), 4);
            assert!(!can_hear(&grudge, other, "n4"));
        }
    }

    #[test]
    fn ring_of_five_is_symmetric_and_each_node_hears_its_neighbours() {
        let nodes = names(5);
        let grudge = Grudge::majorities_ring(&nodes);
        assert!(is_symmetric(&grudge, &nodes));
        assert_eq!(view(&grudge, &nodes, "n1"), set(&["n5", "n1", "n2"]));
        assert_eq!(view(&grudge, &nodes, "n3"), set(&["n2", "n3", "n4"]));
        assert_eq!(view(&grudge, &nodes, "n5"), set(&["n4", "n5", "n1"]));
    }

    #[test]
    fn ring_of_three_gives_each_node_a_different_majority() {
        let nodes = names(3);
        let grudge = Grudge::majorities_ring(&nodes);
        let views: BTreeSet<_> = nodes.iter().map(|n| view(&grudge, &nodes, n)).collect();
        assert_eq!(views.len(), 3, "views must differ: {views:?}");
        for node in &nodes {
            assert_eq!(view(&grudge, &nodes, node).len(), 2);
        }
    }

    #[test]
    fn bridge_of_five_joins_two_cut_halves_through_one_node() {
        let nodes = names(5);
        let grudge = Grudge::bridge(&nodes);
        // Halves {n1, n2} and {n3, n4, n5}; n3 is the bridge.
        assert_eq!(Grudge::bridge_node(&nodes).map(String::as_str), Some("n3"));
        assert_eq!(
            view(&grudge, &nodes, "n3"),
            set(&["n1", "n2", "n3", "n4", "n5"])
        );
        assert_eq!(view(&grudge, &nodes, "n1"), set(&["n1", "n2", "n3"]));
        assert_eq!(view(&grudge, &nodes, "n5"), set(&["n3", "n4", "n5"]));
        assert!(is_symmetric(&grudge, &nodes));
    }

    #[test]
    fn a_bridge_through_a_chosen_node_leaves_the_others_on_their_sides() {
        let nodes = names(5);
        let grudge = Grudge::bridge_through("n5", &nodes);
        // n5 takes n3's place, n3 takes n5's: {n1, n2} | n5 | {n4, n3}.
        assert_eq!(view(&grudge, &nodes, "n5").len(), 5);
        assert_eq!(view(&grudge, &nodes, "n1"), set(&["n1", "n2", "n5"]));
        assert_eq!(view(&grudge, &nodes, "n3"), set(&["n3", "n4", "n5"]));
        assert_eq!(Grudge::bridge_through("n3", &nodes), Grudge::bridge(&nodes));
        assert_eq!(Grudge::bridge_through("n9", &nodes), Grudge::bridge(&nodes));
    }

    #[test]
    fn bridge_of_three_cuts_only_the_two_ends() {
        let nodes = names(3);
        let grudge = Grudge::bridge(&nodes);
        assert_eq!(grudge.links().len(), 2);
        assert!(!can_hear(&grudge, "n1", "n3"));
        assert!(!can_hear(&grudge, "n3", "n1"));
        assert_eq!(view(&grudge, &nodes, "n2").len(), 3);
    }

    #[test]
    fn one_way_of_three_leaves_the_first_node_unheard_but_hearing() {
        let nodes = names(3);
        let grudge = Grudge::one_way(&nodes);
        assert_eq!(view(&grudge, &nodes, "n1"), set(&["n1", "n2", "n3"]));
        assert_eq!(view(&grudge, &nodes, "n2"), set(&["n2", "n3"]));
        assert_eq!(view(&grudge, &nodes, "n3"), set(&["n2", "n3"]));
        let links: BTreeSet<Link> = grudge.links().into_iter().collect();
        let expected = [("n1", "n2"), ("n1", "n3")].map(|(from, to)| Link {
            from: from.into(),
            to: to.into(),
        });
        assert_eq!(links, BTreeSet::from(expected));
    }

    #[test]
    fn links_run_from_the_unheard_node_to_the_one_that_ignores_it() {
        let nodes = names(3);
        let grudge = Grudge::majorities_ring(&nodes);
        for link in grudge.links() {
            assert!(!can_hear(&grudge, &link.to, &link.from), "{link:?}");
        }
        let cut: usize = grudge.0.values().map(BTreeSet::len).sum();
        assert_eq!(grudge.links().len(), cut);
    }

    #[test]
    fn json_maps_each_node_to_the_nodes_it_does_not_hear() {
        let grudge = Grudge::isolate("n1", &names(3));
        assert_eq!(
            grudge.to_json(),
            serde_json::json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]})
        );
    }

    #[test]
    fn clusters_too_small_to_split_give_empty_grudges() {
        for n in 0..=2 {
            assert!(Grudge::majorities_ring(&names(n)).is_empty(), "ring of {n}");
            assert!(Grudge::bridge(&names(n)).is_empty(), "bridge of {n}");
        }
        assert!(Grudge::halves(&names(1)).is_empty());
        assert!(Grudge::one_way(&names(1)).is_empty());
    }

    fn shuffled_cluster() -> impl Strategy<Value = Vec<NodeName>> {
        (3usize..=9).prop_flat_map(|n| Just(names(n)).prop_shuffle())
    }

    proptest! {
        #[test]
        fn ring_gives_every_node_a_distinct_majority(order in shuffled_cluster()) {
            let grudge = Grudge::majorities_ring(&order);
            let n = order.len();
            let views: BTreeSet<_> = order.iter().map(|node| view(&grudge, &order, node)).collect();
            prop_assert_eq!(views.len(), n);
            for node in &order {
                let seen = view(&grudge, &order, node);
                prop_assert_eq!(seen.len(), n / 2 + 1);
                prop_assert!(seen.contains(node));
            }
        }

        #[test]
        fn halves_leave_at_most_one_side_with_a_majority(order in shuffled_cluster()) {
            let grudge = Grudge::halves(&order);
            prop_assert!(is_symmetric(&grudge, &order));
            let n = order.len();
            let majority_holders = order
                .iter()
                .filter(|node| view(&grudge, &order, node).len() > n / 2)
                .count();
            // An even cluster splits into equal halves, neither with a majority.
            let expected = if n % 2 == 1 { n - n / 2 } else { 0 };
            prop_assert_eq!(majority_holders, expected);
        }

        #[test]
        fn one_way_cuts_exactly_the_links_from_one_half_to_the_other(
            order in shuffled_cluster(),
        ) {
            let grudge = Grudge::one_way(&order);
            let (a, b) = order.split_at(order.len() / 2);
            for speaker in &order {
                for listener in &order {
                    let cut = a.contains(speaker) && b.contains(listener);
                    prop_assert_eq!(
                        can_hear(&grudge, listener, speaker),
                        !cut,
                        "{} hears {}?", listener, speaker
                    );
                }
            }
            prop_assert_eq!(grudge.links().len(), a.len() * b.len());
        }

        #[test]
        fn bridge_node_hears_all_and_the_sides_stay_cut(order in shuffled_cluster()) {
            let grudge = Grudge::bridge(&order);
            let bridge = Grudge::bridge_node(&order).expect("a bridge of three or more");
            prop_assert!(is_symmetric(&grudge, &order));
            prop_assert_eq!(view(&grudge, &order, bridge).len(), order.len());
            for node in &order {
                prop_assert!(can_hear(&grudge, node, bridge));
            }
            prop_assert!(!can_hear(&grudge, &order[0], &order[order.len() - 1]));
        }
    }
}
