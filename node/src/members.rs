//! The nodes a node knows by name (itself and `--peers`), and the Raft ids every node
//! derives from those names; the data dir remembers the ids, so that they never change
//! under a log and votes that use them.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::raft::NodeId;

/// Where a data dir keeps the ids it was started with: one `ID NAME` line each.
const IDS_FILE: &str = "member-ids";

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

    /// The names of `ids`, in their order ([`Members::name_of`] each).
    pub fn names_of<'a>(&self, ids: impl IntoIterator<Item = &'a NodeId>) -> Vec<String> {
        ids.into_iter().map(|&id| self.name_of(id)).collect()
    }
}

impl Members {
    /// Ties `data_dir` to these ids: the first start writes them down (durably); a later
    /// start must give every name written down the same id. New names may be added if they
    /// sort after the others (so that no id moves). Refuses otherwise, saying why.
    pub fn bind(&self, data_dir: &Path) -> Result<(), String> {
        let path = data_dir.join(IDS_FILE);
        let written = match fs::read_to_string(&path) {
            Ok(content) => content,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let mut moved = Vec::new();
        for line in written.lines() {
            let (id, name) = line
                .split_once(' ')
                .and_then(|(id, name)| Some((id.parse::<NodeId>().ok()?, name)))
                .ok_or_else(|| format!("{} holds an unreadable line {line:?}", path.display()))?;
            match self.id_of(name) {
                Some(now) if now == id => {}
                now => moved.push(format!(
                    "{name} was {id}, now {}",
                    now.map_or("unknown".to_string(), |now| now.to_string())
                )),
            }
        }
        if !moved.is_empty() {
            return Err(format!(
                "this data dir was started with other member names ({}): a node's Raft id is \
                 its place among the sorted names of --id and --peers, and votes and \
                 configurations in the log use them; give every node the same names, and add \
                 new ones only if they sort after the others",
                moved.join(", ")
            ));
        }
        let current: String = self
            .names
            .iter()
            .enumerate()
            .map(|(at, name)| format!("{} {name}\n", at + 1))
            .collect();
        if current == written {
            return Ok(());
        }
        let temp = data_dir.join(format!("{IDS_FILE}.tmp"));
        let write = || -> io::Result<()> {
            let mut file = File::create(&temp)?;
            file.write_all(current.as_bytes())?;
            file.sync_all()?;
            fs::rename(&temp, &path)?;
            File::open(data_dir)?.sync_all()
        };
        write().map_err(|e| format!("writing {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_keeps_its_ids_and_takes_new_names_only_after_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let three = Members::new("n1", ["n2".into(), "n3".into()]).unwrap();
        three.bind(dir.path()).unwrap();
        three.bind(dir.path()).unwrap();
        let four = Members::new("n1", ["n2".into(), "n3".into(), "n4".into()]).unwrap();
        four.bind(dir.path()).unwrap();
        // "a1" sorts first and would renumber everyone.
        let renumbered = Members::new("n1", ["a1", "n2", "n3", "n4"].map(String::from)).unwrap();
        let error = renumbered.bind(dir.path()).unwrap_err();
        assert!(error.contains("n1 was 1, now 2"), "{error}");
        // Dropping a name is refused too: its id would be taken by none, or by another.
        let error = three.bind(dir.path()).unwrap_err();
        assert!(error.contains("n4 was 4, now unknown"), "{error}");
    }

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
