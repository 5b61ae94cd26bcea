//! The web client's TypeScript types, generated from the OpenAPI document's schemas
//! (`web/src/api-types.ts`, committed and checked for drift by `tests/openapi.rs`), so the
//! client is type-checked against what the server declares rather than a hand copy.
//!
//! Covers the subset of JSON Schema the document uses: `$ref`, `oneOf`, `allOf`, `enum`,
//! `type` (one or a list, `null` included), objects with `properties`/`required`/
//! `additionalProperties`, and arrays. Anything else becomes `unknown`, which the client
//! must then narrow itself.

use serde_json::{Map, Value};

const HEADER: &str = "\
// Generated from docs/openapi.json by crates/qiao-api/src/typescript.rs: do not edit.
// Refresh both with `QIAO_UPDATE_OPENAPI=1 cargo test -p qiao-api --test openapi`.
";

/// Every schema of the document's `components.schemas` as an exported TypeScript type.
pub fn from_document(doc: &Value) -> String {
    let mut out = String::from(HEADER);
    let empty = Map::new();
    let schemas = doc.pointer("/components/schemas").and_then(Value::as_object).unwrap_or(&empty);
    for (name, schema) in schemas {
        out.push('\n');
        push_doc_comment(&mut out, schema, 0);
        let is_plain_object = schema.get("properties").is_some()
            && schema.get("oneOf").is_none()
            && schema.get("allOf").is_none()
            && type_names(schema) == ["object"];
        if is_plain_object {
            out.push_str(&format!("export interface {name} {}\n", object(schema, 0)));
        } else {
            out.push_str(&format!("export type {name} ={};\n", spaced(&render(schema, 0).text)));
        }
    }
    out
}

/// A rendered type, and whether it needs parentheses inside `T[]` or an intersection.
struct Ts {
    text: String,
    compound: bool,
}

impl Ts {
    fn simple(text: impl Into<String>) -> Self {
        Ts { text: text.into(), compound: false }
    }

    fn wrapped(self) -> String {
        if self.compound { format!("({})", self.text) } else { self.text }
    }
}

fn render(schema: &Value, indent: usize) -> Ts {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        return Ts::simple(target.rsplit('/').next().unwrap_or("unknown"));
    }
    if let Some(variants) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array) {
        return union(variants.iter().map(|v| render(v, indent + 1)).collect(), indent);
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let parts: Vec<String> = parts.iter().map(|p| render(p, indent).wrapped()).collect();
        return match parts.len() {
            0 => Ts::simple("unknown"),
            1 => Ts::simple(parts.into_iter().next().unwrap_or_default()),
            _ => Ts { text: parts.join(" & "), compound: true },
        };
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let literals = values.iter().map(|v| Ts::simple(v.to_string())).collect();
        return union(literals, indent);
    }
    let names = type_names(schema);
    if names.is_empty() {
        return Ts::simple("unknown");
    }
    union(names.iter().map(|name| of_type(name, schema, indent)).collect(), indent)
}

fn of_type(name: &str, schema: &Value, indent: usize) -> Ts {
    match name {
        "string" => Ts::simple("string"),
        "integer" | "number" => Ts::simple("number"),
        "boolean" => Ts::simple("boolean"),
        "null" => Ts::simple("null"),
        "array" => {
            let item = schema.get("items").map_or_else(|| Ts::simple("unknown"), |i| render(i, indent));
            Ts::simple(format!("{}[]", item.wrapped()))
        }
        "object" => Ts::simple(object(schema, indent)),
        _ => Ts::simple("unknown"),
    }
}

/// Object literal for `properties`, a record for `additionalProperties`, or both.
fn object(schema: &Value, indent: usize) -> String {
    let properties = schema.get("properties").and_then(Value::as_object);
    let extra = match schema.get("additionalProperties") {
        Some(Value::Bool(false)) => None,
        Some(Value::Object(inner)) if !inner.is_empty() => {
            Some(render(&schema["additionalProperties"], indent + 1).text)
        }
        _ if properties.is_none() => Some("unknown".to_owned()),
        _ => None,
    };
    let Some(properties) = properties.filter(|p| !p.is_empty()) else {
        return format!("{{ [key: string]: {} }}", extra.unwrap_or_else(|| "unknown".into()));
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let pad = "  ".repeat(indent + 1);
    let mut out = String::from("{\n");
    for (key, property) in properties {
        push_doc_comment(&mut out, property, indent + 1);
        let optional = if required.contains(&key.as_str()) { "" } else { "?" };
        let ty = render(property, indent + 1).text;
        out.push_str(&format!("{pad}{}{optional}:{};\n", property_name(key), spaced(&ty)));
    }
    if let Some(extra) = extra {
        out.push_str(&format!("{pad}[key: string]: {extra};\n"));
    }
    out.push_str(&"  ".repeat(indent));
    out.push('}');
    out
}

/// `A | B`, one variant per line when any of them spans lines (tagged unions of objects).
fn union(mut variants: Vec<Ts>, indent: usize) -> Ts {
    let mut seen = Vec::new();
    variants.retain(|v| {
        let fresh = !seen.contains(&v.text);
        seen.push(v.text.clone());
        fresh
    });
    match variants.len() {
        0 => Ts::simple("never"),
        1 => variants.pop().unwrap_or_else(|| Ts::simple("never")),
        _ if variants.iter().any(|v| v.text.contains('\n')) => {
            let pad = "  ".repeat(indent + 1);
            let lines: Vec<String> = variants.into_iter().map(|v| format!("\n{pad}| {}", v.text)).collect();
            Ts { text: lines.concat(), compound: true }
        }
        _ => Ts { text: variants.into_iter().map(Ts::wrapped).collect::<Vec<_>>().join(" | "), compound: true },
    }
}

/// A type after `=` or `:`: a multi-line union starts on the next line.
fn spaced(ty: &str) -> String {
    if ty.starts_with('\n') { ty.to_owned() } else { format!(" {ty}") }
}

fn type_names(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ if schema.get("properties").is_some() => vec!["object"],
        _ => Vec::new(),
    }
}

fn property_name(key: &str) -> String {
    let identifier = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if identifier { key.to_owned() } else { Value::from(key).to_string() }
}

fn push_doc_comment(out: &mut String, schema: &Value, indent: usize) {
    // A nullable reference carries its description inside the reference's variant.
    let variant = || {
        schema.get("oneOf").and_then(Value::as_array)?.iter().find_map(|v| v.get("description")).and_then(Value::as_str)
    };
    let Some(text) = schema.get("description").and_then(Value::as_str).or_else(variant).map(str::trim) else { return };
    if text.is_empty() {
        return;
    }
    let pad = "  ".repeat(indent);
    let text = text.replace("*/", "*\\/");
    let lines: Vec<&str> = text.lines().collect();
    if let [line] = lines.as_slice() {
        out.push_str(&format!("{pad}/** {line} */\n"));
        return;
    }
    out.push_str(&format!("{pad}/**\n"));
    for line in lines {
        let line = line.trim_end();
        if line.is_empty() {
            out.push_str(&format!("{pad} *\n"));
        } else {
            out.push_str(&format!("{pad} * {line}\n"));
        }
    }
    out.push_str(&format!("{pad} */\n"));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::from_document;

    fn types(schemas: serde_json::Value) -> String {
        let out = from_document(&json!({ "components": { "schemas": schemas } }));
        out.split_once("\n\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
    }

    #[test]
    fn objects_become_interfaces_with_optional_and_nullable_fields() {
        let out = types(json!({
            "Item": {
                "type": "object",
                "description": "One item.",
                "required": ["id", "tags"],
                "properties": {
                    "id": { "$ref": "#/components/schemas/ItemId" },
                    "note": { "type": ["string", "null"], "description": "Free text." },
                    "at": { "oneOf": [{ "$ref": "#/components/schemas/i64", "description": "When." }, { "type": "null" }] },
                    "tags": { "type": "array", "items": { "type": ["string", "null"] } },
                    "x-odd": { "type": "boolean" }
                }
            }
        }));
        assert_eq!(
            out,
            "/** One item. */\nexport interface Item {\n  /** When. */\n  at?: i64 | null;\n  id: ItemId;\n  /** Free text. */\n  \
             note?: string | null;\n  tags: (string | null)[];\n  \"x-odd\"?: boolean;\n}\n"
        );
    }

    #[test]
    fn enums_records_and_tagged_unions() {
        let out = types(json!({
            "Kind": { "type": "string", "enum": ["a", "b"] },
            "Counts": { "type": "object", "additionalProperties": { "type": "integer" } },
            "Details": { "type": "object" },
            "Event": { "oneOf": [
                { "type": "object", "required": ["type"], "properties": { "type": { "type": "string", "enum": ["x"] } } },
                { "type": "object", "required": ["type", "n"], "properties": {
                    "n": { "type": "integer" }, "type": { "type": "string", "enum": ["y"] } } }
            ] },
            "Both": { "allOf": [{ "$ref": "#/components/schemas/Kind" }, { "$ref": "#/components/schemas/Details" }] }
        }));
        assert!(out.contains("export type Kind = \"a\" | \"b\";\n"), "{out}");
        assert!(out.contains("export type Counts = { [key: string]: number };\n"), "{out}");
        assert!(out.contains("export type Details = { [key: string]: unknown };\n"), "{out}");
        assert!(out.contains("export type Both = Kind & Details;\n"), "{out}");
        assert!(
            out.contains(
                "export type Event =\n  | {\n    type: \"x\";\n  }\n  | {\n    n: number;\n    type: \"y\";\n  };\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn descriptions_cannot_end_the_comment() {
        let out = types(json!({ "A": { "type": "string", "description": "a */ b\n\nc" } }));
        assert_eq!(out, "/**\n * a *\\/ b\n *\n * c\n */\nexport type A = string;\n");
    }
}
