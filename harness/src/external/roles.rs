//! Roles by the tree's structure: which process of a measured (or
//! inspected) tree is the server's master, which are its workers, and which
//! only launched it, run beside it, or are programs it runs.

use std::collections::HashMap;

use crate::results::ProcessRole;
use crate::sample::stat::Image;

/// A process of a tree, for [`roles`].
#[derive(Debug, Clone, Copy)]
pub struct Node {
    pub pid: i32,
    /// Its parent, when that is a node too (a top has none).
    pub parent: Option<i32>,
    pub image: Image,
}

/// Roles by the tree's structure, in `nodes`' order, for each top (a node
/// without a parent among them): the master is the shallowest process that
/// has forked a child without exec (the child runs the same image), or,
/// when none has, the end of the chain of only children from the top
/// (`sh -c 'server; exit'`); the processes above it are launchers, those
/// below it workers, the rest others (and, below a master that forks,
/// the programs it or its workers exec, with what they start). A process whose `stat` hides its
/// addresses (zeros: one that may not be traced) counts as forked.
pub fn roles(nodes: &[Node]) -> Vec<ProcessRole> {
    let pos: HashMap<i32, usize> = nodes.iter().enumerate().map(|(i, n)| (n.pid, i)).collect();
    let parent = |i: usize| nodes[i].parent.and_then(|pp| pos.get(&pp).copied());
    let mut kids: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..nodes.len() {
        if let Some(p) = parent(i) {
            kids.entry(p).or_default().push(i);
        }
    }
    let children = |i: usize| kids.get(&i).cloned().unwrap_or_default();
    let below = |from: usize| {
        let mut all = vec![from];
        let mut j = 0;
        while j < all.len() {
            all.extend(children(all[j]));
            j += 1;
        }
        all
    };
    let forks = |i: usize| {
        children(i).iter().any(|&k| {
            let image = nodes[k].image;
            image == nodes[i].image || image.startstack == 0
        })
    };
    let mut out = vec![ProcessRole::Other; nodes.len()];
    for top in (0..nodes.len()).filter(|&i| parent(i).is_none()) {
        // Breadth first: the shallowest wins.
        let tree = below(top);
        let forking = tree.iter().copied().find(|&i| forks(i));
        let master = forking.unwrap_or_else(|| {
            let mut i = top;
            while let [only] = children(i)[..] {
                i = only;
            }
            i
        });
        for i in below(master) {
            out[i] = ProcessRole::Worker;
        }
        // Below a master that forks its workers, a process that runs
        // another program (a helper it spawned: `sleep`, `git`, a log
        // shipper) is not a worker, nor is what it starts.
        if forking.is_some() {
            for i in below(master).into_iter().skip(1) {
                let image = nodes[i].image;
                let exec =
                    parent(i).is_some_and(|p| nodes[p].image != image) && image.startstack != 0;
                if exec {
                    for j in below(i) {
                        out[j] = ProcessRole::Other;
                    }
                }
            }
        }
        let mut up = parent(master);
        while let Some(i) = up {
            out[i] = ProcessRole::Launcher;
            up = parent(i);
        }
        out[master] = ProcessRole::Master;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProcessRole::{Launcher, Master, Other, Worker};

    fn image(n: u64) -> Image {
        Image {
            startcode: n,
            startstack: n,
            start_brk: Some(n),
        }
    }

    fn node(pid: i32, parent: Option<i32>, img: u64) -> Node {
        Node {
            pid,
            parent,
            image: image(img),
        }
    }

    #[test]
    fn the_master_is_the_process_that_forks_the_workers() {
        // sh -c 'unicorn …; exit $?': sh → ruby master → two forked workers.
        let wrapped = [
            node(1, None, 1),
            node(2, Some(1), 2),
            node(3, Some(2), 2),
            node(4, Some(2), 2),
        ];
        assert_eq!(roles(&wrapped), [Launcher, Master, Worker, Worker]);
        // Exec'd directly: the root is the master; a worker's forked child
        // is a worker too, a program it or the master runs is not.
        let direct = [
            node(1, None, 1),
            node(2, Some(1), 1),
            node(3, Some(2), 1),
            node(4, Some(2), 9),
            node(5, Some(4), 9),
            node(6, Some(1), 8),
        ];
        assert_eq!(
            roles(&direct),
            [Master, Worker, Worker, Other, Other, Other]
        );
        // `server | tee log` under sh: tee is beside the master.
        let piped = [
            node(1, None, 1),
            node(2, Some(1), 2),
            node(3, Some(1), 3),
            node(4, Some(2), 2),
        ];
        assert_eq!(roles(&piped), [Launcher, Master, Other, Worker]);
    }

    #[test]
    fn without_a_fork_the_chain_of_only_children_ends_at_the_master() {
        let chain = [node(1, None, 1), node(2, Some(1), 2), node(3, Some(2), 3)];
        assert_eq!(roles(&chain), [Launcher, Launcher, Master]);
        // Two programs started by one shell: the shell is the master.
        let two = [node(1, None, 1), node(2, Some(1), 2), node(3, Some(1), 3)];
        assert_eq!(roles(&two), [Master, Worker, Worker]);
        assert_eq!(roles(&[node(1, None, 1)]), [Master]);
        // A child whose addresses are hidden counts as forked.
        let hidden = [node(1, None, 1), node(2, Some(1), 0)];
        assert_eq!(roles(&hidden), [Master, Worker]);
        // Each top (an adopted daemon beside the root) has its own master.
        let daemon = [node(1, None, 1), node(5, None, 5), node(6, Some(5), 5)];
        assert_eq!(roles(&daemon), [Master, Master, Worker]);
    }
}
