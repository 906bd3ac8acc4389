//! Page-exact copy-on-write accounting.
//!
//! At the fork the harness records the master's writable private mappings
//! (the memory a worker inherits) and which of their pages were present. For
//! a worker, `/proc/PID/pagemap` then tells, page by page, whether an
//! inherited page is still shared (mapped by more than one process) or
//! exclusive (the worker's own copy: copied since the fork). Pages the master
//! did not have at the fork and the worker's mappings outside the inherited
//! ranges are the worker's new memory, counted apart.

use std::collections::BTreeMap;

use procfs::process::{MMPermissions, MMapPath, PageInfo, Process};
use serde::{Deserialize, Serialize};

use crate::result::Bytes;

/// What kind of memory a mapping is, for `cow_by_mapping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MappingKind {
    /// The brk heap.
    Heap,
    /// Anonymous mappings (mmap'd allocator chunks and arenas).
    Anonymous,
    /// The main thread's stack.
    Stack,
    /// Private writable file mappings (a library's or the executable's data).
    File,
}

impl MappingKind {
    pub fn name(self) -> &'static str {
        match self {
            MappingKind::Heap => "heap",
            MappingKind::Anonymous => "anonymous",
            MappingKind::Stack => "stack",
            MappingKind::File => "file",
        }
    }
}

/// One writable private mapping of the master at the fork.
#[derive(Debug, Clone)]
struct Inherited {
    start: u64,
    end: u64,
    kind: MappingKind,
    /// One bit per page: present in the master at the fork.
    present: Vec<u64>,
}

impl Inherited {
    fn was_present(&self, page: usize) -> bool {
        self.present[page / 64] & (1 << (page % 64)) != 0
    }
}

/// The master's inheritable memory at the fork.
#[derive(Debug, Clone)]
pub struct CowBaseline {
    ranges: Vec<Inherited>,
    page_size: u64,
}

/// Pages of one mapping kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CowCount {
    /// Inherited pages now exclusive to the worker: copied since the fork.
    pub copied_pages: u64,
    /// Inherited pages still shared with the master (or other workers).
    pub shared_pages: u64,
    pub copied: Bytes,
    pub shared: Bytes,
}

/// One worker's copy-on-write state at one sample.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CowSample {
    /// Bytes of inherited pages copied since the fork.
    pub cow_copied: Bytes,
    /// Bytes of inherited pages still shared.
    pub cow_shared: Bytes,
    pub cow_copied_pages: u64,
    pub cow_shared_pages: u64,
    /// Per mapping kind (`heap`, `anonymous`, `stack`, `file`).
    pub cow_by_mapping: BTreeMap<MappingKind, CowCount>,
    /// Bytes of the worker's own new memory: pages inside the inherited
    /// ranges that the master did not have at the fork, and present pages of
    /// writable private mappings outside them (new arenas, thread stacks).
    pub cow_new: Bytes,
}

fn kind_of(path: &MMapPath) -> Option<MappingKind> {
    match path {
        MMapPath::Heap => Some(MappingKind::Heap),
        MMapPath::Stack => Some(MappingKind::Stack),
        MMapPath::Anonymous => Some(MappingKind::Anonymous),
        MMapPath::Path(_) => Some(MappingKind::File),
        // Thread stacks appear as anonymous mappings in current kernels;
        // vdso/vvar/vsyscall are not writable private memory.
        MMapPath::TStack(_) => Some(MappingKind::Stack),
        _ => None,
    }
}

fn writable_private(process: &Process) -> procfs::ProcResult<Vec<(u64, u64, MappingKind)>> {
    Ok(process
        .maps()?
        .0
        .into_iter()
        .filter(|m| {
            m.perms.contains(MMPermissions::WRITE) && m.perms.contains(MMPermissions::PRIVATE)
        })
        .filter_map(|m| kind_of(&m.pathname).map(|k| (m.address.0, m.address.1, k)))
        .collect())
}

/// Reads the pagemap entries of `start..end` (page-aligned addresses).
fn pages(
    pagemap: &mut procfs::process::PageMap,
    start: u64,
    end: u64,
    page_size: u64,
) -> procfs::ProcResult<Vec<PageInfo>> {
    let (first, last) = ((start / page_size) as usize, (end / page_size) as usize);
    pagemap.get_range_info(first..last)
}

fn present_exclusive(p: &PageInfo) -> (bool, bool) {
    use procfs::process::{MemoryPageFlags, SwapPageFlags};
    match p {
        PageInfo::MemoryPage(f) => (
            f.contains(MemoryPageFlags::PRESENT),
            f.contains(MemoryPageFlags::MMAP_EXCLUSIVE),
        ),
        // A swapped-out page is the process's own but not resident.
        PageInfo::SwapPage(f) => (false, f.contains(SwapPageFlags::MMAP_EXCLUSIVE)),
    }
}

/// Why CoW accounting is not available for a process.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("pagemap of {pid}: {message}")]
pub struct CowError {
    pub pid: i32,
    pub message: String,
}

fn err(pid: i32) -> impl Fn(procfs::ProcError) -> CowError {
    move |e| CowError {
        pid,
        message: e.to_string(),
    }
}

impl CowBaseline {
    /// Records `master`'s writable private mappings and their present pages.
    /// Call it while the master cannot change its memory (blocked after the
    /// fork).
    pub fn capture(master: i32) -> Result<CowBaseline, CowError> {
        let page_size = procfs::page_size();
        let process = Process::new(master).map_err(err(master))?;
        let maps = writable_private(&process).map_err(err(master))?;
        let mut pagemap = process.pagemap().map_err(err(master))?;
        let mut ranges = Vec::with_capacity(maps.len());
        for (start, end, kind) in maps {
            let infos = pages(&mut pagemap, start, end, page_size).map_err(err(master))?;
            let mut present = vec![0u64; infos.len().div_ceil(64)];
            for (i, info) in infos.iter().enumerate() {
                if present_exclusive(info).0 {
                    present[i / 64] |= 1 << (i % 64);
                }
            }
            ranges.push(Inherited {
                start,
                end,
                kind,
                present,
            });
        }
        Ok(CowBaseline { ranges, page_size })
    }

    /// The baseline restricted to the inherited mappings that overlap
    /// `start..end` (to look at one mapping alone).
    pub fn restricted_to(&self, start: u64, end: u64) -> CowBaseline {
        CowBaseline {
            ranges: self
                .ranges
                .iter()
                .filter(|r| r.start < end && start < r.end)
                .cloned()
                .collect(),
            page_size: self.page_size,
        }
    }

    /// Bytes of inherited address range.
    pub fn range_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }

    /// Scans `worker`'s pagemap over the inherited ranges and its other
    /// writable private mappings.
    pub fn scan(&self, worker: i32) -> Result<CowSample, CowError> {
        let ps = self.page_size;
        let process = Process::new(worker).map_err(err(worker))?;
        let maps = writable_private(&process).map_err(err(worker))?;
        let mut pagemap = process.pagemap().map_err(err(worker))?;
        let mut s = CowSample::default();
        let mut new_pages = 0u64;
        for r in &self.ranges {
            let infos = pages(&mut pagemap, r.start, r.end, ps).map_err(err(worker))?;
            let c = s.cow_by_mapping.entry(r.kind).or_default();
            for (i, info) in infos.iter().enumerate() {
                let (present, exclusive) = present_exclusive(info);
                if !present {
                    continue;
                }
                if !r.was_present(i) {
                    new_pages += 1;
                } else if exclusive {
                    c.copied_pages += 1;
                } else {
                    c.shared_pages += 1;
                }
            }
        }
        // The worker's mappings outside the inherited ranges.
        for (start, end, _) in maps {
            for (a, b) in self.outside(start, end) {
                let infos = pages(&mut pagemap, a, b, ps).map_err(err(worker))?;
                new_pages += infos.iter().filter(|i| present_exclusive(i).0).count() as u64;
            }
        }
        for c in s.cow_by_mapping.values_mut() {
            c.copied = c.copied_pages * ps;
            c.shared = c.shared_pages * ps;
            s.cow_copied_pages += c.copied_pages;
            s.cow_shared_pages += c.shared_pages;
        }
        s.cow_copied = s.cow_copied_pages * ps;
        s.cow_shared = s.cow_shared_pages * ps;
        s.cow_new = new_pages * ps;
        Ok(s)
    }

    /// The parts of `start..end` that no inherited range covers.
    fn outside(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut parts = vec![(start, end)];
        for r in &self.ranges {
            parts = parts
                .into_iter()
                .flat_map(|(a, b)| {
                    if r.end <= a || r.start >= b {
                        vec![(a, b)]
                    } else {
                        let mut v = Vec::new();
                        if a < r.start {
                            v.push((a, r.start));
                        }
                        if r.end < b {
                            v.push((r.end, b));
                        }
                        v
                    }
                })
                .collect();
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(ranges: &[(u64, u64)]) -> CowBaseline {
        CowBaseline {
            ranges: ranges
                .iter()
                .map(|&(start, end)| Inherited {
                    start,
                    end,
                    kind: MappingKind::Anonymous,
                    present: vec![],
                })
                .collect(),
            page_size: 4096,
        }
    }

    #[test]
    fn outside_subtracts_inherited_ranges() {
        let b = baseline(&[(10, 20), (30, 40)]);
        assert_eq!(b.outside(0, 50), vec![(0, 10), (20, 30), (40, 50)]);
        assert_eq!(b.outside(12, 18), vec![]);
        assert_eq!(b.outside(15, 35), vec![(20, 30)]);
        assert_eq!(b.outside(40, 45), vec![(40, 45)]);
    }

    #[test]
    fn own_heap_pages_are_present() {
        let v = std::hint::black_box(vec![7u8; 4 << 20]);
        let b = CowBaseline::capture(std::process::id() as i32).unwrap();
        assert!(b.range_bytes() >= 4 << 20);
        let present: u64 = b
            .ranges
            .iter()
            .map(|r| r.present.iter().map(|w| w.count_ones() as u64).sum::<u64>())
            .sum();
        assert!(present * 4096 >= 4 << 20, "{present} pages present");
        drop(v);
    }
}
