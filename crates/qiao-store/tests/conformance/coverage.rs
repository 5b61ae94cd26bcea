//! Fails when a public storage function is not exercised by this suite.

use std::collections::BTreeSet;

fn public_async_fns(src: &str) -> Vec<String> {
    src.lines()
        .filter_map(|l| l.trim_start().strip_prefix("pub async fn "))
        .map(|rest| rest.split(['(', '<']).next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn every_storage_function_is_covered() {
    let root = env!("CARGO_MANIFEST_DIR");
    let tests: String = std::fs::read_dir(format!("{root}/tests/conformance"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let mut missing = BTreeSet::new();
    for entry in std::fs::read_dir(format!("{root}/src")).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        if matches!(module.as_str(), "conn" | "migrate" | "testing") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        for f in public_async_fns(&src) {
            let called = if module == "writer" || module == "lib" {
                // Methods of `Tx` and `Store`.
                tests.contains(&format!(".{f}(")) || tests.contains(&format!("::{f}("))
            } else {
                tests.contains(&format!("{module}::{f}("))
            };
            if !called {
                missing.insert(format!("{module}::{f}"));
            }
        }
    }
    assert!(missing.is_empty(), "storage functions without a conformance test: {missing:?}");
}
