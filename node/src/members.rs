//! The fixed set of members, and the Raft ids every node derives from their names.

use crate::raft::NodeId;

/// The fixed set of members. Raft ids are positions in the sorted list of names, so every
/// node that is given the same members derives the same ids.
#[derive(Clone, Debug)]
pub struct Members {
    names: Vec<String>,
    own: NodeId,
}

impl Members {
    /// Builds the membership from this node's name and its peers' names.
    pub fn new(
        own_name: &str,
        peer_names: impl IntoIterator<Item = String>,
    ) -> Result<Members, String> {
        let mut names: Vec<String> = peer_names.into_iter().collect();
        if names.iter().any(|n| n == own_name) {
            return Err(format!("--peers lists this node's own name `{own_name}`"));
        }
        names.push(own_name.to_string());
        names.sort();
        if let Some(dup) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("--peers lists `{}` twice", dup[0]));
        }
        let own = names
            .iter()
            .position(|n| n == own_name)
            .expect("just pushed") as NodeId
            + 1;
        Ok(Members { names, own })
    }

    /// Every member's name, sorted (so the name of id `i` is at `i - 1`).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// This node's Raft id.
    pub fn own_id(&self) -> NodeId {
        self.own
    }

    /// Every member's Raft id, including this node's.
    pub fn ids(&self) -> Vec<NodeId> {
        (1..=self.names.len() as NodeId).collect()
    }

    /// The Raft id of a member name.
    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| i as NodeId + 1)
    }

    /// The name of a Raft id; ids outside the membership show as `?<id>`.
    pub fn name_of(&self, id: NodeId) -> String {
        (id as usize)
            .checked_sub(1)
            .and_then(|i| self.names.get(i))
            .cloned()
            .unwrap_or_else(|| format!("?{id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_derives_the_same_ids() {
        let a = Members::new("n2", ["n1".into(), "n3".into()]).unwrap();
        let b = Members::new("n3", ["n2".into(), "n1".into()]).unwrap();
        assert_eq!(a.id_of("n3"), b.id_of("n3"));
        assert_eq!(a.own_id(), b.id_of("n2").unwrap());
        assert_eq!(a.name_of(b.own_id()), "n3");
        assert_eq!(a.ids(), vec![1, 2, 3]);
        assert_eq!(a.name_of(9), "?9");
    }

    #[test]
    fn duplicate_or_self_peers_are_rejected() {
        assert!(Members::new("n1", ["n1".into()]).is_err());
        assert!(Members::new("n1", ["n2".into(), "n2".into()]).is_err());
    }
}
