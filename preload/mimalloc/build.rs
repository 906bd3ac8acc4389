//! Exports mimalloc's identity functions from the cdylib.
//!
//! allocbench's probe recognises mimalloc by `mi_version`, `mi_collect` and
//! `mi_is_in_heap_region` in the object that defines `malloc`. They are
//! defined by mimalloc's static library, so this crate cannot define wrappers
//! of the same name, and rustc's version script keeps every symbol that is
//! not a Rust `#[no_mangle]` item local. A second version script listing
//! them is merged by lld, Rust's default linker on x86_64 Linux; GNU ld
//! refuses two anonymous version scripts, so with another linker the library
//! is built without them (it still works as an allocator, but the probe
//! reports it as `unknown`) and cargo says so.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=exports.map");
    if links_with_lld() {
        let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/exports.map");
    } else {
        println!(
            "cargo:warning=liballocbench_mimalloc.so is built without mi_version, mi_collect and \
             mi_is_in_heap_region: exporting them needs lld (Rust's default linker on \
             x86_64-unknown-linux-gnu)"
        );
    }
}

/// Whether rustc links this target with lld: its default on
/// x86_64-unknown-linux-gnu, unless the flags choose another linker.
fn links_with_lld() -> bool {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').collect();
    if flags.iter().any(|f| f.contains("fuse-ld=lld")) {
        return true;
    }
    let opted_out = flags.iter().any(|f| {
        f.contains("linker-features=-lld")
            || f.contains("link-self-contained=-linker")
            || f.contains("fuse-ld=")
            || f.contains("linker-flavor=")
    });
    env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu") && !opted_out
}
