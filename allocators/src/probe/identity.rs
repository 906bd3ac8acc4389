//! Who serves the process: the allocator's name, library and version, its
//! answer to "do you own this fresh allocation?", and its arena count.

use std::ffi::{CStr, c_char, c_void};

use serde::{Deserialize, Serialize};

use super::{
    Active, builtin_mallctl, detected, glibc_in_use, gnu_get_libc_version, jemalloc_owns,
    jemalloc_version, mallctl_read, malloc_info,
};

/// What a process reports about the allocator that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
pub struct AllocatorIdentity {
    /// `glibc`, `jemalloc`, `mimalloc`, `snmalloc`, `tcmalloc`, or `unknown` for a library
    /// that defines `malloc` but none of the symbols we know.
    pub name: String,
    /// The allocator's own version string, when it has one.
    pub version: Option<String>,
    /// True for the allocators compiled into allocbench.
    pub builtin: bool,
    /// For libc malloc: the file of the shared object that defines `malloc`
    /// in this process (the preloaded library, or libc itself).
    pub library: Option<String>,
    /// The allocator's answer to "do you own this fresh allocation?", where
    /// it can be asked (jemalloc `arenas.lookup`, mimalloc
    /// `mi_is_in_heap_region`, snmalloc a non-zero usable size from its page
    /// map, tcmalloc `MallocExtension_GetOwnership`).
    pub owns_allocations: Option<bool>,
    /// Arena count: glibc from `malloc_info`, jemalloc `arenas.narenas`.
    pub arenas: Option<u32>,
}

/// The version of the snmalloc built in: that of the `snmalloc-sys` crate,
/// which carries snmalloc's source (snmalloc has no version call; a test
/// checks this against `Cargo.lock`).
pub const SNMALLOC_VERSION: &str = "0.7.6";

/// mimalloc encodes its version as an integer: `209` is 2.0.9 in the old
/// scheme, `30302` is 3.3.2 in the new one (two digits for minor and patch).
pub fn mimalloc_version_string(v: i32) -> String {
    if v >= 10_000 {
        format!("{}.{}.{}", v / 10_000, (v / 100) % 100, v % 100)
    } else {
        format!("{}.{}.{}", v / 100, (v / 10) % 10, v % 10)
    }
}

/// glibc's version, as `gnu_get_libc_version` says.
pub fn glibc_version() -> String {
    // SAFETY: returns a static string.
    unsafe { CStr::from_ptr(gnu_get_libc_version()) }
        .to_string_lossy()
        .into_owned()
}

/// glibc's arena count: the number of `<heap nr=..>` elements `malloc_info`
/// prints. Only meaningful when glibc serves the process.
pub fn glibc_arena_count() -> Option<u32> {
    let mut buf: *mut c_char = std::ptr::null_mut();
    let mut len: usize = 0;
    // SAFETY: open_memstream gives a FILE* writing into a malloc'd buffer,
    // which we read after fclose and then free.
    unsafe {
        let stream = libc::open_memstream(&mut buf, &mut len);
        if stream.is_null() {
            return None;
        }
        let rc = malloc_info(0, stream);
        libc::fclose(stream);
        if buf.is_null() {
            return None;
        }
        let text = std::slice::from_raw_parts(buf.cast::<u8>(), len);
        let count = count_heaps(text);
        libc::free(buf.cast());
        (rc == 0).then_some(count)
    }
}

/// Counts the `<heap nr=` elements of a `malloc_info` document.
pub fn count_heaps(xml: &[u8]) -> u32 {
    let needle = b"<heap nr=";
    xml.windows(needle.len()).filter(|w| w == needle).count() as u32
}

const PROBE_SIZE: usize = 8192;

/// Whether glibc's in-use counters grow by a fresh allocation made through
/// the global allocator.
fn glibc_counts_allocation() -> bool {
    let layout = std::alloc::Layout::from_size_align(PROBE_SIZE, 16).expect("valid layout");
    let before = glibc_in_use();
    // SAFETY: a non-zero-sized layout, freed below with the same layout.
    let ptr = std::hint::black_box(unsafe { std::alloc::alloc(layout) });
    let grew = !ptr.is_null() && glibc_in_use() >= before + PROBE_SIZE;
    if !ptr.is_null() {
        // SAFETY: `ptr` came from std::alloc::alloc with this layout, just
        // above, and is freed once.
        unsafe { std::alloc::dealloc(ptr, layout) };
    }
    grew
}

/// Asks the allocator in effect who it is, and checks that it owns a fresh
/// allocation made through the process's global allocator.
pub fn probe() -> AllocatorIdentity {
    let d = detected();
    // A fresh allocation through the global allocator (the dispatcher), as
    // the workload's own allocations are made. Larger than glibc's tcache
    // sizes so that glibc's counters see it.
    let glibc_before = glibc_in_use();
    let layout = std::alloc::Layout::from_size_align(PROBE_SIZE, 16).expect("valid layout");
    // SAFETY: a non-zero-sized layout; freed below with the same layout.
    let ptr = std::hint::black_box(unsafe { std::alloc::alloc(layout) }).cast::<c_void>();
    if ptr.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    let glibc_grew = glibc_in_use() >= glibc_before + PROBE_SIZE;
    let mut id = AllocatorIdentity {
        name: "unknown".into(),
        version: None,
        builtin: false,
        library: d.library.clone(),
        owns_allocations: None,
        arenas: None,
    };
    match d.active {
        Active::Glibc => {
            id.name = "glibc".into();
            id.version = Some(glibc_version());
            id.arenas = glibc_arena_count();
            // glibc's own counters grow by a fresh allocation. (Asking the
            // built-in jemalloc would initialise it here and add its
            // footprint to a glibc process.) Other threads' frees can hide
            // the growth, so a miss is retried.
            id.owns_allocations = Some(glibc_grew || (0..8).any(|_| glibc_counts_allocation()));
        }
        Active::BuiltinJemalloc => {
            id.name = "jemalloc".into();
            id.builtin = true;
            id.version = jemalloc_version(builtin_mallctl());
            id.arenas = mallctl_read::<u32>(builtin_mallctl(), c"arenas.narenas");
            id.owns_allocations = Some(jemalloc_owns(builtin_mallctl(), ptr));
        }
        Active::BuiltinMimalloc => {
            id.name = "mimalloc".into();
            id.builtin = true;
            // SAFETY: mi_version takes nothing and returns a constant.
            let version = unsafe { libmimalloc_sys::mi_version() };
            id.version = Some(mimalloc_version_string(version));
            // SAFETY: mi_is_in_heap_region only compares the pointer with
            // mimalloc's regions; `ptr` is a live allocation anyway.
            id.owns_allocations = Some(unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr) });
        }
        Active::BuiltinSnmalloc => {
            id.name = "snmalloc".into();
            id.builtin = true;
            id.version = Some(SNMALLOC_VERSION.into());
            // snmalloc's page map gives memory it does not own a size of 0.
            id.owns_allocations =
                Some(snmalloc_rs::SnMalloc.usable_size(ptr.cast()).unwrap_or(0) > 0);
        }
        Active::Jemalloc { mallctl } => {
            id.name = "jemalloc".into();
            id.version = jemalloc_version(mallctl);
            id.arenas = mallctl_read::<u32>(mallctl, c"arenas.narenas");
            id.owns_allocations = Some(jemalloc_owns(mallctl, ptr));
        }
        Active::Mimalloc { version, owns, .. } => {
            id.name = "mimalloc".into();
            // SAFETY: the preloaded mimalloc's `mi_version`, which takes
            // nothing (see `detect_libc_malloc`).
            id.version = Some(mimalloc_version_string(unsafe { version() }));
            // SAFETY: its `mi_is_in_heap_region`, which only compares the
            // pointer with mimalloc's regions; `ptr` is live anyway.
            id.owns_allocations = Some(unsafe { owns(ptr) });
        }
        Active::Tcmalloc {
            version, ownership, ..
        } => {
            id.name = "tcmalloc".into();
            id.version = version.map(|f| {
                let (mut major, mut minor) = (0, 0);
                let mut patch: *const c_char = std::ptr::null();
                // SAFETY: tc_version writes the three out-parameters and
                // returns a static string.
                let s = unsafe { f(&mut major, &mut minor, &mut patch) };
                if s.is_null() {
                    format!("{major}.{minor}")
                } else {
                    // SAFETY: non-null, so tcmalloc's static NUL-terminated
                    // version string.
                    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
                }
            });
            // MallocExtension_Ownership: 1 = owned, 2 = not owned.
            // SAFETY: GetOwnership looks `ptr` up in tcmalloc's page map
            // without dereferencing it; `ptr` is a live allocation anyway.
            id.owns_allocations = ownership.map(|f| unsafe { f(ptr) } == 1);
        }
        Active::Snmalloc {
            usable_size,
            version,
        } => {
            id.name = "snmalloc".into();
            id.version = version.and_then(|f| {
                // SAFETY: allocbench's `allocbench_snmalloc_version` takes
                // nothing and returns a static string or null.
                let s = unsafe { f() };
                // SAFETY: non-null, so a static NUL-terminated string.
                (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
            });
            // SAFETY: the preloaded snmalloc's `malloc_usable_size` reads
            // `ptr`'s entry in its page map; `ptr` is live anyway.
            id.owns_allocations = Some(unsafe { usable_size(ptr) } > 0);
        }
        Active::Unknown => {}
    }
    // SAFETY: ptr came from std::alloc::alloc with this layout.
    unsafe { std::alloc::dealloc(ptr.cast(), layout) };
    id
}

/// The arena count now (glibc and jemalloc), for reporting after threads ran.
pub fn arena_count() -> Option<u32> {
    match detected().active {
        Active::Glibc => glibc_arena_count(),
        Active::BuiltinJemalloc => mallctl_read::<u32>(builtin_mallctl(), c"arenas.narenas"),
        Active::Jemalloc { mallctl } => mallctl_read::<u32>(mallctl, c"arenas.narenas"),
        _ => None,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mimalloc_versions_decode_in_both_schemes() {
        assert_eq!(mimalloc_version_string(209), "2.0.9");
        assert_eq!(mimalloc_version_string(30302), "3.3.2");
        assert_eq!(mimalloc_version_string(21702), "2.17.2");
    }

    #[test]
    fn the_snmalloc_version_is_the_locked_crates() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
            .expect("the workspace's Cargo.lock");
        let entry = format!("name = \"snmalloc-sys\"\nversion = \"{SNMALLOC_VERSION}\"\n");
        assert!(
            lock.contains(&entry),
            "Cargo.lock locks another snmalloc-sys: update SNMALLOC_VERSION (and the preload library's)"
        );
    }

    #[test]
    fn snmalloc_owns_its_blocks_and_not_glibcs() {
        use std::alloc::{GlobalAlloc, Layout};
        let sn = snmalloc_rs::SnMalloc;
        let layout = Layout::from_size_align(PROBE_SIZE, 16).unwrap();
        // SAFETY: a non-zero-sized layout, freed below with the same layout.
        let ours = unsafe { sn.alloc(layout) };
        assert!(sn.usable_size(ours).unwrap() >= PROBE_SIZE);
        // SAFETY: libc malloc of a non-zero size, freed below.
        let glibcs = unsafe { libc::malloc(PROBE_SIZE) }.cast::<u8>();
        assert_eq!(sn.usable_size(glibcs), Some(0));
        // SAFETY: each block is freed once, by the allocator that made it.
        unsafe {
            libc::free(glibcs.cast());
            sn.dealloc(ours, layout);
        }
    }

    #[test]
    fn heaps_are_counted_in_malloc_info_xml() {
        let xml = br#"<malloc version="1"><heap nr="0"><sizes></sizes></heap><heap nr="1"></heap><total type="fast"/></malloc>"#;
        assert_eq!(count_heaps(xml), 2);
        assert_eq!(count_heaps(b"<malloc/>"), 0);
    }

    #[test]
    fn this_test_process_is_served_by_glibc() {
        // Test binaries use the default allocator, which is libc malloc.
        let id = probe();
        assert_eq!(id.name, "glibc", "{id:?}");
        assert!(id.library.unwrap().contains("libc.so"));
        assert!(id.arenas.unwrap() >= 1);
        assert_eq!(id.owns_allocations, Some(true));
    }
}
