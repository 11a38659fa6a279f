//! The golden run, natively: `tests/data/golden_run.json` must be reproduced
//! bit for bit. `FLATMINIMA_BLESS=1 cargo test --test golden` rewrites it
//! (only after a deliberate change to the numerics). `tests/web.rs` checks
//! the same file in wasm.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/golden.rs"]
mod golden;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/golden_run.json");

#[test]
fn golden_run_is_reproduced_bit_for_bit() {
    if std::env::var("FLATMINIMA_BLESS").is_ok_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&golden::fixture()).unwrap() + "\n";
        std::fs::write(FIXTURE, text).expect("write the fixture");
        eprintln!("wrote {FIXTURE}");
    }
    let text =
        std::fs::read_to_string(FIXTURE).expect("tests/data/golden_run.json exists (FLATMINIMA_BLESS=1 writes it)");
    let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
    let problems = golden::compare_with(&stored);
    assert!(problems.is_empty(), "the golden run changed:\n{}", problems.join("\n"));

    // The stored cases are the current ones (catches an edit to CASES without re-blessing).
    let names: Vec<&str> = stored["cases"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    let expected: Vec<&str> = golden::CASES.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected);
    for (case, (_, settings)) in stored["cases"].as_array().unwrap().iter().zip(golden::CASES) {
        let config = golden::case_config(settings);
        assert_eq!(case["config"], serde_json::to_value(&config).unwrap(), "re-bless after changing a case");
    }
}
