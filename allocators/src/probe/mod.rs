//! Inside a process: which allocator really serves its allocations, its
//! version and arena count, and how to make it give memory back.
//!
//! For libc malloc (glibc or an `LD_PRELOAD`ed library) the probe asks the
//! dynamic linker which object defines `malloc`, then looks in that object for
//! the symbols that name an allocator (`mallctl`, `mi_version`, `tc_version`,
//! snmalloc's `__malloc_end_pointer`, `gnu_get_libc_version`). For a built-in allocator it asks the allocator
//! whether it owns a fresh allocation. Either way the answer comes from the
//! running process, never from the variant's name.
//!
//! This file finds the allocator in effect and the entry points to call on
//! it; `identity` asks it who it is (the probe, version, arena count) and
//! `release` makes it give memory back.

mod identity;
mod release;

pub use identity::{
    AllocatorIdentity, SNMALLOC_VERSION, arena_count, count_heaps, glibc_arena_count,
    glibc_version, mimalloc_version_string, probe,
};
pub use release::{
    ReleaseError, SNMALLOC_NO_RELEASE, background_thread, release, release_thread,
    set_background_thread,
};

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::OnceLock;

use crate::dispatch::{Selection, selection};

type MallctlFn =
    unsafe extern "C" fn(*const c_char, *mut c_void, *mut usize, *mut c_void, usize) -> c_int;
type MiCollectFn = unsafe extern "C" fn(bool);
type MiVersionFn = unsafe extern "C" fn() -> c_int;
type MiOwnsFn = unsafe extern "C" fn(*const c_void) -> bool;
type TcVersionFn =
    unsafe extern "C" fn(*mut c_int, *mut c_int, *mut *const c_char) -> *const c_char;
type TcReleaseFn = unsafe extern "C" fn();
type TcOwnershipFn = unsafe extern "C" fn(*const c_void) -> c_int;
type UsableSizeFn = unsafe extern "C" fn(*const c_void) -> usize;
type SnVersionFn = unsafe extern "C" fn() -> *const c_char;

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
    BuiltinSnmalloc,
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
    /// A preloaded snmalloc: its `malloc_usable_size` answers 0 for memory
    /// it does not own; only allocbench's library says its version.
    Snmalloc {
        usable_size: UsableSizeFn,
        version: Option<SnVersionFn>,
    },
    Unknown,
}

struct Detected {
    active: Active,
    library: Option<String>,
}

/// What allocbench's `liballocbench_snmalloc.so` exports to say which
/// snmalloc it carries (snmalloc itself has no version call).
pub const SNMALLOC_VERSION_SYMBOL: &str = "allocbench_snmalloc_version";

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
        Ok(Selection::Snmalloc) => Detected {
            active: Active::BuiltinSnmalloc,
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
    } else if let (Some(_), Some(u)) = (sym("__malloc_end_pointer"), sym("malloc_usable_size")) {
        // `__malloc_end_pointer` is snmalloc's own extension: its shim
        // libsnmallocshim.so and allocbench's library export it.
        Active::Snmalloc {
            // SAFETY: `size_t malloc_usable_size(void *)`; see above.
            usable_size: unsafe { std::mem::transmute::<*mut c_void, UsableSizeFn>(u) },
            version: sym(SNMALLOC_VERSION_SYMBOL)
                // SAFETY: `const char *allocbench_snmalloc_version(void)`;
                // see above.
                .map(|f| unsafe { std::mem::transmute::<*mut c_void, SnVersionFn>(f) }),
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
        // SAFETY: snmalloc's `malloc_usable_size` reads `ptr`'s entry in
        // its page map, never the block; `ptr` is live anyway.
        Active::Snmalloc { usable_size, .. } => Some(unsafe { usable_size(ptr) } > 0),
        _ => None,
    }
}
