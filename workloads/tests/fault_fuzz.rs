//! Property tests of `Fault::parse` (`ALLOCBENCH_FAULT=KIND@PHASE[#WORKER]`):
//! any text is refused or read as exactly the fault it spells, never a panic.

use allocbench_workloads::fault::Fault;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const KINDS: [&str; 6] = ["segv", "abort", "double-free", "kill", "hang", "exit"];
const MASTER_PHASES: [&str; 2] = ["started", "preloaded"];
const WORKER_PHASES: [&str; 4] = ["forked", "steady", "drained", "trimmed"];

/// See `spec_fuzz.rs`: few cases unless `PROPTEST_CASES` says more, and the
/// corpus kept beside the crate.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fault_fuzz.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// A text accepted must name a real kind and phase, and the fault read
/// back must be spelled the same way, with the same worker number.
fn check(text: &str) -> Result<(), TestCaseError> {
    let Ok(fault) = Fault::parse(text) else {
        return Ok(());
    };
    let canonical = fault.to_string();
    prop_assert_eq!(Fault::parse(&canonical), Ok(fault), "{}", canonical);
    let (kind_phase, worker) = match text.split_once('#') {
        Some((kp, w)) => (kp, w.parse::<u32>().ok()),
        None => (text, None),
    };
    let (kind, phase) = kind_phase.split_once('@').expect("accepted without '@'");
    prop_assert!(KINDS.contains(&kind), "kind {:?} accepted", kind);
    if MASTER_PHASES.contains(&phase) {
        prop_assert!(
            worker.is_none(),
            "{:?}: worker index on a master phase",
            text
        );
        prop_assert_eq!(canonical, kind_phase);
    } else {
        prop_assert!(WORKER_PHASES.contains(&phase), "phase {:?} accepted", phase);
        prop_assert_eq!(canonical, format!("{kind_phase}#{}", worker.unwrap_or(0)));
    }
    Ok(())
}

fn phase() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        MASTER_PHASES
            .iter()
            .chain(&WORKER_PHASES)
            .copied()
            .collect::<Vec<_>>(),
    )
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_text_is_refused_or_exact(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn any_bytes_are_refused_or_exact(bytes in vec(any::<u8>(), 0..64)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    /// Near-misses of the syntax: real words with odd separators and numbers.
    #[test]
    fn fault_like_text_is_refused_or_exact(
        text in "(segv|abort|kill|hang|exit|SEGV|x)?[@# ]{0,2}(started|preloaded|forked|steady|drained|trimmed|x)?(#|@)?[-+0-9 a]{0,12}"
    ) {
        check(&text)?;
    }

    #[test]
    fn valid_spellings_round_trip(
        kind in prop::sample::select(&KINDS[..]),
        phase in phase(),
        worker in prop::option::of(any::<u32>()),
    ) {
        let text = match worker {
            Some(w) => format!("{kind}@{phase}#{w}"),
            None => format!("{kind}@{phase}"),
        };
        let parsed = Fault::parse(&text);
        if MASTER_PHASES.contains(&phase) && worker.is_some() {
            prop_assert!(parsed.is_err(), "{} accepted", text);
        } else {
            let fault = parsed.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let expected = match MASTER_PHASES.contains(&phase) {
                true => format!("{kind}@{phase}"),
                false => format!("{kind}@{phase}#{}", worker.unwrap_or(0)),
            };
            prop_assert_eq!(fault.to_string(), expected);
            check(&text)?;
        }
    }
}

#[test]
fn no_fault_spells_as_nothing() {
    assert_eq!(Fault::default().to_string(), "");
    assert!(Fault::parse("").is_err());
}
