//! Page-exact copy-on-write accounting.
//!
//! At the fork the harness records the master's writable private mappings
//! (the memory a worker inherits) and which of their pages were present. For
//! a worker, `/proc/PID/pagemap` then tells, page by page, whether an
//! inherited page is still shared (mapped by more than one process) or
//! exclusive (the worker's own copy: copied since the fork). Pages the master
//! did not have at the fork and the worker's mappings outside the inherited
//! ranges are the worker's new memory, counted apart.
//!
//! The pagemap is read in large chunks with `pread` and only two flags of
//! each entry are decoded (see `Pagemap`): a worker of 1 GiB has 262,144
//! entries to read at every sample.

use crate::results::cow::{CowSample, MappingKind};
use std::fs::File;
use std::os::unix::fs::FileExt;

use procfs::process::{MMPermissions, MMapPath, Process};

/// One writable private mapping of the master at the fork.
#[derive(Debug, Clone)]
struct Inherited {
    start: u64,
    end: u64,
    kind: MappingKind,
    /// One bit per page: present in the master at the fork.
    present: Vec<u64>,
}

/// The master's inheritable memory at the fork.
#[derive(Debug, Clone)]
pub struct CowBaseline {
    ranges: Vec<Inherited>,
    page_size: u64,
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

/// A pagemap entry's flags (`Documentation/admin-guide/mm/pagemap.rst`):
/// the page is present in RAM (a swapped-out page is not: it has bit 62
/// instead), and it is mapped by this process only.
const PRESENT_BIT: u32 = 63;
const EXCLUSIVE_BIT: u32 = 56;
/// Entries read per system call: 256 KiB of entries for 128 MiB of address
/// range (4 KiB pages). A multiple of 64, so every read but a range's last
/// fills whole words of a page bitmap.
const CHUNK: usize = 32 * 1024;

/// `/proc/PID/pagemap`, one 8-byte entry per page of the address space,
/// read with `pread` into a reused buffer. procfs's `PageMap` reads 8 bytes
/// at a time through a `BufReader` and builds a `PageInfo` per page; the
/// answers are the same, the kernel's page-table walk is then most of the
/// time.
struct Pagemap {
    file: File,
    pid: i32,
    buf: Vec<u64>,
}

impl Pagemap {
    fn open(pid: i32) -> Result<Pagemap, CowError> {
        let file = File::open(format!("/proc/{pid}/pagemap")).map_err(|e| CowError {
            pid,
            message: format!("open /proc/{pid}/pagemap: {e}"),
        })?;
        Ok(Pagemap {
            file,
            pid,
            buf: vec![0; CHUNK],
        })
    }

    /// Calls `each` with the entries of the pages of `start..end`
    /// (page-aligned addresses), in order, in runs of at most [`CHUNK`]
    /// entries; every run but the last is [`CHUNK`] long.
    fn read(
        &mut self,
        start: u64,
        end: u64,
        page_size: u64,
        mut each: impl FnMut(&[u64]),
    ) -> Result<(), CowError> {
        let (mut page, last) = (start / page_size, end / page_size);
        while page < last {
            let n = ((last - page) as usize).min(CHUNK);
            // SAFETY: the buffer holds at least n u64s; any bytes are a
            // valid u64.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(self.buf.as_mut_ptr().cast::<u8>(), n * 8)
            };
            let mut got = 0;
            while got < bytes.len() {
                match self.file.read_at(&mut bytes[got..], page * 8 + got as u64) {
                    // A process that exited has no pages left to read.
                    Ok(0) => return Err(self.error("end of file: the process has exited")),
                    Ok(k) => got += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.error(e)),
                }
            }
            each(&self.buf[..n]);
            page += n as u64;
        }
        Ok(())
    }

    fn error(&self, e: impl std::fmt::Display) -> CowError {
        CowError {
            pid: self.pid,
            message: format!("/proc/{}/pagemap: {e}", self.pid),
        }
    }
}

/// One bit per entry of `entries` (at most 64): `bit` of each entry.
#[inline]
fn flag_word(entries: &[u64], bit: u32) -> u64 {
    entries
        .iter()
        .enumerate()
        .fold(0, |w, (j, &e)| w | ((e >> bit) & 1) << j)
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
        let mut pagemap = Pagemap::open(master)?;
        let mut ranges = Vec::with_capacity(maps.len());
        for (start, end, kind) in maps {
            let pages = ((end - start) / page_size) as usize;
            let mut present = Vec::with_capacity(pages.div_ceil(64));
            pagemap.read(start, end, page_size, |entries| {
                present.extend(entries.chunks(64).map(|w| flag_word(w, PRESENT_BIT)));
            })?;
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
        let mut pagemap = Pagemap::open(worker)?;
        let mut s = CowSample::default();
        let mut new_pages = 0u64;
        let mut new_shared_pages = 0u64;
        for r in &self.ranges {
            let c = s.cow_by_mapping.entry(r.kind).or_default();
            // Runs are whole words of the bitmap: CHUNK is a multiple of 64.
            let mut word = 0;
            pagemap.read(r.start, r.end, ps, |entries| {
                for w in entries.chunks(64) {
                    let present = flag_word(w, PRESENT_BIT);
                    let exclusive = flag_word(w, EXCLUSIVE_BIT);
                    let was_present = r.present[word];
                    word += 1;
                    new_pages += u64::from((present & !was_present).count_ones());
                    new_shared_pages +=
                        u64::from((present & !was_present & !exclusive).count_ones());
                    let inherited = present & was_present;
                    c.copied_pages += u64::from((inherited & exclusive).count_ones());
                    c.shared_pages += u64::from((inherited & !exclusive).count_ones());
                }
            })?;
        }
        // The worker's mappings outside the inherited ranges.
        for (start, end, _) in maps {
            for (a, b) in self.outside(start, end) {
                pagemap.read(a, b, ps, |entries| {
                    for &e in entries {
                        let present = e >> PRESENT_BIT & 1 == 1;
                        new_pages += u64::from(present);
                        new_shared_pages += u64::from(present && e >> EXCLUSIVE_BIT & 1 == 0);
                    }
                })?;
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
        s.cow_new_shared = new_shared_pages * ps;
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

    /// The chunked reader decodes what procfs decodes, entry by entry, on
    /// a range with present and absent pages.
    #[test]
    fn pagemap_reader_agrees_with_procfs() {
        use procfs::process::{MemoryPageFlags, PageInfo};
        let ps = procfs::page_size();
        // Untouched pages of a fresh mapping are not present; every third
        // one is written.
        let pages = 3 * 64 + 5;
        let len = pages * ps as usize;
        // SAFETY: a new private anonymous mapping, unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        for page in (0..pages).step_by(3) {
            // SAFETY: inside the mapping.
            unsafe { p.cast::<u8>().add(page * ps as usize).write_volatile(1) };
        }
        let (start, end) = (p as u64, p as u64 + len as u64);
        let pid = std::process::id() as i32;

        let mut ours = Vec::new();
        let mut reader = Pagemap::open(pid).unwrap();
        reader
            .read(start, end, ps, |e| ours.extend_from_slice(e))
            .unwrap();
        let theirs = Process::new(pid)
            .unwrap()
            .pagemap()
            .unwrap()
            .get_range_info((start / ps) as usize..(end / ps) as usize)
            .unwrap();
        assert_eq!(ours.len(), pages);
        assert_eq!(theirs.len(), pages);
        for (i, (&e, info)) in ours.iter().zip(&theirs).enumerate() {
            let PageInfo::MemoryPage(f) = info else {
                panic!("page {i} is swapped out")
            };
            assert_eq!(
                e >> PRESENT_BIT & 1 == 1,
                f.contains(MemoryPageFlags::PRESENT),
                "page {i}"
            );
            assert_eq!(
                e >> EXCLUSIVE_BIT & 1 == 1,
                f.contains(MemoryPageFlags::MMAP_EXCLUSIVE),
                "page {i}"
            );
            assert_eq!(e >> PRESENT_BIT == 1, i % 3 == 0, "page {i}");
        }
        assert_eq!(flag_word(&ours[..64], PRESENT_BIT), 0x9249_2492_4924_9249);
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(p, len) };
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
