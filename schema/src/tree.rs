//! The transcript tree: which entries are on a session's active branch.
//!
//! pi and OpenClaw transcripts are trees linked by `parentId`. The active leaf
//! is the **last entry in file order**; the active branch is the path from that
//! leaf up to the root (pi `SessionManager.buildSessionContext`, see
//! `shared/docs/openclaw-formats.md` §1.9). Entries on other paths are abandoned
//! sibling branches. A `parentId` that points at an entry absent from the file
//! ends the walk there (the orphan is kept, the path is just shorter).

use std::collections::{HashMap, HashSet};

/// One node: its entry id, its parent's entry id, and its position in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode<'a> {
    pub entry_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub seq: i64,
}

/// Entry ids on the active branch of one session.
///
/// The leaf is the node with the highest `seq`. Cycles (possible only in
/// corrupt input) stop the walk at the first repeated id.
pub fn active_branch<'a>(nodes: &[TreeNode<'a>]) -> HashSet<&'a str> {
    let Some(leaf) = nodes.iter().max_by_key(|n| n.seq) else {
        return HashSet::new();
    };
    let parents: HashMap<&str, Option<&str>> =
        nodes.iter().map(|n| (n.entry_id, n.parent_id)).collect();
    let mut on_branch = HashSet::new();
    let mut current = Some(leaf.entry_id);
    while let Some(id) = current {
        let Some(parent) = parents.get(id) else {
            break; // a parent absent from the file: the path ends here
        };
        if !on_branch.insert(id) {
            break;
        }
        current = *parent;
    }
    on_branch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(id: &'a str, parent: Option<&'a str>, seq: i64) -> TreeNode<'a> {
        TreeNode {
            entry_id: id,
            parent_id: parent,
            seq,
        }
    }

    #[test]
    fn last_entry_in_file_order_is_the_leaf() {
        // a - b - c
        //      \- d   (d appended last, so b's first child c is abandoned)
        let nodes = [
            node("a", None, 1),
            node("b", Some("a"), 2),
            node("c", Some("b"), 3),
            node("d", Some("b"), 4),
        ];
        let branch = active_branch(&nodes);
        assert_eq!(branch, HashSet::from(["a", "b", "d"]));
    }

    #[test]
    fn orphan_parent_ends_the_walk_without_error() {
        let nodes = [node("a", None, 1), node("z", Some("missing"), 2)];
        assert_eq!(active_branch(&nodes), HashSet::from(["z"]));
    }

    #[test]
    fn cycles_terminate() {
        let nodes = [node("a", Some("b"), 1), node("b", Some("a"), 2)];
        assert_eq!(active_branch(&nodes), HashSet::from(["a", "b"]));
        assert!(active_branch(&[]).is_empty());
    }
}
