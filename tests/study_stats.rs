//! The study's statistics against scipy: Kendall's tau-b (variant 'b', with
//! ties), Student's t quantiles and the exact sign test, pinned in
//! `tests/data/kendall_reference.json` by `scripts/kendall_reference.py`.

use flatminima::kendall::tau_b;
use flatminima::stats::{sign_test, student_t_quantile};
use serde_json::Value;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kendall_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the fixture is committed")).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn kendall_tau_b_equals_scipy() {
    let r = reference();
    let cases = r["kendall_tau_b"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let (x, y) = (numbers(&case["x"]), numbers(&case["y"]));
        let ours = tau_b(&x, &y);
        match case["tau_b"].as_f64() {
            Some(want) => {
                let got = ours.unwrap_or_else(|| panic!("{}: undefined, scipy says {want}", case["name"]));
                assert!((got - want).abs() <= 1e-12, "{}: {got} vs scipy {want}", case["name"]);
            }
            None => assert_eq!(ours, None, "{}: scipy says NaN", case["name"]),
        }
    }
}

#[test]
fn t_quantiles_and_sign_tests_equal_scipy() {
    let r = reference();
    for q in r["t_quantiles"].as_array().unwrap() {
        let (df, want) = (q["df"].as_f64().unwrap(), q["q975"].as_f64().unwrap());
        let got = student_t_quantile(0.975, df);
        assert!((got - want).abs() <= 1e-10 * want, "df {df}: {got} vs scipy {want}");
    }
    for s in r["sign_tests"].as_array().unwrap() {
        let (w, l) = (s["wins"].as_u64().unwrap() as usize, s["losses"].as_u64().unwrap() as usize);
        let want = s["p"].as_f64().unwrap();
        let got = sign_test(w, l);
        assert!((got - want).abs() <= 1e-12 * want.max(1e-300) + 1e-15, "{w}:{l}: {got} vs scipy {want}");
    }
}
