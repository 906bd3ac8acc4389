//! A benchmark must measure what it names: each entry of the allocator
//! benchmarks (`benches/allocators.rs`) gets its memory from the allocator it
//! is named after. This test binary, like the benchmark binary, keeps the
//! default global allocator, libc malloc, which is glibc here.

use allocbench_allocators::bench::BenchAllocator;

use crate::common::alone;

// One test function, alone in a test process, so no other test thread
// allocates while glibc's counters are compared.
#[test]
fn each_bench_entry_is_served_by_the_allocator_it_names() {
    alone(
        "bench_identity::each_bench_entry_is_served_by_the_allocator_it_names",
        each_bench_entry_is_served,
    );
}

fn each_bench_entry_is_served() {
    let je = BenchAllocator::Jemalloc.claims();
    assert!(je.builtin_jemalloc, "{je:?}");
    assert!(!je.builtin_mimalloc && !je.glibc_counted, "{je:?}");

    let mi = BenchAllocator::Mimalloc.claims();
    assert!(mi.builtin_mimalloc, "{mi:?}");
    assert!(!mi.builtin_jemalloc && !mi.glibc_counted, "{mi:?}");

    let sys = BenchAllocator::System.claims();
    assert!(!sys.builtin_jemalloc && !sys.builtin_mimalloc, "{sys:?}");
    assert!(sys.glibc_counted, "{sys:?}");
    // glibc cannot be asked about a pointer; its counters answered above.
    assert_eq!(sys.libc_malloc, None);

    for a in BenchAllocator::ALL {
        a.owner_check().unwrap();
    }

    let labels = BenchAllocator::ALL.map(BenchAllocator::label);
    assert!(labels[0].starts_with("system (glibc 2."), "{labels:?}");
    assert!(labels[1].starts_with("jemalloc (built-in 5."), "{labels:?}");
    assert!(labels[2].starts_with("mimalloc (built-in 3."), "{labels:?}");

    for a in BenchAllocator::ALL {
        grow_by_doubling(a);
    }
}

/// The realloc benchmark grows a block from 16 B to 1 MiB: the contents
/// survive every step.
fn grow_by_doubling(a: BenchAllocator) {
    let mut size = 16;
    let mut ptr = a.alloc(size);
    // SAFETY: `ptr` is a live block of `size` (16) bytes.
    unsafe { ptr.write(0xa5) };
    while size < 1 << 20 {
        // SAFETY: `ptr` is this entry's live block of `size` bytes; the old
        // pointer is replaced and not used again.
        ptr = unsafe { a.realloc(ptr, size, size * 2) };
        size *= 2;
        // SAFETY: the last byte of the live block of `size` bytes.
        unsafe { ptr.add(size - 1).write(0x5a) };
    }
    // SAFETY: the first byte of the live block, written before the growth.
    assert_eq!(unsafe { ptr.read() }, 0xa5, "{a:?}");
    // SAFETY: `ptr` is this entry's live block of `size` bytes, freed once.
    unsafe { a.free(ptr, size) };
}
