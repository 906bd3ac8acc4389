//! Following a command's process tree through `/proc`: every descendant of
//! the root, found by the parent links of `/proc/*/stat` at each sample, so
//! that workers forked late and workers re-forked after one died are found
//! too. Each new process gets a copy-on-write baseline: its parent's memory
//! at the moment the process was first seen.
//!
//! allocbench is a subreaper ([`contain`]): a process whose parent ends
//! (a daemon's double fork) is re-parented to allocbench and stays in the
//! tree, as do its descendants; one adopted before it was ever seen is
//! marked `adopted`. The load command's tree is followed too, so that what
//! leaves it is neither measured nor left running.

mod checks;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::check::{Environ, Expect, Verdict};
use super::roles::{Node, roles};
use super::watchdog::Watchdog;
use crate::exec::contain;
use crate::results::measure::MeasuredProcess;
use crate::results::{Mem, Millis, ProcessRole, ProcessSample, TreeSample};
use crate::sample::cow::{CowBaseline, CowError};
use crate::sample::smaps::{SampleError, sample, sample_counters};
use crate::sample::stat::{Image, Stat, all_stats};
use crate::sample::timeline::Depth;

struct Tracked {
    pid: i32,
    starttime: u64,
    parent: Option<i32>,
    depth: u32,
    index: Option<u32>,
    command: String,
    first_seen_ms: Millis,
    last_seen_ms: Millis,
    gone: bool,
    /// The parent's memory when this process was first seen, and the
    /// parent's image then (to notice an exec later).
    baseline: Option<(Arc<CowBaseline>, Image)>,
    cow_baseline_ms: Option<Millis>,
    cow_missed: Option<String>,
    /// When its memory was first read, and its `Private_Dirty` then.
    first_sample: Option<(Millis, u64)>,
    /// Re-parented to allocbench before it was first seen.
    adopted: bool,
    /// Its program's image now (an exec changes it).
    image: Image,
    /// The environment its program started with.
    environ: Environ,
    /// Its command line when its program started (`comm` when empty).
    cmdline: String,
    /// Its place in the tree at the last walk.
    role: ProcessRole,
    /// The variant's check of its program; `None` until checked (again,
    /// after an exec).
    verdict: Option<Verdict>,
    /// When its check last ran, and how many checks in a row found the
    /// variant not in effect.
    checked_ms: Millis,
    failures: u32,
}

/// What the tracker checks each process against.
pub struct Checking {
    pub expect: Expect,
    /// The root's environment block read right after it started (before
    /// a process title can overwrite it).
    pub root_environ: Option<Vec<u8>>,
    /// Processes whose command line matches are not part of the server.
    pub ignore: Option<regex::Regex>,
}

/// Between two checks of a process found without the variant: an exec
/// caught before the dynamic linker mapped the preloaded library is
/// checked again before the row fails.
const RECHECK_MS: Millis = 50.0;

/// The processes of one command's tree, as far as seen.
pub struct Tracker {
    root: i32,
    procs: Vec<Tracked>,
    next_index: u32,
    /// Told of every process found, to kill it if allocbench dies.
    watchdog: Option<Arc<Watchdog>>,
    /// The load command while it runs, and every process seen in its tree.
    load: Option<i32>,
    load_tree: Vec<(i32, u64)>,
    checking: Option<Checking>,
}

impl Tracker {
    pub fn new(root: i32, watchdog: Option<Arc<Watchdog>>) -> Tracker {
        Tracker {
            root,
            procs: Vec::new(),
            next_index: 0,
            watchdog,
            load: None,
            load_tree: Vec::new(),
            checking: None,
        }
    }

    /// Checks every process against the variant as it is first seen, and
    /// again after an exec.
    pub fn checking(mut self, checking: Checking) -> Tracker {
        self.checking = Some(checking);
        self
    }

    /// The load command `pid` runs (or, with `None`, has ended): its tree
    /// is not the command's.
    pub fn set_load(&mut self, pid: Option<i32>) {
        self.load = pid;
    }

    /// Every process seen in the load command's tree.
    pub fn load_tree(&self) -> Vec<(i32, u64)> {
        self.load_tree.clone()
    }

    /// Where the command's tree starts now: the root while it runs, and
    /// each process allocbench adopted that is not the load command's;
    /// each with whether it is adopted. The load's tree is noted on the way.
    fn tops<'s>(
        &mut self,
        stats: &'s [Stat],
        children: &HashMap<i32, Vec<&'s Stat>>,
    ) -> Vec<(&'s Stat, bool)> {
        contain::reap_adopted(stats);
        let adopted = contain::adopted(stats);
        let mut load: Vec<&Stat> = stats
            .iter()
            .filter(|s| {
                !s.zombie
                    && (Some(s.pid) == self.load
                        || (adopted.contains(&(s.pid, s.starttime))
                            && self.load_tree.contains(&(s.pid, s.starttime))))
            })
            .collect();
        while let Some(s) = load.pop() {
            if !self.load_tree.contains(&(s.pid, s.starttime)) {
                self.load_tree.push((s.pid, s.starttime));
                if let Some(w) = &self.watchdog {
                    w.process(s.pid, s.starttime);
                }
            }
            load.extend(children.get(&s.pid).into_iter().flatten().copied());
        }
        let mut tops: Vec<(&Stat, bool)> = stats
            .iter()
            .filter(|s| !s.zombie && s.pid == self.root)
            .map(|s| (s, false))
            .collect();
        tops.extend(
            stats
                .iter()
                .filter(|s| {
                    adopted.contains(&(s.pid, s.starttime))
                        && !self.load_tree.contains(&(s.pid, s.starttime))
                })
                .map(|s| (s, true)),
        );
        tops
    }

    /// Whether any process of the command's tree runs (the root may have
    /// ended, leaving a daemon).
    pub fn alive(&mut self) -> bool {
        let stats = all_stats();
        let children = children_of(&stats);
        !self.tops(&stats, &children).is_empty()
    }

    /// Walks the tree from the root now, registering new processes and
    /// marking those no longer in it as gone. Returns the positions of the
    /// live ones in `procs`, parents before children.
    fn discover(&mut self, t_ms: Millis) -> Vec<usize> {
        let stats = all_stats();
        let by_pid: HashMap<i32, &Stat> = stats.iter().map(|s| (s.pid, s)).collect();
        let children = children_of(&stats);
        let mut order: Vec<(&Stat, Option<i32>, u32, bool)> = Vec::new();
        let mut queue = VecDeque::new();
        for (top, adopted) in self.tops(&stats, &children) {
            let (parent, depth) = if adopted {
                (Some(top.ppid), 1)
            } else {
                (None, 0)
            };
            queue.push_back((top, parent, depth, adopted));
        }
        while let Some((s, parent, depth, adopted)) = queue.pop_front() {
            order.push((s, parent, depth, adopted));
            for k in children.get(&s.pid).into_iter().flatten() {
                queue.push_back((*k, Some(s.pid), depth + 1, false));
            }
        }

        // One capture per parent per walk, shared by its new children.
        let mut captured: HashMap<i32, Result<Arc<CowBaseline>, CowError>> = HashMap::new();
        let mut live = Vec::with_capacity(order.len());
        for (s, parent, depth, adopted) in order {
            let known = self
                .procs
                .iter()
                .position(|p| !p.gone && p.pid == s.pid && p.starttime == s.starttime);
            let at = match known {
                Some(at) => {
                    let p = &mut self.procs[at];
                    p.last_seen_ms = t_ms;
                    p.command = s.comm.clone();
                    if let Some((_, parent_image)) = &p.baseline
                        && *parent_image != s.image
                    {
                        p.baseline = None;
                        p.cow_baseline_ms = None;
                        p.cow_missed = Some(exec_note(s.pid));
                    }
                    if p.image != s.image {
                        // Another program: its environment and libraries anew.
                        p.image = s.image;
                        p.environ = Environ::read(s.pid);
                        p.cmdline = cmdline(s.pid, &s.comm);
                        p.verdict = None;
                        p.failures = 0;
                    }
                    at
                }
                None => {
                    let (mut baseline, mut cow_baseline_ms, mut cow_missed) = (None, None, None);
                    if adopted {
                        cow_missed = Some(format!(
                            "process {} was adopted by allocbench before it was seen (its parent had ended): what it inherited is unknown",
                            s.pid
                        ));
                    } else if let Some(ppid) = parent {
                        let parent_image = by_pid.get(&ppid).map(|p| p.image);
                        if parent_image != Some(s.image) {
                            cow_missed = Some(exec_note(s.pid));
                        } else {
                            match captured
                                .entry(ppid)
                                .or_insert_with(|| CowBaseline::capture(ppid).map(Arc::new))
                                .clone()
                            {
                                Ok(b) => {
                                    baseline = Some((b, s.image));
                                    cow_baseline_ms = Some(t_ms);
                                }
                                // Kept in the record as text.
                                Err(e) => cow_missed = Some(e.to_string()),
                            }
                        }
                    }
                    if let Some(w) = &self.watchdog {
                        w.process(s.pid, s.starttime);
                    }
                    let parent_at = parent
                        .and_then(|ppid| self.procs.iter().position(|q| !q.gone && q.pid == ppid));
                    let environ = match (
                        s.pid == self.root,
                        self.checking
                            .as_ref()
                            .and_then(|c| c.root_environ.as_deref()),
                    ) {
                        (true, Some(block)) => Environ::of(block),
                        _ => Environ::read(s.pid),
                    };
                    // A forked child whose block was overwritten by a
                    // title has its parent's variables.
                    let environ = match (&environ, parent_at) {
                        (Environ::Unknown(_), Some(pa))
                            if self.procs[pa].image == s.image && !adopted =>
                        {
                            self.procs[pa].environ.inherited().unwrap_or(environ)
                        }
                        _ => environ,
                    };
                    let index = parent.map(|_| {
                        self.next_index += 1;
                        self.next_index - 1
                    });
                    self.procs.push(Tracked {
                        pid: s.pid,
                        starttime: s.starttime,
                        parent,
                        depth,
                        index,
                        command: s.comm.clone(),
                        first_seen_ms: t_ms,
                        last_seen_ms: t_ms,
                        gone: false,
                        baseline,
                        cow_baseline_ms,
                        cow_missed,
                        first_sample: None,
                        adopted,
                        image: s.image,
                        environ,
                        cmdline: cmdline(s.pid, &s.comm),
                        role: ProcessRole::Worker,
                        verdict: None,
                        checked_ms: t_ms,
                        failures: 0,
                    });
                    self.procs.len() - 1
                }
            };
            live.push(at);
        }
        for (i, p) in self.procs.iter_mut().enumerate() {
            if !p.gone && !live.contains(&i) {
                p.gone = true;
            }
        }
        self.assign_roles(&live);
        self.check(&live, t_ms);
        live
    }

    /// Roles by the tree's structure ([`roles`]); `--ignore-process`
    /// overrides.
    fn assign_roles(&mut self, live: &[usize]) {
        let nodes: Vec<Node> = live
            .iter()
            .map(|&at| {
                let p = &self.procs[at];
                Node {
                    pid: p.pid,
                    parent: p.parent.filter(|_| !p.adopted),
                    image: p.image,
                }
            })
            .collect();
        let ignore = self.checking.as_ref().and_then(|c| c.ignore.as_ref());
        for (&at, role) in live.iter().zip(roles(&nodes)) {
            let p = &mut self.procs[at];
            p.role = match ignore {
                Some(re) if re.is_match(&p.cmdline) => ProcessRole::Ignored,
                _ => role,
            };
        }
    }

    /// Finds the tree and samples every process of it: `smaps_rollup`, and
    /// for each descendant its pagemap against its baseline. A process that
    /// ends between being found and being read is not part of the sample.
    ///
    /// A process's PSS depends on how many processes share its pages when
    /// it is read: a worker forked (or ended) while the tree is read would
    /// make the sum wrong, so a sample during which the tree changed is
    /// taken again (a few times at most).
    pub fn sample(&mut self, t_ms: Millis) -> TreeSample {
        self.sample_with(t_ms, Depth::WalkCow)
    }

    /// [`Self::sample`] reading each process to `depth`: at
    /// [`Depth::Counters`] only the kernel's counters (RSS, anonymous), but
    /// a process seen for the first time walks whatever the depth (its
    /// `Private_Dirty` at first sight tells whether its fork was seen).
    pub fn sample_with(&mut self, t_ms: Millis, depth: Depth) -> TreeSample {
        let mut live = self.discover(t_ms);
        if depth == Depth::Counters {
            // RSS and anonymous memory do not depend on who else maps a
            // page: no second walk of the tree to make the sum consistent.
            return self.sample_once(t_ms, &live, depth);
        }
        for _ in 0..4 {
            let s = self.sample_once(t_ms, &live, depth);
            let after = self.discover(t_ms);
            let same = |p: &TreeSample| {
                after.len() == p.processes.len()
                    && after
                        .iter()
                        .zip(&p.processes)
                        .all(|(&at, q)| self.procs[at].pid == q.pid)
            };
            if same(&s) {
                return s;
            }
            live = after;
        }
        self.sample_once(t_ms, &live, depth)
    }

    fn sample_once(&mut self, t_ms: Millis, live: &[usize], depth: Depth) -> TreeSample {
        let mut processes = Vec::with_capacity(live.len());
        for &at in live {
            let p = &mut self.procs[at];
            let role = p.role;
            let walk = depth != Depth::Counters || p.first_sample.is_none();
            let read = if walk {
                sample(p.pid)
            } else {
                sample_counters(p.pid)
            };
            let (mem, missed) = match read {
                Ok(m) => {
                    if walk {
                        p.first_sample.get_or_insert((t_ms, m.private_dirty));
                    }
                    (Some(m), None)
                }
                Err(SampleError::Gone(_)) => {
                    p.gone = true;
                    continue;
                }
                Err(e) => (None, Some(e.to_string())),
            };
            let (cow, cow_missed) = match (&p.baseline, &mem) {
                (_, Some(_)) if depth != Depth::WalkCow => (None, None),
                (Some((b, _)), Some(_)) => match b.scan(p.pid) {
                    Ok(c) => (Some(c), None),
                    Err(e) => (None, Some(e.to_string())),
                },
                _ => (None, p.cow_missed.clone()),
            };
            processes.push(ProcessSample {
                pid: p.pid,
                role,
                index: p.index,
                mem,
                missed,
                cow,
                cow_missed,
            });
        }
        let mut tree = Mem::default();
        for m in processes.iter().filter_map(|p| p.mem.as_ref()) {
            tree.add(m);
        }
        TreeSample {
            requests: 0,
            t_ms,
            tree,
            processes,
        }
    }

    /// (pid, start time) of every process not known to be gone, to make
    /// sure none is left behind.
    pub fn not_gone(&self) -> Vec<(i32, u64)> {
        self.procs
            .iter()
            .filter(|p| !p.gone)
            .map(|p| (p.pid, p.starttime))
            .collect()
    }

    /// Every process seen, for the result.
    pub fn record(&self) -> Vec<MeasuredProcess> {
        self.procs
            .iter()
            .map(|p| MeasuredProcess {
                pid: p.pid,
                parent: p.parent,
                depth: p.depth,
                role: p.role,
                index: p.index,
                command: p.command.clone(),
                first_seen_ms: p.first_seen_ms,
                last_seen_ms: p.last_seen_ms,
                gone: p.gone,
                cow_baseline_ms: p.cow_baseline_ms,
                cow_missed: p.cow_missed.clone(),
                first_sample_ms: p.first_sample.map(|f| f.0),
                private_dirty_first: p.first_sample.map(|f| f.1),
                adopted: p.adopted,
                check: p.verdict.as_ref().map(Verdict::describe),
            })
            .collect()
    }
}

/// Each process's live children, by pid.
fn children_of(stats: &[Stat]) -> HashMap<i32, Vec<&Stat>> {
    let mut children: HashMap<i32, Vec<&Stat>> = HashMap::new();
    for s in stats.iter().filter(|s| !s.zombie) {
        children.entry(s.ppid).or_default().push(s);
    }
    for kids in children.values_mut() {
        kids.sort_by_key(|k| k.pid);
    }
    children
}

impl Tracked {
    /// The master or a worker: the variant must be in effect in it.
    fn is_server(&self) -> bool {
        matches!(self.role, ProcessRole::Master | ProcessRole::Worker)
    }
}

/// Process `pid`'s command line, its arguments joined by spaces; `comm`
/// when it has none.
fn cmdline(pid: i32, comm: &str) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| comm.to_string())
}

fn exec_note(pid: i32) -> String {
    format!(
        "process {pid} runs another program than its parent (exec): it inherited no memory to copy"
    )
}
