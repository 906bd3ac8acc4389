//! Inside a process: which allocator really serves its allocations, its
//! version and arena count, and how to make it give memory back.
//!
//! For libc malloc (glibc or an `LD_PRELOAD`ed library) the probe asks the
//! dynamic linker which object defines `malloc`, then looks in that object for
//! the symbols that name an allocator (`mallctl`, `mi_version`, `tc_version`,
//! `gnu_get_libc_version`). For a built-in allocator it asks the allocator
//! whether it owns a fresh allocation. Either way the answer comes from the
//! running process, never from the variant's name.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::dispatch::{Selection, selection};

/// What a process reports about the allocator that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatorIdentity {
    /// `glibc`, `jemalloc`, `mimalloc`, `tcmalloc`, or `unknown` for a library
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
    /// `mi_is_in_heap_region`, tcmalloc `MallocExtension_GetOwnership`).
    pub owns_allocations: Option<bool>,
    /// Arena count: glibc from `malloc_info`, jemalloc `arenas.narenas`.
    pub arenas: Option<u32>,
}

type MallctlFn =
    unsafe extern "C" fn(*const c_char, *mut c_void, *mut usize, *mut c_void, usize) -> c_int;
type MiCollectFn = unsafe extern "C" fn(bool);
type MiVersionFn = unsafe extern "C" fn() -> c_int;
type MiOwnsFn = unsafe extern "C" fn(*const c_void) -> bool;
type TcVersionFn =
    unsafe extern "C" fn(*mut c_int, *mut c_int, *mut *const c_char) -> *const c_char;
type TcReleaseFn = unsafe extern "C" fn();
type TcOwnershipFn = unsafe extern "C" fn(*const c_void) -> c_int;

unsafe extern "C" {
    fn gnu_get_libc_version() -> *const c_char;
    fn malloc_info(options: c_int, stream: *mut libc::FILE) -> c_int;
    fn malloc_trim(pad: usize) -> c_int;
    fn mallinfo2() -> MallInfo2;
}

/// glibc's `struct mallinfo2` (glibc 2.33 and later).
#[repr(C)]
#[derive(Clone, Copy)]
struct MallInfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

/// Bytes glibc has handed out, from its own heaps and its own mmaps.
pub(crate) fn glibc_in_use() -> usize {
    // SAFETY: mallinfo2 only reads glibc's counters.
    let m = unsafe { mallinfo2() };
    m.uordblks + m.hblkhd
}

/// The allocator in effect, with the entry points we call on it.
#[derive(Clone, Copy)]
enum Active {
    Glibc,
    BuiltinJemalloc,
    BuiltinMimalloc,
    Jemalloc {
        mallctl: MallctlFn,
    },
    Mimalloc {
        version: MiVersionFn,
        collect: MiCollectFn,
        owns: MiOwnsFn,
    },
    Tcmalloc {
        version: Option<TcVersionFn>,
        release: Option<TcReleaseFn>,
        ownership: Option<TcOwnershipFn>,
    },
    Unknown,
}

struct Detected {
    active: Active,
    library: Option<String>,
}

static DETECTED: OnceLock<Detected> = OnceLock::new();

fn detected() -> &'static Detected {
    DETECTED.get_or_init(detect)
}

fn detect() -> Detected {
    match selection() {
        Ok(Selection::Jemalloc) => Detected {
            active: Active::BuiltinJemalloc,
            library: None,
        },
        Ok(Selection::Mimalloc) => Detected {
            active: Active::BuiltinMimalloc,
            library: None,
        },
        _ => detect_libc_malloc(),
    }
}

/// The file of the shared object that contains `addr`.
fn object_of(addr: *const c_void) -> Option<String> {
    // SAFETY: Dl_info is plain C data (pointers and integers), for which all
    // zeroes is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the loader.
    Some(
        unsafe { CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// `name` as defined by the object `library` itself (not one of its
/// dependencies, which `dlsym` on a handle would also search).
fn symbol_in(handle: *mut c_void, library: &str, name: &str) -> Option<*mut c_void> {
    let cname = CString::new(name).ok()?;
    // SAFETY: handle is a live handle from dlopen; cname is NUL-terminated.
    let sym = unsafe { libc::dlsym(handle, cname.as_ptr()) };
    if sym.is_null() || object_of(sym).as_deref() != Some(library) {
        return None;
    }
    Some(sym)
}

fn detect_libc_malloc() -> Detected {
    // SAFETY: looking up a symbol in the global scope.
    let malloc = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr()) };
    let Some(library) = object_of(malloc) else {
        return Detected {
            active: Active::Unknown,
            library: None,
        };
    };
    let Ok(clib) = CString::new(library.clone()) else {
        return Detected {
            active: Active::Unknown,
            library: Some(library),
        };
    };
    // SAFETY: RTLD_NOLOAD only returns a handle to an object already loaded.
    let handle = unsafe { libc::dlopen(clib.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD) };
    if handle.is_null() {
        return Detected {
            active: Active::Unknown,
            library: Some(library),
        };
    }
    let sym = |name: &str| symbol_in(handle, &library, name);
    // The transmutes below turn a symbol's address into a function pointer:
    // each symbol is the C function of that name in the allocator's public
    // API, with the signature given, defined by `library` itself
    // (`symbol_in` checked), which stays mapped for the life of the process.
    let active = if let Some(f) = sym("mallctl") {
        Active::Jemalloc {
            // SAFETY: jemalloc's `mallctl` has `MallctlFn`'s signature; see
            // above.
            mallctl: unsafe { std::mem::transmute::<*mut c_void, MallctlFn>(f) },
        }
    } else if let (Some(v), Some(c), Some(o)) = (
        sym("mi_version"),
        sym("mi_collect"),
        sym("mi_is_in_heap_region"),
    ) {
        Active::Mimalloc {
            // SAFETY: `int mi_version(void)`; see above.
            version: unsafe { std::mem::transmute::<*mut c_void, MiVersionFn>(v) },
            // SAFETY: `void mi_collect(bool force)`; see above.
            collect: unsafe { std::mem::transmute::<*mut c_void, MiCollectFn>(c) },
            // SAFETY: `bool mi_is_in_heap_region(const void *p)`; see above.
            owns: unsafe { std::mem::transmute::<*mut c_void, MiOwnsFn>(o) },
        }
    } else if sym("tc_malloc").is_some() {
        Active::Tcmalloc {
            version: sym("tc_version")
                // SAFETY: `const char *tc_version(int *, int *, const char
                // **)`; see above.
                .map(|f| unsafe { std::mem::transmute::<*mut c_void, TcVersionFn>(f) }),
            release: sym("MallocExtension_ReleaseFreeMemory")
                // SAFETY: `void MallocExtension_ReleaseFreeMemory(void)`; see
                // above.
                .map(|f| unsafe { std::mem::transmute::<*mut c_void, TcReleaseFn>(f) }),
            ownership: sym("MallocExtension_GetOwnership")
                // SAFETY: `int MallocExtension_GetOwnership(const void *)`;
                // see above.
                .map(|f| unsafe { std::mem::transmute::<*mut c_void, TcOwnershipFn>(f) }),
        }
    } else if sym("gnu_get_libc_version").is_some() {
        Active::Glibc
    } else {
        Active::Unknown
    };
    // The handle stays open: the object is mapped for the life of the process.
    Detected {
        active,
        library: Some(library),
    }
}

fn mallctl_read<T: Copy>(mallctl: MallctlFn, name: &CStr) -> Option<T> {
    let mut value = std::mem::MaybeUninit::<T>::uninit();
    let mut len = std::mem::size_of::<T>();
    // SAFETY: `value` has room for `len` bytes of the control's type T.
    let rc = unsafe {
        mallctl(
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    // SAFETY: on success with the full length, mallctl wrote a whole T into
    // `value`.
    (rc == 0 && len == std::mem::size_of::<T>()).then(|| unsafe { value.assume_init() })
}

fn mallctl_call(mallctl: MallctlFn, name: &CStr) -> bool {
    // SAFETY: a control that takes and returns nothing.
    unsafe {
        mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        ) == 0
    }
}

/// Whether jemalloc (through `mallctl`) owns `ptr`: `arenas.lookup` answers
/// for pointers jemalloc never made without touching them.
fn jemalloc_owns(mallctl: MallctlFn, ptr: *mut c_void) -> bool {
    let mut arena: u32 = 0;
    let mut len = std::mem::size_of::<u32>();
    let mut p = ptr;
    // SAFETY: arenas.lookup reads a pointer and writes an unsigned.
    unsafe {
        mallctl(
            c"arenas.lookup".as_ptr(),
            (&mut arena as *mut u32).cast(),
            &mut len,
            (&mut p as *mut *mut c_void).cast(),
            std::mem::size_of::<*mut c_void>(),
        ) == 0
    }
}

fn jemalloc_version(mallctl: MallctlFn) -> Option<String> {
    let p: *const c_char = mallctl_read(mallctl, c"version")?;
    // SAFETY: jemalloc's version is a static NUL-terminated string.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// mimalloc encodes its version as an integer: `209` is 2.0.9 in the old
/// scheme, `30302` is 3.3.2 in the new one (two digits for minor and patch).
pub fn mimalloc_version_string(v: i32) -> String {
    if v >= 10_000 {
        format!("{}.{}.{}", v / 10_000, (v / 100) % 100, v % 100)
    } else {
        format!("{}.{}.{}", v / 100, (v / 10) % 10, v % 10)
    }
}

/// The built-in jemalloc's version (initialises it).
pub(crate) fn builtin_jemalloc_version() -> Option<String> {
    jemalloc_version(builtin_mallctl())
}

fn builtin_mallctl() -> MallctlFn {
    tikv_jemalloc_sys::mallctl
}

/// Whether the built-in jemalloc owns `ptr` (any pointer; initialises it).
#[cfg(feature = "testing")]
pub(crate) fn builtin_jemalloc_owns(ptr: *mut c_void) -> bool {
    jemalloc_owns(builtin_mallctl(), ptr)
}

#[cfg(feature = "testing")]
static LIBC_MALLOC: OnceLock<Detected> = OnceLock::new();

/// Whether the allocator that defines libc `malloc` owns `ptr`, a live
/// allocation from libc `malloc`, when it can be asked: `None` for glibc
/// (which has no such call: watch its counters instead) and for unknown
/// libraries. Detected apart from [`probe`], which follows the dispatcher.
#[cfg(feature = "testing")]
pub(crate) fn libc_malloc_owns(ptr: *mut c_void) -> Option<bool> {
    match LIBC_MALLOC.get_or_init(detect_libc_malloc).active {
        Active::Jemalloc { mallctl } => Some(jemalloc_owns(mallctl, ptr)),
        // SAFETY: mi_is_in_heap_region only compares `ptr` with mimalloc's
        // region bounds; it never dereferences it.
        Active::Mimalloc { owns, .. } => Some(unsafe { owns(ptr) }),
        Active::Tcmalloc {
            ownership: Some(f), ..
        } => {
            // MallocExtension_Ownership: 1 = owned, 2 = not owned.
            // SAFETY: GetOwnership looks `ptr` up in tcmalloc's page map
            // without dereferencing it; `ptr` is a live allocation anyway.
            Some(unsafe { f(ptr) } == 1)
        }
        _ => None,
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

/// Asks the allocator in effect to give free memory back to the OS, for the
/// whole process: glibc `malloc_trim(0)`, jemalloc `arena.<all>.purge` (after
/// flushing this thread's cache), mimalloc `mi_collect(true)`, tcmalloc
/// `MallocExtension_ReleaseFreeMemory()`. Returns the call made.
pub fn release() -> Result<&'static str, String> {
    match detected().active {
        Active::Glibc => {
            // SAFETY: malloc_trim is safe to call at any time.
            unsafe { malloc_trim(0) };
            Ok("malloc_trim(0)")
        }
        Active::BuiltinJemalloc => jemalloc_purge(builtin_mallctl()),
        Active::Jemalloc { mallctl } => jemalloc_purge(mallctl),
        Active::BuiltinMimalloc => {
            // SAFETY: mi_collect may be called at any time from any thread.
            unsafe { libmimalloc_sys::mi_collect(true) };
            Ok("mi_collect(true)")
        }
        Active::Mimalloc { collect, .. } => {
            // SAFETY: the preloaded mimalloc's `mi_collect`, which may be
            // called at any time from any thread.
            unsafe { collect(true) };
            Ok("mi_collect(true)")
        }
        Active::Tcmalloc {
            release: Some(f), ..
        } => {
            // SAFETY: tcmalloc's `MallocExtension_ReleaseFreeMemory`, which
            // takes nothing and may be called at any time.
            unsafe { f() };
            Ok("MallocExtension_ReleaseFreeMemory()")
        }
        Active::Tcmalloc { release: None, .. } => {
            Err("this tcmalloc has no MallocExtension_ReleaseFreeMemory".into())
        }
        Active::Unknown => Err(format!(
            "no release call is known for the allocator in {}",
            detected().library.as_deref().unwrap_or("this process")
        )),
    }
}

/// Turns jemalloc's background threads on or off (`background_thread`).
/// An error for other allocators.
pub fn set_background_thread(on: bool) -> Result<(), String> {
    let mallctl =
        match detected().active {
            Active::BuiltinJemalloc => builtin_mallctl(),
            Active::Jemalloc { mallctl } => mallctl,
            _ => return Err(
                "background threads are a jemalloc setting; this process does not run on jemalloc"
                    .into(),
            ),
        };
    let mut value = on;
    // SAFETY: background_thread takes a bool.
    let rc = unsafe {
        mallctl(
            c"background_thread".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&mut value as *mut bool).cast(),
            std::mem::size_of::<bool>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "jemalloc refused background_thread={on} (error {rc})"
        ))
    }
}

/// Whether jemalloc's background threads are on; `None` for other allocators.
pub fn background_thread() -> Option<bool> {
    match detected().active {
        Active::BuiltinJemalloc => mallctl_read::<bool>(builtin_mallctl(), c"background_thread"),
        Active::Jemalloc { mallctl } => mallctl_read::<bool>(mallctl, c"background_thread"),
        _ => None,
    }
}

/// Per-thread part of a release: what the calling thread's cache holds goes
/// back to the shared heap (jemalloc `thread.tcache.flush`, mimalloc
/// `mi_collect(true)` on this thread's heap). Other allocators need nothing.
pub fn release_thread() {
    match detected().active {
        Active::BuiltinJemalloc => {
            mallctl_call(builtin_mallctl(), c"thread.tcache.flush");
        }
        Active::Jemalloc { mallctl } => {
            mallctl_call(mallctl, c"thread.tcache.flush");
        }
        // SAFETY: mi_collect may be called at any time from any thread.
        Active::BuiltinMimalloc => unsafe { libmimalloc_sys::mi_collect(true) },
        // SAFETY: the preloaded mimalloc's `mi_collect`, as above.
        Active::Mimalloc { collect, .. } => unsafe { collect(true) },
        _ => {}
    }
}

fn jemalloc_purge(mallctl: MallctlFn) -> Result<&'static str, String> {
    mallctl_call(mallctl, c"thread.tcache.flush");
    // 4096 is MALLCTL_ARENAS_ALL.
    if mallctl_call(mallctl, c"arena.4096.purge") {
        Ok("mallctl(\"arena.<all>.purge\")")
    } else {
        Err("jemalloc refused mallctl(\"arena.<all>.purge\")".into())
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
