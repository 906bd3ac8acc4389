//! Files and streams at the edges: what `--output` may name (devices,
//! FIFOs, descriptors, symbolic links, a full disk), input files that are
//! no regular files or too big, and a stderr or stdout that cannot be
//! written. Nothing here may hang, panic, or lose a finished run's results.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Stdio;

use crate::common::*;

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// A one-cell compare with small sizes, writing JSON to `output`.
fn compare_to(output: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = with_small(&["compare"], &["--variants", "glibc"])
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(
        ["--format", "json", "--output", output]
            .into_iter()
            .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_strings(args: &[String]) -> Run {
    run_with(allocbench().args(args))
}

fn refused(r: &Run, needles: &[&str]) {
    assert_eq!(r.code, 2, "{}", r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "{n:?} not in {}", r.stderr);
    }
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).unwrap();
}

#[test]
fn output_to_a_character_device_writes_it_and_keeps_it_a_device() {
    // As root, --output /dev/null turned /dev/null into a regular file.
    if !is_root() {
        eprintln!("skipped: making a device node (mknod) needs root");
        return;
    }
    let dir = temp_dir("io-device");
    let null = dir.join("null");
    nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    let r = run_strings(&compare_to(null.to_str().unwrap(), &[]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let kind = std::fs::symlink_metadata(&null).unwrap().file_type();
    assert!(kind.is_char_device(), "{kind:?}");
    // Nothing beside it: no temporary file was made in its directory.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn output_to_dev_null_works() {
    // As another user, a temporary file in /dev was refused ("Permission
    // denied"); as root, /dev/null was replaced.
    let r = run_strings(&compare_to("/dev/null", &[]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn output_to_dev_stdout_gets_the_document_once() {
    // It is written at the end only: a stream rewritten after every cell
    // would carry the document once per cell.
    let mut args = compare_to("/dev/stdout", &[]);
    // Two cells.
    let at = args.iter().position(|a| a == "glibc").unwrap();
    args[at] = "glibc,glibc-arena1".into();
    let r = run_strings(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.doc().cells.len(), 2);
}

#[test]
fn output_to_a_fifo_is_read_by_its_reader() {
    let dir = temp_dir("io-fifo-out");
    let fifo = dir.join("out");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let r = run_strings(&compare_to(fifo.to_str().unwrap(), &[]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = reader.join().unwrap();
    let doc: allocbench::results::Document = serde_json::from_str(&text).unwrap();
    assert_eq!(doc.cells.len(), 1);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn output_through_a_symlink_replaces_its_target_and_keeps_the_link() {
    let dir = temp_dir("io-link");
    std::fs::create_dir(dir.join("real")).unwrap();
    std::fs::write(dir.join("real/out.json"), "old").unwrap();
    std::os::unix::fs::symlink("real/out.json", dir.join("link.json")).unwrap();
    let link = dir.join("link.json");
    let r = run_strings(&compare_to(link.to_str().unwrap(), &[]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let text = std::fs::read_to_string(dir.join("real/out.json")).unwrap();
    assert!(text.contains("\"cells\""), "{text}");
}

#[test]
fn output_into_a_missing_directory_is_refused_not_made() {
    let dir = temp_dir("io-missing");
    let out = dir.join("no/such/out.json");
    let r = run_strings(&compare_to(out.to_str().unwrap(), &[]));
    refused(&r, &["--output", "no such directory", "no/such"]);
    assert!(!dir.join("no").exists());
}

#[test]
fn a_full_disk_leaves_no_temporary_file() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let dir = temp_dir("io-full");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8k", "tmpfs"])
        .arg(&dir)
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("skipped: this machine does not let root mount a tmpfs");
        return;
    }
    let out = dir.join("out.json");
    let r = run_strings(&compare_to(out.to_str().unwrap(), &[]));
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let _ = std::process::Command::new("umount").arg(&dir).status();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("No space left"), "{}", r.stderr);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_unwritable_stderr_does_not_lose_the_results() {
    // `eprintln!` panicked (exit 101) before --output was written.
    let dir = temp_dir("io-stderr");
    let out = dir.join("out.json");
    let args = compare_to(out.to_str().unwrap(), &[]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let status = allocbench()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(full)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(std::fs::read_to_string(&out).unwrap().contains("\"cells\""));
    // A pipe whose reader is gone: EPIPE.
    std::fs::remove_file(&out).unwrap();
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let status = allocbench()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(std::process::Stdio::from(write))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(std::fs::read_to_string(&out).unwrap().contains("\"cells\""));
}

#[test]
fn a_reader_that_went_away_ends_quietly() {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let out = allocbench()
        .arg("list")
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_cell_wider_than_65535_characters_keeps_the_table() {
    // A long variant name panicked in compare's table after the run; a
    // long description in `list`'s.
    let dir = temp_dir("io-wide");
    let name = "n".repeat(70_000);
    let long = "d".repeat(70_000);
    let file = variants_file(
        &dir,
        &format!("[variants.{name}]\nbase = \"glibc\"\ndescription = \"{long}\"\n"),
    );
    let r = run(&with_small(
        &["compare"],
        &["--variants", &name, "--variants-file", &file],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&name));
    let r = run(&["list", "--variants-file", &file]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&long));
}

#[test]
fn input_files_that_are_not_regular_files_are_refused_at_once() {
    // Each of these hung for ever on a FIFO.
    let dir = temp_dir("io-fifo-in");
    let fifo = dir.join("in.fifo");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    let base = variants_file(&dir, &format!("[variants.x]\nbase = \"{f}\"\n"));
    for args in [
        vec!["compare", "--spec", f],
        vec!["compare", "--variants-file", f],
        vec!["compare", "--variants", f],
        vec!["compare", "--variants", "x", "--variants-file", &base],
        vec!["report", f],
        vec!["plan", "--memory", "1GiB", "--from", f],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("FIFO") || r.stderr.contains("not a regular file"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let r = run(&["compare", "--spec", "/dev/zero"]);
    refused(&r, &["/dev/zero", "a character device"]);
}

#[test]
fn an_input_file_over_the_cap_is_refused() {
    // /dev/zero or a huge file was read whole (2 GB before running out of
    // memory).
    let dir = temp_dir("io-big");
    let big = dir.join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let b = big.to_str().unwrap();
    for args in [
        vec!["report", b],
        vec!["compare", "--spec", b],
        vec!["compare", "--variants-file", b],
    ] {
        let r = run(&args);
        refused(&r, &["64 MiB"]);
    }
}

#[test]
fn a_spec_too_long_for_a_command_line_is_refused_before_any_run() {
    // 4,000 size bands: every cell failed with "Argument list too long".
    let dir = temp_dir("io-bands");
    let mut spec = String::from("sizes = [");
    for i in 0..4000 {
        spec.push_str(&format!("{{ min = 16, max = {}, weight = 1.0 }},", 32 + i));
    }
    spec.push_str("]\n");
    let path = dir.join("spec.toml");
    std::fs::write(&path, spec).unwrap();
    let r = run(&[
        "compare",
        "--variants",
        "glibc",
        "--spec",
        path.to_str().unwrap(),
    ]);
    refused(&r, &["128 KiB", "size bands"]);
}

#[test]
fn an_env_value_too_long_for_linux_is_refused_before_any_run() {
    let dir = temp_dir("io-env");
    let long = "1".repeat(130 * 1024);
    let file = variants_file(
        &dir,
        &format!("[variants.big]\nbase = \"glibc\"\nenv = {{ MALLOC_ARENA_MAX = \"{long}\" }}\n"),
    );
    let r = run(&["compare", "--variants", "big", "--variants-file", &file]);
    refused(&r, &["MALLOC_ARENA_MAX", "128 KiB"]);
}

#[test]
fn resuming_with_another_command_line_is_refused_and_keeps_the_file() {
    let dir = temp_dir("io-resume");
    let out = dir.join("out.json");
    let first = run_strings(&compare_to(out.to_str().unwrap(), &[]));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = std::fs::read_to_string(&out).unwrap();
    let mut again = compare_to(out.to_str().unwrap(), &["--resume"]);
    let at = again.iter().position(|a| a == "--requests").unwrap();
    again[at + 1] = "500".into();
    let r = run_strings(&again);
    refused(&r, &["--requests 400", "--requests 500"]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before);
    // The same command line resumes (its one cell kept).
    let r = run_strings(&compare_to(out.to_str().unwrap(), &["--resume"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("kept from the earlier run"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_unwritable_plot_directory_is_refused_before_any_run() {
    // /proc/self exists but takes no new files, even from root.
    let r = run(&["compare", "--variants", "glibc", "--plot", "/proc/self"]);
    refused(&r, &["--plot", "/proc/self"]);
    assert!(!r.stderr.contains("cell 1/"), "{}", r.stderr);
}

#[test]
fn small_budgets_and_timeouts_are_shown_as_given() {
    // "fits in 0.0 MiB", "timed out after 0 s".
    let r = run(&with_small(
        &["compare"],
        &["--variants", "glibc", "--timeout", "0.001"],
    ));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("after 1 ms"), "{}", r.stdout);
    let sweep = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sweep.json");
    let r = run(&["plan", "--from", sweep, "--memory", "1KiB"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("No configuration fits in 1.0 KiB"),
        "{}",
        r.stderr
    );
}

#[test]
fn json_beside_the_table_holds_the_same_run() {
    let dir = temp_dir("io-json");
    let json = dir.join("run.json");
    let json_s = json.display().to_string();
    let table = |extra: &[&str]| run(&with_small(&["compare"], extra));
    let r = table(&["--quick", "--variants", "glibc", "--json", &json_s]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("variant"),
        "a table on stdout: {}",
        r.stdout
    );
    let doc: allocbench::results::Document =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc.cells.len(), 1);
    assert_eq!(doc.cells[0].variant, "glibc");

    // measure too; and the same file for both outputs is refused.
    let r = run(&[
        "measure",
        "--variants",
        "glibc",
        "--ready-after",
        "0.1",
        "--duration",
        "0.1",
        "--idle",
        "0",
        "--json",
        &json_s,
        "--",
        "sleep",
        "30",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("variant"), "{}", r.stdout);
    let doc: allocbench::results::Document =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc.cells[0].workload, "measure");
    let r = compare(&[
        "--quick",
        "--variants",
        "glibc",
        "--json",
        &json_s,
        "--output",
        &json_s,
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("name the same file"), "{}", r.stderr);
}
