//! Just enough ELF for the checks made before any run: the program headers,
//! the dynamic section's `DT_FLAGS_1` (is an `ET_DYN` file a PIE executable?)
//! and `PT_INTERP` (which ld.so loads a program).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DF_1_PIE: u64 = 0x0800_0000;

/// The most of a dynamic section or interpreter path read (real ones are a
/// few hundred bytes).
const MAX_READ: u64 = 1 << 20;

/// What is damaged in an ELF file, worded to follow "a damaged ELF file: ".
#[derive(Debug, thiserror::Error)]
pub(crate) enum ElfDamage {
    /// Its size could not be read.
    #[error("cannot read its size: {0}")]
    Size(#[source] std::io::Error),
    /// A part whose offset and length reach past the end of the file.
    #[error("its {0} lies outside the file")]
    Outside(&'static str),
    /// A part that could not be read.
    #[error("cannot read its {what}: {error}")]
    Unreadable {
        /// The part.
        what: &'static str,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// A file header shorter than its class's.
    #[error("its file header is cut short")]
    ShortHeader,
    /// Program headers smaller than their class's.
    #[error("its program headers are {0} bytes each")]
    SmallProgramHeaders(u16),
}

/// An open ELF file whose identification bytes were checked: the class
/// (32 or 64-bit) and byte order its fields are read in.
pub(crate) struct Elf<'a> {
    pub file: &'a File,
    pub class64: bool,
    pub little: bool,
    /// The file header (52 or 64 bytes).
    pub header: &'a [u8],
}

/// One program header: its type and where its bytes are in the file.
struct Segment {
    kind: u32,
    offset: u64,
    size: u64,
}

impl Elf<'_> {
    fn u16(&self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.little {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        }
    }

    fn u32(&self, b: &[u8], at: usize) -> u32 {
        let v = b[at..at + 4].try_into().expect("four bytes");
        if self.little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    }

    fn u64(&self, b: &[u8], at: usize) -> u64 {
        let v = b[at..at + 8].try_into().expect("eight bytes");
        if self.little {
            u64::from_le_bytes(v)
        } else {
            u64::from_be_bytes(v)
        }
    }

    /// A word of the file's class: 4 or 8 bytes.
    fn word(&self, b: &[u8], at: usize) -> u64 {
        if self.class64 {
            self.u64(b, at)
        } else {
            self.u32(b, at).into()
        }
    }

    /// `len` bytes at `offset`, which must lie inside the file.
    fn read(&self, offset: u64, len: u64, what: &'static str) -> Result<Vec<u8>, ElfDamage> {
        let size = self.file.metadata().map_err(ElfDamage::Size)?.len();
        if len > MAX_READ || offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(ElfDamage::Outside(what));
        }
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|error| ElfDamage::Unreadable { what, error })?;
        Ok(buf)
    }

    fn segments(&self) -> Result<Vec<Segment>, ElfDamage> {
        let h = self.header;
        let need = if self.class64 { 64 } else { 52 };
        if h.len() < need {
            return Err(ElfDamage::ShortHeader);
        }
        let (phoff, phentsize, phnum) = if self.class64 {
            (self.u64(h, 32), self.u16(h, 54), self.u16(h, 56))
        } else {
            (self.u32(h, 28).into(), self.u16(h, 42), self.u16(h, 44))
        };
        let entry = if self.class64 { 56 } else { 32 };
        if phnum == 0 {
            return Ok(Vec::new());
        }
        if usize::from(phentsize) < entry {
            return Err(ElfDamage::SmallProgramHeaders(phentsize));
        }
        let table = self.read(
            phoff,
            u64::from(phentsize) * u64::from(phnum),
            "program header table",
        )?;
        Ok(table
            .chunks_exact(phentsize.into())
            .map(|p| {
                let (offset, size) = if self.class64 {
                    (self.u64(p, 8), self.u64(p, 32))
                } else {
                    (self.u32(p, 4).into(), self.u32(p, 16).into())
                };
                Segment {
                    kind: self.u32(p, 0),
                    offset,
                    size,
                }
            })
            .collect())
    }

    /// Whether the dynamic section says this is a position-independent
    /// executable (`DF_1_PIE` in `DT_FLAGS_1`). A shared library has no such
    /// flag; ld.so refuses to preload a PIE. Errors say what is damaged.
    pub fn is_pie(&self) -> Result<bool, ElfDamage> {
        let Some(dynamic) = self.segments()?.into_iter().find(|s| s.kind == PT_DYNAMIC) else {
            return Ok(false);
        };
        let bytes = self.read(dynamic.offset, dynamic.size, "dynamic section")?;
        let entry = if self.class64 { 16 } else { 8 };
        let half = entry / 2;
        for d in bytes.chunks_exact(entry) {
            let (tag, val) = (self.word(d, 0), self.word(d, half));
            match tag {
                DT_NULL => break,
                DT_FLAGS_1 => return Ok(val & DF_1_PIE != 0),
                _ => {}
            }
        }
        Ok(false)
    }

    /// The program interpreter (`PT_INTERP`), if any.
    pub fn interpreter(&self) -> Option<PathBuf> {
        let seg = self
            .segments()
            .ok()?
            .into_iter()
            .find(|s| s.kind == PT_INTERP)?;
        let bytes = self.read(seg.offset, seg.size, "interpreter").ok()?;
        let path = bytes.split(|&b| b == 0).next()?;
        let path = std::str::from_utf8(path).ok()?;
        (!path.is_empty()).then(|| PathBuf::from(path))
    }
}

/// Opens `path` as an ELF file of this machine's class and byte order and
/// hands it to `f`; `None` if it is not one.
pub(crate) fn with_elf<T>(path: &Path, f: impl FnOnce(&Elf) -> Option<T>) -> Option<T> {
    let file = File::open(path).ok()?;
    let mut header = [0u8; 64];
    file.read_exact_at(&mut header, 0).ok()?;
    let little = cfg!(target_endian = "little");
    let class64 = cfg!(target_pointer_width = "64");
    let ident_ok = &header[..4] == b"\x7fELF"
        && header[4] == if class64 { 2 } else { 1 }
        && header[5] == if little { 1 } else { 2 };
    if !ident_ok {
        return None;
    }
    f(&Elf {
        file: &file,
        class64,
        little,
        header: &header,
    })
}

/// The dynamic linker of the running program (its `PT_INTERP`).
pub(crate) fn own_interpreter() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    with_elf(&exe, |elf| elf.interpreter())
}
