//! The committed OpenAPI document (`docs/openapi.json`) and the web client's types generated
//! from it (`web/src/api-types.ts`) must match the code. To refresh both:
//! `QIAO_UPDATE_OPENAPI=1 cargo test -p qiao-api --test openapi`.

/// Compares a generated file with its committed copy (`path` from the workspace root), or
/// writes it under `QIAO_UPDATE_OPENAPI`.
fn check_committed(path: &str, generated: &str) {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("QIAO_UPDATE_OPENAPI").is_some() {
        std::fs::write(&full, generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&full).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is stale; regenerate it with `QIAO_UPDATE_OPENAPI=1 cargo test -p qiao-api --test openapi`"
    );
}

#[test]
fn committed_openapi_document_is_current() {
    check_committed("docs/openapi.json", &qiao_api::openapi_json());
}

#[test]
fn committed_typescript_types_are_current() {
    check_committed("web/src/api-types.ts", &qiao_api::typescript_types());
}

#[test]
fn every_operation_is_documented() {
    let doc: serde_json::Value = serde_json::from_str(&qiao_api::openapi_json()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let summary = op["summary"].as_str().unwrap_or_default();
            assert!(!summary.is_empty(), "{method} {path} has no summary (doc comment)");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{method} {path} has no tag");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
        }
    }
}
