//! The limits the server enforces on input, written into the OpenAPI document from the same
//! constants the checks use: lengths, shapes, ranges and list sizes (allowed values come from
//! the types: query and body enums are Rust enums). A client (or a fuzzer) that builds
//! requests from the document then builds requests the server accepts, and a limit changed
//! in the domain changes the document with it.
//!
//! What a schema cannot say (a department that must exist, a rule that depends on the kind of
//! conversation) is still checked only by the server, with a 4xx and a stable code.

use qiao_domain::{conversation, file, message, org, user};
use qiao_service::users::{PAGE_MAX, SEARCH_MAX};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AdditionalProperties, Object, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr, Schema};

/// String shapes, as JSON-Schema `pattern`s (ECMA-262 syntax).
mod pattern {
    /// The characters Rust's `trim` removes (Unicode White_Space), spelled out: ECMA-262's
    /// `\s` differs (it adds U+FEFF and leaves out U+0085).
    macro_rules! ws {
        () => {
            r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
        };
    }
    /// Text-direction controls (`qiao_domain::text::is_direction_control`).
    macro_rules! bidi {
        () => {
            r"\u202a-\u202e\u2066-\u2069"
        };
    }
    /// Characters that show nothing (`qiao_domain::text::is_invisible`).
    macro_rules! invisible {
        () => {
            r"\xad\u061c\u180e\u200b-\u200f\u2060-\u2064\ufeff"
        };
    }
    /// One line, possibly empty: no control characters, no line or paragraph separators
    /// (text-direction controls are dropped by the server).
    pub const LINE: &str = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$";
    /// One line with at least one visible character (the server trims spaces around names and
    /// drops text-direction controls; invisible characters alone are not a name).
    pub const NAME: &str = concat!(
        r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*[^",
        ws!(),
        r"\x00-\x1f\x7f-\x9f",
        bidi!(),
        invisible!(),
        r"][^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
    );
    /// Text over several lines: tabs and line breaks, no other control characters.
    pub const TEXT: &str = r"^(?:[^\x00-\x08\x0b-\x1f\x7f-\x9f]|\r\n)*$";
    /// A message body: text over several lines.
    pub const BODY: &str = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$";
    /// A message body with at least one visible character.
    pub const BODY_VISIBLE: &str = concat!(
        r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^",
        ws!(),
        r"\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    );
    /// Something to search for (filters such as `from:` are checked by the server).
    pub const QUERY: &str = concat!("[^", ws!(), "]");
    /// At least two characters; spaces around it are trimmed.
    pub const USERNAME: &str = concat!("^[", ws!(), r"]*[A-Za-z0-9][A-Za-z0-9._-]+[", ws!(), "]*$");
    /// An e-mail address, or blank for none.
    pub const EMAIL: &str = concat!(
        "^[",
        ws!(),
        "]*(?:[^@",
        ws!(),
        bidi!(),
        invisible!(),
        r"\x00-\x1f\x7f-\x9f]+@[^@.",
        ws!(),
        bidi!(),
        invisible!(),
        r"\x00-\x1f\x7f-\x9f]+(?:\.[^@.",
        ws!(),
        bidi!(),
        invisible!(),
        r"\x00-\x1f\x7f-\x9f]+)+[",
        ws!(),
        "]*)?$"
    );
    /// Printable ASCII.
    pub const CLIENT_KEY: &str = r"^[\x21-\x7e]+$";
    pub const EMOJI: &str = concat!("^[", ws!(), "]*[^", ws!(), r"\x00-\x1f\x7f-\x9f]+[", ws!(), "]*$");
}

#[derive(Clone, Copy)]
enum Limit {
    /// A string of `min..=max` characters matching a pattern.
    Text(usize, usize, &'static str),
    /// A string of `min..=max` characters, any characters.
    Length(usize, usize),
    /// A list of `min..=max` items.
    Items(usize, usize),
    /// An integer in `min..=max` (no upper bound when `max` is `None`).
    Int(i64, Option<i64>),
}

use Limit::*;

/// The largest page any list returns (`limit`).
const PAGE: Limit = Int(1, Some(PAGE_MAX as i64));
const CHANNEL_NAME: Limit = Text(1, conversation::NAME_MAX, pattern::NAME);
const GROUP_NAME: Limit = Text(0, conversation::NAME_MAX, pattern::LINE);
const TOPIC: Limit = Text(0, conversation::TOPIC_MAX, pattern::LINE);
const DESCRIPTION: Limit = Text(0, conversation::DESCRIPTION_MAX, pattern::TEXT);
const DISPLAY_NAME: Limit = Text(1, user::DISPLAY_NAME_MAX, pattern::NAME);
const TITLE: Limit = Text(0, user::TITLE_MAX, pattern::LINE);
const USERNAME: Limit = Text(2, user::USERNAME_MAX, pattern::USERNAME);
const EMAIL: Limit = Text(0, user::EMAIL_MAX, pattern::EMAIL);
const PASSWORD: Limit = Length(user::PASSWORD_MIN, user::PASSWORD_MAX);
const DEVICE_NAME: Limit = Text(0, qiao_domain::session::DEVICE_NAME_MAX, pattern::LINE);
const DEPARTMENT_NAME: Limit = Text(1, org::DEPARTMENT_NAME_MAX, pattern::NAME);
const ORG_NAME: Limit = Text(1, org::ORG_NAME_MAX, pattern::NAME);
const SECONDARY_DEPARTMENTS: Limit = Items(0, user::SECONDARY_DEPARTMENTS_MAX);
const MANAGED_DEPARTMENTS: Limit = Items(0, user::MANAGED_DEPARTMENTS_MAX);
const SEQ: Limit = Int(0, None);
const CURSOR: Limit = Length(0, qiao_service::users::CURSOR_MAX);
/// A draft: a message body that may be empty (which clears it).
const DRAFT: Limit = Text(0, message::BODY_MAX, pattern::BODY);

/// `(component schema, property, limit)`.
const FIELDS: &[(&str, &str, Limit)] = &[
    ("CreateChannelRequest", "name", CHANNEL_NAME),
    ("CreateChannelRequest", "topic", TOPIC),
    ("CreateChannelRequest", "description", DESCRIPTION),
    ("CreateChannelRequest", "member_ids", Items(0, conversation::INVITE_BATCH_MAX)),
    ("CreateChannelRequest", "departments", Items(0, conversation::LINKED_DEPARTMENTS_MAX)),
    // Empty clears a group DM's name; a channel's must have one (422 otherwise).
    ("UpdateConversationRequest", "name", GROUP_NAME),
    ("UpdateConversationRequest", "topic", TOPIC),
    ("UpdateConversationRequest", "description", DESCRIPTION),
    ("CreateGroupRequest", "user_ids", Items(2, conversation::GROUP_MAX - 1)),
    ("CreateGroupRequest", "name", GROUP_NAME),
    ("AddMembersRequest", "user_ids", Items(1, conversation::INVITE_BATCH_MAX)),
    ("SetDepartmentsRequest", "departments", Items(0, conversation::LINKED_DEPARTMENTS_MAX)),
    ("MarkReadRequest", "seq", SEQ),
    ("SendMessageRequest", "body", Text(0, message::BODY_MAX, pattern::BODY)),
    ("SendMessageRequest", "client_key", Text(1, message::CLIENT_KEY_MAX, pattern::CLIENT_KEY)),
    ("SendMessageRequest", "file_ids", Items(0, file::FILES_PER_MESSAGE_MAX)),
    ("EditMessageRequest", "body", Text(1, message::BODY_MAX, pattern::BODY_VISIBLE)),
    ("SaveDraftRequest", "body", DRAFT),
    ("ReactionRequest", "emoji", Text(1, message::EMOJI_MAX, pattern::EMOJI)),
    ("CreateDepartment", "name", DEPARTMENT_NAME),
    ("UpdateDepartment", "name", DEPARTMENT_NAME),
    ("UpdateOrg", "name", ORG_NAME),
    ("UpdateProfile", "display_name", DISPLAY_NAME),
    ("UpdateProfile", "title", TITLE),
    ("ChangePassword", "new_password", PASSWORD),
    // Longer ones are refused as the wrong password (no account has a longer login).
    ("ChangePassword", "current_password", Length(0, user::PASSWORD_MAX)),
    ("SignInRequest", "login", Length(0, user::EMAIL_MAX)),
    ("SignInRequest", "password", Length(0, user::PASSWORD_MAX)),
    ("SignInRequest", "device_name", DEVICE_NAME),
    ("CreateUserRequest", "username", USERNAME),
    ("CreateUserRequest", "display_name", DISPLAY_NAME),
    ("CreateUserRequest", "title", TITLE),
    ("CreateUserRequest", "email", EMAIL),
    ("CreateUserRequest", "password", PASSWORD),
    ("CreateUserRequest", "secondary_department_ids", SECONDARY_DEPARTMENTS),
    ("CreateUserRequest", "managed_department_ids", MANAGED_DEPARTMENTS),
    ("UpdateUserRequest", "username", USERNAME),
    ("UpdateUserRequest", "display_name", DISPLAY_NAME),
    ("UpdateUserRequest", "title", TITLE),
    ("UpdateUserRequest", "email", EMAIL),
    ("UpdateUserRequest", "secondary_department_ids", SECONDARY_DEPARTMENTS),
    ("UpdateUserRequest", "managed_department_ids", MANAGED_DEPARTMENTS),
    ("SetupRequest", "token", Length(1, qiao_service::setup::SETUP_TOKEN_MAX)),
    ("SetupRequest", "device_name", DEVICE_NAME),
    ("SetupRequest", "username", USERNAME),
    ("SetupRequest", "display_name", DISPLAY_NAME),
    ("SetupRequest", "email", EMAIL),
    ("SetupRequest", "password", PASSWORD),
    ("SetupRequest", "org_name", ORG_NAME),
];

/// `(path, query parameter, limit)`.
const PARAMS: &[(&str, &str, Limit)] = &[
    ("/api/v1/audit", "limit", PAGE),
    ("/api/v1/audit", "cursor", CURSOR),
    ("/api/v1/conversations/browse", "cursor", CURSOR),
    ("/api/v1/departments/{id}/members", "cursor", CURSOR),
    ("/api/v1/users", "cursor", CURSOR),
    ("/api/v1/threads", "cursor", CURSOR),
    ("/api/v1/conversations/browse", "limit", PAGE),
    ("/api/v1/conversations/browse", "q", Length(0, SEARCH_MAX)),
    ("/api/v1/conversations/{id}/members", "limit", PAGE),
    ("/api/v1/conversations/{id}/messages", "limit", PAGE),
    ("/api/v1/conversations/{id}/messages", "before", SEQ),
    ("/api/v1/conversations/{id}/messages", "after", SEQ),
    ("/api/v1/conversations/{id}/files", "limit", PAGE),
    ("/api/v1/conversations/{id}/files", "duration_ms", Int(0, Some(qiao_service::files::DURATION_MAX_MS))),
    ("/api/v1/conversations/{id}/files", "name", Length(0, file::FILE_NAME_INPUT_MAX)),
    ("/api/v1/departments/{id}/members", "limit", PAGE),
    ("/api/v1/departments/{id}/members", "q", Length(0, SEARCH_MAX)),
    ("/api/v1/messages/{id}/thread", "limit", PAGE),
    ("/api/v1/messages/{id}/thread", "before", SEQ),
    ("/api/v1/messages/{id}/thread", "after", SEQ),
    ("/api/v1/threads", "limit", PAGE),
    ("/api/v1/users", "limit", PAGE),
    ("/api/v1/users", "q", Length(0, SEARCH_MAX)),
    ("/api/v1/search", "q", Text(1, qiao_service::search::QUERY_MAX, pattern::QUERY)),
    ("/api/v1/search", "limit", Int(1, Some(crate::routes::search::LIMIT_MAX as i64))),
    ("/api/v1/search", "offset", Int(0, Some(crate::routes::search::OFFSET_MAX as i64))),
];

/// Writes the limits into `doc`. Returns the entries that matched nothing in it (a renamed
/// schema, property or parameter): the tests require none.
pub fn apply(doc: &mut OpenApi) -> Vec<String> {
    let mut unmatched = Vec::new();
    let mut schemas = doc.components.as_mut().map(|c| &mut c.schemas);
    for &(name, property, limit) in FIELDS {
        let target = schemas.as_mut().and_then(|s| s.get_mut(name)).and_then(|s| match s {
            RefOr::T(Schema::Object(o)) => o.properties.get_mut(property),
            _ => None,
        });
        let applied = match target {
            Some(RefOr::T(schema)) => constrain(schema, limit),
            _ => false,
        };
        if !applied {
            unmatched.push(format!("{name}.{property}"));
        }
    }
    for &(path, param, limit) in PARAMS {
        let item = doc.paths.paths.get_mut(path);
        let mut ops = item.into_iter().flat_map(|i| [i.get.as_mut(), i.post.as_mut()]).flatten();
        let found = ops.find_map(|op| query_param(op, param)).is_some_and(|schema| constrain(schema, limit));
        if !found {
            unmatched.push(format!("{path}?{param}"));
        }
    }
    let upload = doc.paths.paths.get_mut(UPLOAD).and_then(|i| i.post.as_mut()).and_then(|op| op.request_body.as_mut());
    let body = upload.and_then(|b| match b {
        RefOr::T(b) => b.content.get_mut("application/octet-stream"),
        RefOr::Ref(_) => None,
    });
    match body {
        Some(RefOr::T(content)) => content.schema = Some(RefOr::T(binary())),
        _ => unmatched.push(format!("{UPLOAD} octet-stream body")),
    }
    common_responses(doc);
    if !close_client_frames(doc) {
        unmatched.push("ClientMessage variants".into());
    }
    unmatched
}

/// The WebSocket's client frames refuse fields they do not know (`invalid_frame`), which a
/// tagged enum's schema does not say by itself: each variant gets `additionalProperties:
/// false`, except `active`, which serde lets carry anything (a unit variant). True when the
/// variants were found.
fn close_client_frames(doc: &mut OpenApi) -> bool {
    let schema = doc.components.as_mut().and_then(|c| c.schemas.get_mut("ClientMessage"));
    let Some(RefOr::T(Schema::OneOf(one_of))) = schema else { return false };
    let mut closed = 0;
    for variant in &mut one_of.items {
        let RefOr::T(Schema::Object(o)) = variant else { return false };
        let op = match o.properties.get("op") {
            Some(RefOr::T(Schema::Object(op))) => op.enum_values.as_ref().and_then(|v| v.first()).cloned(),
            _ => None,
        };
        match op.as_ref().and_then(|v| v.as_str()) {
            Some("active") => {}
            Some(_) => {
                o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
                closed += 1;
            }
            None => return false,
        }
    }
    closed > 0
}

/// Answers any operation may give besides its own: every authenticated one (those answering
/// 401) 403 `password_change_required` until a temporary password is changed, and every API
/// operation 503 `unavailable` (the database or storage unavailable, the request past its
/// time, the server stopping). Both with the error body, like the operation's 401.
fn common_responses(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
        for op in ops.into_iter().flatten() {
            let responses = &mut op.responses.responses;
            if responses.contains_key("401") {
                responses.entry("403".into()).or_insert_with(|| error_response("Forbidden"));
            }
            if path.starts_with("/api/v1/") && path != "/api/v1/ws" {
                responses.entry("503".into()).or_insert_with(|| error_response("Service Unavailable"));
            }
            // OpenAPI requires a description on every response: the status's reason phrase
            // where the route gave none.
            for (status, response) in responses.iter_mut() {
                if let RefOr::T(r) = response
                    && r.description.is_empty()
                {
                    let reason = status.parse::<u16>().ok().and_then(|s| axum::http::StatusCode::from_u16(s).ok());
                    r.description = reason.and_then(|s| s.canonical_reason()).unwrap_or("Response").to_owned();
                }
            }
        }
    }
}

/// A response with the error body.
fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    let content = utoipa::openapi::ContentBuilder::new()
        .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"))))
        .build();
    RefOr::T(
        utoipa::openapi::ResponseBuilder::new().description(description).content("application/json", content).build(),
    )
}

const UPLOAD: &str = "/api/v1/conversations/{id}/files";

fn query_param<'a>(op: &'a mut Operation, name: &str) -> Option<&'a mut Schema> {
    op.parameters.as_mut()?.iter_mut().find_map(|p| match p {
        RefOr::T(p) if p.name == name => match p.schema.as_mut() {
            Some(RefOr::T(s)) => Some(s),
            _ => None,
        },
        _ => None,
    })
}

/// Applies `limit` to `schema`; false when the schema is not of the limit's kind.
fn constrain(schema: &mut Schema, limit: Limit) -> bool {
    match (schema, limit) {
        (Schema::Object(o), Text(min, max, pattern)) if is(o, Type::String) => {
            (o.min_length, o.max_length, o.pattern) = (Some(min), Some(max), Some(pattern.to_owned()));
        }
        (Schema::Object(o), Length(min, max)) if is(o, Type::String) => {
            (o.min_length, o.max_length) = ((min > 0).then_some(min), Some(max));
        }
        (Schema::Object(o), Int(min, max)) if is(o, Type::Integer) => {
            o.minimum = Some(utoipa::Number::Int(min as isize));
            o.maximum = max.map(|m| utoipa::Number::Int(m as isize));
        }
        (Schema::Array(a), Items(min, max)) => {
            (a.min_items, a.max_items) = ((min > 0).then_some(min), Some(max));
        }
        _ => return false,
    }
    true
}

fn is(o: &Object, ty: Type) -> bool {
    match &o.schema_type {
        SchemaType::Type(t) => *t == ty,
        SchemaType::Array(ts) => ts.contains(&ty),
        SchemaType::AnyValue => false,
    }
}

/// An uploaded file's bytes, as OpenAPI 3.1 describes binary content.
fn binary() -> Schema {
    let mut o = Object::with_type(Type::String);
    o.format = Some(SchemaFormat::Custom("binary".into()));
    o.content_media_type = "application/octet-stream".into();
    Schema::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_finds_its_field_or_parameter() {
        let mut doc = crate::api_doc();
        assert_eq!(apply(&mut doc), Vec::<String>::new());
    }

    #[test]
    fn limits_land_in_the_document() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let name = &doc["components"]["schemas"]["CreateChannelRequest"]["properties"]["name"];
        assert_eq!(name["maxLength"], conversation::NAME_MAX);
        assert_eq!(name["minLength"], 1);
        let members = &doc["components"]["schemas"]["AddMembersRequest"]["properties"]["user_ids"];
        assert_eq!(members["maxItems"], conversation::INVITE_BATCH_MAX);
        let limit = doc["paths"]["/api/v1/users"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap();
        assert_eq!(limit["schema"]["maximum"], PAGE_MAX);
    }

    /// Every string of up to `len` characters from `alphabet`.
    fn strings(alphabet: &[&str], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            last = last.iter().flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}"))).collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    /// The document's rule for a field and the server's check agree on every sample: short
    /// strings over characters chosen to sit on the edges (spaces Rust trims and ECMA-262's
    /// `\s` does not, controls, separators, line breaks) and strings around the maximum.
    /// `exact`: the check accepts what the schema allows; otherwise it may refuse more (an
    /// emoji that is not one), but never accepts what the schema forbids.
    #[test]
    fn the_patterns_agree_with_the_validators() {
        type Check = fn(&str) -> bool;
        let cases: &[(&str, Limit, Check, bool)] = &[
            ("channel name", CHANNEL_NAME, |s| conversation::validate_name(s).is_ok(), true),
            ("topic", TOPIC, |s| conversation::validate_topic(s).is_ok(), true),
            ("group name", GROUP_NAME, |s| conversation::validate_group_name(s).is_ok(), true),
            ("description", DESCRIPTION, |s| conversation::validate_description(s).is_ok(), true),
            ("display name", DISPLAY_NAME, |s| user::validate_display_name(s).is_ok(), true),
            ("title", TITLE, |s| user::validate_title(s).is_ok(), true),
            ("department", DEPARTMENT_NAME, |s| org::validate_department_name(s).is_ok(), true),
            ("username", USERNAME, |s| user::normalize_username(s).is_ok(), true),
            ("e-mail", EMAIL, |s| user::optional_email(s).is_ok(), true),
            ("body", Text(0, message::BODY_MAX, pattern::BODY), |s| message::validate_body(s).is_ok(), false),
            ("edit", Text(1, message::BODY_MAX, pattern::BODY_VISIBLE), |s| message::validate_body(s).is_ok(), true),
            ("draft", DRAFT, |s| message::validate_draft(s).is_ok(), true),
            (
                "client key",
                Text(1, message::CLIENT_KEY_MAX, pattern::CLIENT_KEY),
                |s| message::validate_client_key(s).is_ok(),
                true,
            ),
            ("emoji", Text(1, message::EMOJI_MAX, pattern::EMOJI), |s| message::validate_emoji(s).is_ok(), false),
            ("password", PASSWORD, |s| user::validate_password("password", s, None).is_ok(), true),
        ];
        let edges = [
            "a", "Z", "9", "研", "👍", " ", "\u{3000}", "\u{a0}", "\u{feff}", "\u{85}", "\t", "\n", "\r", "\u{0}",
            "\u{7f}", "\u{2028}", "@", ".", "_", ":", "\u{200b}", "\u{202e}", "\u{2067}", "\u{ad}",
        ];
        let mut samples = strings(&edges, 3);
        samples.extend(strings(&["a", "@", ".", " ", "\n", "\u{feff}"], 6));
        for (what, limit, check, exact) in cases {
            let (min, max, pattern) = match *limit {
                Text(min, max, pattern) => (min, max, Some(regex::Regex::new(pattern).unwrap())),
                Length(min, max) => (min, max, None),
                _ => unreachable!(),
            };
            let allowed = |s: &str| {
                let len = s.chars().count();
                len >= min && len <= max && pattern.as_ref().is_none_or(|p| p.is_match(s))
            };
            let mut own = samples.clone();
            for fill in ["a", "研", " "] {
                for n in [max - 1, max, max + 1] {
                    own.push(format!("{}b", fill.repeat(n)));
                    own.push(format!("b{}", fill.repeat(n)));
                }
            }
            for s in &own {
                let (schema, server) = (allowed(s), check(s));
                assert!(schema || !server, "{what}: the server accepts {s:?}, the document forbids it");
                assert!(!exact || !schema || server, "{what}: the document allows {s:?}, the server refuses it");
            }
        }
    }

    #[test]
    fn the_patterns_accept_what_the_validators_accept() {
        // The patterns are ECMA-262; the `regex` crate reads these ones the same way.
        let accepts = |p: &str, s: &str| regex::Regex::new(p).unwrap().is_match(s);
        assert!(accepts(pattern::NAME, "研发部 2"));
        assert!(!accepts(pattern::NAME, "   "));
        assert!(!accepts(pattern::NAME, "a\nb"));
        assert!(accepts(pattern::LINE, ""));
        assert!(accepts(pattern::TEXT, "one\r\ntwo\tthree"));
        assert!(!accepts(pattern::TEXT, "bell\u{7}"));
        assert!(accepts(pattern::BODY_VISIBLE, "  hello\r\n"));
        assert!(!accepts(pattern::BODY_VISIBLE, " \n\t"));
        assert!(accepts(pattern::EMAIL, "li.wei@example.com.cn"));
        assert!(!accepts(pattern::EMAIL, "li.wei@example"));
        assert!(accepts(pattern::USERNAME, "li.wei_2"));
        assert!(!accepts(pattern::USERNAME, ".li"));
    }
}
