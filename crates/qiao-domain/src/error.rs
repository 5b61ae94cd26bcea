//! One error type for every layer, carrying a stable [`ErrorCode`]. The API maps each code to
//! an HTTP status in exactly one place; the internal cause (`source`) is for logs only and is
//! never sent to clients.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! error_codes {
    ($($(#[$meta:meta])* $variant:ident = $code:literal, $message:literal;)*) => {
        /// Stable, machine-readable error codes. Clients switch on these; never rename one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum ErrorCode {
            $($(#[$meta])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, for documentation and exhaustive tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The snake_case code sent to clients.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// A human message used when the error carries no more specific one.
            pub fn default_message(self) -> &'static str {
                match self { $(ErrorCode::$variant => $message,)* }
            }
        }
    };
}

error_codes! {
    /// The request body is not valid JSON.
    InvalidJson = "invalid_json", "The request body is not valid JSON.";
    /// A field is missing, of the wrong type, or fails validation (see `field`).
    InvalidInput = "invalid_input", "A field is missing or invalid.";
    /// A path or query parameter could not be parsed.
    InvalidParameter = "invalid_parameter", "A path or query parameter is invalid.";
    /// The body is larger than this endpoint accepts.
    PayloadTooLarge = "payload_too_large", "The request body is too large.";
    /// Storing this file would exceed the uploader's storage quota.
    QuotaExceeded = "quota_exceeded", "Your file storage is full; delete files you no longer need.";
    /// The requested byte range is outside the file.
    RangeNotSatisfiable = "range_not_satisfiable", "The requested byte range is outside the file.";
    /// The body must be sent as `application/json`.
    UnsupportedMediaType = "unsupported_media_type", "Send the body as application/json.";
    /// No session, or the session is invalid, expired or revoked.
    Unauthenticated = "unauthenticated", "Sign in to continue.";
    /// A cookie-authenticated request that changes state lacked the CSRF header.
    CsrfMismatch = "csrf_mismatch", "Missing or wrong X-CSRF-Token header; reload the page.";
    /// Wrong username/e-mail or password.
    InvalidCredentials = "invalid_credentials", "Wrong username, e-mail or password.";
    /// The account has been disabled by an administrator.
    AccountDisabled = "account_disabled", "This account is disabled; ask an administrator.";
    /// The user must change their password before doing anything else.
    PasswordChangeRequired = "password_change_required", "Change your password to continue.";
    /// Too many attempts; retry after `retry_after` seconds.
    RateLimited = "rate_limited", "Too many attempts; wait and try again.";
    /// The caller is signed in but may not do this.
    Forbidden = "forbidden", "You do not have permission to do this.";
    /// The thing does not exist, or the caller may not know that it exists.
    NotFound = "not_found", "Not found.";
    /// The method is not allowed on this path.
    MethodNotAllowed = "method_not_allowed", "This method is not allowed here.";
    /// The path speaks another protocol (the realtime stream: WebSocket); see the `Upgrade` header.
    UpgradeRequired = "upgrade_required", "Connect with a WebSocket client.";
    /// A username is already taken.
    UsernameTaken = "username_taken", "That username is already taken.";
    /// An e-mail address is already in use.
    EmailTaken = "email_taken", "That e-mail address is already in use.";
    /// A sibling department already has this name.
    DepartmentNameTaken = "department_name_taken", "A department with this name already exists here.";
    /// The department still has sub-departments or members.
    DepartmentNotEmpty = "department_not_empty", "Move its sub-departments and members out, and give its department admins other departments to manage, first.";
    /// The move would put a department inside its own subtree.
    DepartmentCycle = "department_cycle", "A department cannot be moved inside itself.";
    /// The root department cannot be moved or deleted.
    RootDepartment = "root_department", "The top-level department cannot be moved or deleted.";
    /// The organisation must keep at least one active owner.
    LastOwner = "last_owner", "The organisation must keep at least one active owner.";
    /// A channel with other people in it must keep an admin.
    LastChannelAdmin = "last_channel_admin", "Make someone else an admin of this channel first: it must keep one while others are in it.";
    /// The setup token is wrong, used or expired.
    InvalidSetupToken = "invalid_setup_token", "This setup link is invalid or was already used.";
    /// The organisation already has an owner.
    SetupAlreadyDone = "setup_already_done", "Setup is already complete; sign in instead.";
    /// The current password given for a password change is wrong.
    WrongPassword = "wrong_password", "The current password is wrong.";
    /// The request conflicts with the current state.
    Conflict = "conflict", "The request conflicts with the current state; reload and retry.";
    /// The server is shutting down or a dependency is unavailable.
    Unavailable = "unavailable", "The service is temporarily unavailable; retry shortly.";
    /// An unexpected server error (details are in the server log under the request id).
    Internal = "internal", "Something went wrong on the server; the request id is in the server log.";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a stable code, a human message, and (for logs only) an internal cause.
pub struct Error {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// The request field the error is about, as a JSON path (`"email"`, `"members[3]"`).
    pub field: Option<Cow<'static, str>>,
    /// For [`ErrorCode::RateLimited`]: seconds until a retry can succeed.
    pub retry_after_secs: Option<u64>,
    /// Internal cause; logged with the request id, never returned.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(code: ErrorCode) -> Self {
        Error {
            code,
            message: Cow::Borrowed(code.default_message()),
            field: None,
            retry_after_secs: None,
            source: None,
        }
    }

    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    pub fn with_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Attaches an internal cause (for the log only).
    pub fn with_source(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.source = Some(cause.into());
        self
    }

    /// An invalid request field.
    pub fn invalid(field: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorCode::InvalidInput).with_field(field).with_message(message)
    }

    pub fn not_found() -> Self {
        Error::new(ErrorCode::NotFound)
    }

    pub fn forbidden() -> Self {
        Error::new(ErrorCode::Forbidden)
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Error::new(ErrorCode::RateLimited);
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    /// An unexpected failure; `cause` goes to the log, the client sees only the code.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = Error::new(ErrorCode::Internal);
        e.source = Some(cause.into());
        e
    }

    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = Error::new(ErrorCode::Unavailable);
        e.source = Some(cause.into());
        e
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Self {
        Error::new(code)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("code", &self.code).field("message", &self.message);
        if let Some(field) = &self.field {
            d.field("field", field);
        }
        if let Some(source) = &self.source {
            d.field("source", &format_args!("{source}"));
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            // The serde name must be the same string clients see in bodies.
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::Value::String(s.into()));
        }
    }

    #[test]
    fn internal_cause_is_kept_out_of_the_message() {
        let e = Error::internal(std::io::Error::other("disk on fire"));
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(!e.message.contains("disk"));
        assert!(format!("{e}").contains("disk on fire"));
    }
}
