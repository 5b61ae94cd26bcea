//! The one table from error codes to HTTP statuses, and the error body every failure uses.
//!
//! Handlers return `Result<_, ApiError>`. An error's response carries the error in its
//! extensions and no body yet; the `error_body` middleware (which knows the request id)
//! logs internal causes and writes the JSON body. Rejections from extractors, unknown routes
//! and wrong methods take the same path, so every failure looks the same to clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qiao_domain::{Error, ErrorCode};
use serde::Serialize;
use utoipa::ToSchema;

/// The HTTP status for each error code. The single source of truth.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        InvalidJson | InvalidParameter => StatusCode::BAD_REQUEST,
        InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
        PayloadTooLarge | QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Unauthenticated | InvalidCredentials => StatusCode::UNAUTHORIZED,
        CsrfMismatch | Forbidden | AccountDisabled | PasswordChangeRequired | InvalidSetupToken | WrongPassword => {
            StatusCode::FORBIDDEN
        }
        NotFound => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
        UsernameTaken | EmailTaken | DepartmentNameTaken | DepartmentNotEmpty | DepartmentCycle | RootDepartment
        | LastOwner | LastChannelAdmin | SetupAlreadyDone | Conflict => StatusCode::CONFLICT,
        RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Every error response has this body.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code; switch on this.
    pub code: ErrorCode,
    /// Human-readable explanation in English (clients translate by `code`).
    pub message: String,
    /// The request field at fault, as a JSON path, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `rate_limited`: seconds to wait (also in the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The request id (also in the `x-request-id` header); quote it when reporting a problem.
    pub request_id: String,
}

/// An error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl From<ErrorCode> for ApiError {
    fn from(c: ErrorCode) -> Self {
        ApiError(Error::new(c))
    }
}

/// What the body middleware needs; stored in the response extensions.
#[derive(Clone, Debug)]
pub(crate) struct PendingError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
    /// The internal cause, for the log only.
    pub cause: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(e.code);
        let mut res = status.into_response();
        if let Some(secs) = e.retry_after_secs {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if e.code == ErrorCode::Unauthenticated {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res.extensions_mut().insert(PendingError {
            code: e.code,
            message: e.message.into_owned(),
            field: e.field.map(|f| f.into_owned()),
            retry_after: e.retry_after_secs,
            cause: e.source.map(|s| s.to_string()),
        });
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_4xx_or_5xx_status_and_only_two_are_5xx() {
        for code in ErrorCode::ALL {
            let s = status_of(*code);
            assert!(s.is_client_error() || s.is_server_error(), "{code}");
            if s.is_server_error() {
                assert!(matches!(code, ErrorCode::Internal | ErrorCode::Unavailable), "{code} must not be a 5xx");
            }
        }
    }
}
