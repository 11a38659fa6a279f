//! The settings schema (crates/core/src/settings.rs) is declared once; what cannot be
//! derived from it at run time is checked against it here: the README's table
//! of attributes and the element's list of attribute names.

use std::collections::BTreeSet;

use flatminima::settings::{markdown_rows, SETTINGS};

fn read(path: &str) -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_readme_attribute_table_is_the_schemas() {
    let readme = read("README.md");
    // The marker, the table's header, then one row per setting (the element's own attributes follow).
    let marker = "<!-- settings table: generated from crates/core/src/settings.rs, checked by tests/schema.rs -->\n";
    let from = readme.find(marker).expect("README.md has no settings-table marker") + marker.len();
    let expected = format!("| attribute | values (default) |\n|---|---|\n{}", markdown_rows());
    assert!(
        readme[from..].starts_with(&expected),
        "README.md's settings rows differ from crates/core/src/settings.rs; they should read:\n{expected}"
    );
}

#[test]
fn the_elements_attribute_names_are_the_schemas() {
    let js = read("www/flatminima-sandbox.js");
    let from = js.find("const SETTINGS = [").expect("no SETTINGS list in the element") + "const SETTINGS = [".len();
    let to = from + js[from..].find("];").expect("unterminated SETTINGS list");
    let listed: BTreeSet<&str> =
        js[from..to].split(',').map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()).collect();
    let declared: BTreeSet<&str> = SETTINGS.iter().map(|s| s.name).collect();
    assert_eq!(listed, declared, "www/flatminima-sandbox.js's SETTINGS differs from crates/core/src/settings.rs");
}
