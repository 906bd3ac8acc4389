//! Copy-on-write figures of one worker at one sample, as result documents
//! hold them. `sample::cow` counts them from pagemap.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Bytes;

/// What kind of memory a mapping is, for `cow_by_mapping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
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

/// Pages of one mapping kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
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
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
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
    /// Of `cow_new`, the bytes of pages mapped by another process too: pages
    /// the worker did not inherit from the master, shared with the process it
    /// was forked from (a mold, under `--lifecycle refork=…`) or with its
    /// siblings. 0 for a worker forked by the master (absent then in JSON).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cow_new_shared: Bytes,
}

fn is_zero(v: &Bytes) -> bool {
    *v == 0
}
