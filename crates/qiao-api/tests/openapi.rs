//! The committed OpenAPI document (`docs/openapi.json`) and the web client's types generated
//! from it (`web/src/api-types.ts`) must match the code. To refresh both:
//! `QIAO_UPDATE_OPENAPI=1 cargo test -p qiao-api --test openapi`.

#[test]
fn committed_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let generated = qiao_api::openapi_json();
    if std::env::var_os("QIAO_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale; regenerate it with `QIAO_UPDATE_OPENAPI=1 cargo test -p qiao-api --test openapi`"
    );
}

#[test]
fn committed_typescript_types_are_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/src/api-types.ts");
    let generated = qiao_api::typescript_types();
    if std::env::var_os("QIAO_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "web/src/api-types.ts is stale; regenerate it with `QIAO_UPDATE_OPENAPI=1 cargo test -p qiao-api --test openapi`"
    );
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
