//! `--help` of allocbench and of each command, as a user sees it, against
//! reviewed snapshots (`tests/snapshots/`): a flag, heading, default or
//! example that changes is a visible diff. After a deliberate change:
//! `INSTA_UPDATE=always cargo test -p allocbench --test integration help::`,
//! review the diff, commit the `.snap` files. Otherwise a missing or
//! different snapshot fails the test (insta writes a `.snap.new` beside it,
//! or nothing on CI).

use std::process::{Command, Stdio};

use allocbench::cli::{Cli, Command as Sub};
use clap::Parser;

/// The public commands; `__worker` and `__watchdog` are hidden.
const COMMANDS: &[&str] = &[
    "list", "run", "compare", "sweep", "plan", "report", "merge", "measure", "inspect",
];

/// `allocbench [COMMAND] --help`, 100 columns wide. clap wraps to the
/// terminal when stdin, stdout or stderr is one, else to `COLUMNS`: none of
/// the three is a terminal here, so the width is always `COLUMNS`.
fn help(command: Option<&str>) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_allocbench"))
        .args(command)
        .arg("--help")
        .env("COLUMNS", "100")
        .stdin(Stdio::null())
        .output()
        .expect("allocbench runs");
    assert!(
        out.status.success(),
        "{command:?} --help: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

#[test]
fn top_level_help() {
    insta::assert_snapshot!("allocbench", help(None));
}

#[test]
fn every_command_has_its_help() {
    for &command in COMMANDS {
        insta::assert_snapshot!(command, help(Some(command)));
    }
}

#[test]
fn every_help_ends_with_two_examples_and_the_exit_codes() {
    for command in std::iter::once(None).chain(COMMANDS.iter().copied().map(Some)) {
        let text = help(command);
        let (_, after) = text
            .split_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("{command:?}: no examples in\n{text}"));
        let (examples, codes) = after
            .split_once("\nExit codes:\n")
            .unwrap_or_else(|| panic!("{command:?}: no exit codes in\n{text}"));
        let runs = examples
            .lines()
            .filter(|l| l.starts_with("  allocbench "))
            .count();
        assert_eq!(runs, 2, "{command:?}: {examples}");
        for code in ["0 ", "2 "] {
            assert!(
                codes.lines().any(|l| l.trim_start().starts_with(code)),
                "{command:?}: no exit code {code}in {codes}"
            );
        }
    }
}

/// The examples of a help text, continuation lines joined.
fn examples(text: &str) -> Vec<String> {
    let after = text.split_once("\nExamples:\n").map_or("", |(_, a)| a);
    let block = after
        .split_once("\nExit codes:\n")
        .map_or(after, |(b, _)| b);
    block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn every_example_is_a_valid_command_line() {
    for command in std::iter::once(None).chain(COMMANDS.iter().copied().map(Some)) {
        let examples = examples(&help(command));
        assert_eq!(examples.len(), 2, "{command:?}: {examples:?}");
        for example in examples {
            let words = shlex::split(&example).expect("an example splits into words");
            if let Err(e) = Cli::try_parse_from(&words) {
                panic!("{example}: {e}");
            }
        }
    }
}

#[test]
fn the_interrupted_exit_code_in_help_is_the_one_used() {
    let code = allocbench::exec::interrupt::EXIT_INTERRUPTED.to_string();
    for command in [
        None,
        Some("run"),
        Some("compare"),
        Some("sweep"),
        Some("plan"),
        Some("measure"),
    ] {
        let text = help(command);
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code}  interrupted"))),
            "{command:?}: no {code} in {text}"
        );
    }
}

#[test]
fn internal_commands_are_hidden() {
    let text = help(None);
    assert!(
        !text.contains("__worker") && !text.contains("__watchdog"),
        "{text}"
    );
}

#[test]
fn report_still_takes_plots_as_a_hidden_alias_of_plot() {
    let cli = Cli::try_parse_from(["allocbench", "report", "--plots", "charts", "a.json"])
        .expect("--plots parses");
    let Sub::Report(args) = cli.command else {
        panic!("not report: {cli:?}");
    };
    assert_eq!(args.plot.as_deref(), Some(std::path::Path::new("charts")));
    assert!(!help(Some("report")).contains("--plots"));
}
