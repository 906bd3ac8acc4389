//! Reading input files — `--spec`, `--variants-file`, `report`'s result
//! documents, `plan --from`, the document `--resume` continues — the one
//! way: a regular file only (a FIFO or a device would block or never end),
//! at most [`MAX_INPUT`] bytes, UTF-8.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest input file read: 64 MiB. The largest documents allocbench
/// writes (a long sweep's JSON with its timelines) are a few MiB.
pub const MAX_INPUT: u64 = 64 << 20;

fn kind(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The text of the input file at `path`. The error says what is wrong
/// without the path, which the caller names with its flag.
pub fn read_input(path: &Path) -> std::io::Result<String> {
    // Non-blocking, so that opening a FIFO with no writer returns at once
    // to be refused; it changes nothing for a regular file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    let t = meta.file_type();
    if !t.is_file() {
        return Err(std::io::Error::other(format!(
            "{}; allocbench reads input from regular files only",
            kind(t)
        )));
    }
    let too_big = || {
        std::io::Error::other(format!(
            "larger than {} MiB, the most allocbench reads from an input file",
            MAX_INPUT >> 20
        ))
    };
    if meta.len() > MAX_INPUT {
        return Err(too_big());
    }
    // The size may grow as it is read: stop one byte past the cap.
    let mut bytes = Vec::new();
    file.take(MAX_INPUT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = std::env::temp_dir().join(format!("allocbench-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // No writer: a blocking open would wait for ever.
        let e = read_input(&fifo).unwrap_err().to_string();
        assert!(e.starts_with("a FIFO"), "{e}");
        let e = read_input(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.starts_with("a character device"), "{e}");
        let e = read_input(&dir).unwrap_err().to_string();
        assert!(e.starts_with("a directory"), "{e}");
        let big = dir.join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_INPUT + 1)
            .unwrap();
        let e = read_input(&big).unwrap_err().to_string();
        assert!(e.contains("64 MiB"), "{e}");
        std::fs::write(&big, "fine").unwrap();
        assert_eq!(read_input(&big).unwrap(), "fine");
        std::fs::write(&big, [0xff, 0xfe]).unwrap();
        assert!(read_input(&big).unwrap_err().to_string().contains("UTF-8"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
