//! The one place where failures become HTTP responses:
//! `{"error": {"code", "message", "field"}}` with the right status.
//!
//! Client mistakes carry their own message; internal failures say only that the
//! service is unavailable. Their cause travels with the response and is logged
//! (without personal data) by one middleware, [`log_cause`]. The `From` impls turn
//! the services' and the store's failures into errors, so handlers use `?`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::strict::DecodeError;

/// An API error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `domain_not_registered`.
    pub code: &'static str,
    /// Human-readable explanation (never contains an address or body).
    pub message: String,
    /// The offending request field (`to[2]`, `from`, …), when there is one.
    pub field: Option<String>,
    /// Seconds to wait before retrying (sent as `Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
    /// What failed inside, for the log (internal failures only; never sent).
    cause: Option<Cause>,
}

/// The cause of an internal failure, carried from the error to the response's
/// extensions for [`log_cause`]. Error texts of the store and the vault: they hold
/// no address or body.
#[derive(Debug, Clone)]
struct Cause(Arc<str>);

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

/// The JSON shape of an error (also used inside batch results).
#[derive(Serialize)]
pub struct Inner<'a> {
    /// Stable code.
    pub code: &'a str,
    /// Explanation.
    pub message: &'a str,
    /// Offending field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            cause: None,
        }
    }

    /// 429: too many failed attempts from this client; retry after `seconds`.
    pub fn too_many_attempts(seconds: u64) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many invalid API keys from this address; retry in {seconds} s"),
        );
        e.retry_after = Some(seconds);
        e
    }

    /// 422 for a field that failed validation.
    pub fn invalid(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).with_field(field)
    }

    /// Names the offending field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 404 for a resource that does not exist for this tenant.
    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 503: the store failed; nothing was acknowledged. `cause` is logged when the
    /// response leaves (see [`log_cause`]).
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "service temporarily unavailable; nothing was stored, retry later",
        );
        e.cause = Some(Cause(cause.to_string().into()));
        e
    }

    /// Logs the cause of an internal failure that is not itself the response (an
    /// entry of a batch's results); [`log_cause`] logs the others.
    pub fn log_cause(&self) {
        if let Some(Cause(cause)) = &self.cause {
            log_internal(cause);
        }
    }

    /// The error as the JSON object nested under `"error"`.
    pub fn inner(&self) -> Inner<'_> {
        Inner {
            code: self.code,
            message: &self.message,
            field: self.field.as_deref(),
        }
    }
}

/// A tenant state that forbids the request (403 `tenant_cancelled`, 409 for a
/// reactivation that cannot be), or an internal failure (503).
impl From<postwerk_services::tenants::TenantError> for ApiError {
    fn from(e: postwerk_services::tenants::TenantError) -> Self {
        use postwerk_services::tenants::TenantError;
        let (code, message) = match e {
            TenantError::Cancelled { deletion_due } => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "tenant_cancelled",
                    format!(
                        "this tenant is cancelled; its data will be deleted at {} unless it is reactivated",
                        crate::view::time(deletion_due).unwrap_or_default()
                    ),
                );
            }
            TenantError::NotCancelled => ("tenant_not_cancelled", e.to_string()),
            TenantError::ParentCancelled => ("parent_cancelled", e.to_string()),
            TenantError::GraceOver => ("grace_period_over", e.to_string()),
            TenantError::Service(e) => return ApiError::unavailable(&e),
        };
        ApiError::new(StatusCode::CONFLICT, code, message)
    }
}

/// Internal failures of the services (store, vault, unknown tenant): 503.
impl From<postwerk_services::context::ServiceError> for ApiError {
    fn from(e: postwerk_services::context::ServiceError) -> Self {
        ApiError::unavailable(&e)
    }
}

/// A store failure: 503.
impl From<postwerk_store::StoreError> for ApiError {
    fn from(e: postwerk_store::StoreError) -> Self {
        ApiError::unavailable(&e)
    }
}

/// A key that could not be loaded or a sealed value that did not open: 503.
impl From<postwerk_store::vault::VaultError> for ApiError {
    fn from(e: postwerk_store::vault::VaultError) -> Self {
        ApiError::unavailable(&e)
    }
}

/// The middleware that logs the cause of every internal failure answered (the
/// error response carries it in its extensions, see [`ApiError::unavailable`]).
pub async fn log_cause(mut response: Response) -> Response {
    if let Some(Cause(cause)) = response.extensions_mut().remove::<Cause>() {
        log_internal(&cause);
    }
    response
}

fn log_internal(cause: &str) {
    tracing::error!(error = %cause, "request failed on an internal error");
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(Body {
                error: self.inner(),
            }),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(cause);
        }
        response
    }
}

/// A query-string extractor whose rejection is a 422 `invalid_query` [`ApiError`].
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(ApiQuery(q)),
            Err(e) => Err(ApiError::invalid("invalid_query", "query", e.body_text())),
        }
    }
}

/// A JSON body extractor whose rejections are [`ApiError`]s: malformed JSON, a wrong
/// content type, unknown keys, wrong types and arrays where objects belong all get
/// the JSON error shape. The body (at most the route's limit, see
/// [`crate::BodyLimits`]) is decoded straight into `T` (see [`crate::strict`]).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ));
        }
        let limit = req.extensions().get::<crate::BodyLimit>().map(|l| l.0);
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let (Some(limit), Some(declared)) = (limit, declared)
            && declared > limit as u64
        {
            return Err(too_large());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        match crate::strict::from_slice(&bytes) {
            Ok(value) => Ok(ApiJson(value)),
            Err(DecodeError::Data(text)) => Err(data_error(&text)),
            Err(DecodeError::Syntax(text)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("malformed JSON: {text}"),
            )),
        }
    }
}

/// An optional JSON body: a request without `Content-Type` has none (`None`);
/// otherwise the body is decoded as by [`ApiJson`].
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if !req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return Ok(None);
        }
        <ApiJson<T> as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

/// `application/json` or `application/<something>+json`, parameters allowed.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "request body too large for this endpoint",
    )
}

/// Why the body could not be read: over the route's limit (413), or the client
/// stopped sending it (408, see [`crate::listener`]).
fn body_rejection(r: BytesRejection) -> ApiError {
    if crate::listener::is_body_timeout(&r) {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body did not arrive in time",
        );
    }
    match r {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => too_large(),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body could not be read",
        ),
    }
}

/// Maps a serde data error (`unknown field`, `missing field`, wrong type) to a 400
/// naming the field. Serde messages quote field names, never values, for these cases.
pub(crate) fn data_error(text: &str) -> ApiError {
    // axum prefixes the serde message with the JSON path ("to[0]: invalid type …").
    let (path, detail) = match text.split_once(": ") {
        Some((p, d)) if !p.contains(' ') => (Some(p), d),
        _ => (None, text),
    };
    let detail = detail.split(" at line").next().unwrap_or(detail);
    let quoted = detail.split('`').nth(1);
    let (code, field, message) = if detail.starts_with("unknown field") {
        (
            "unknown_field",
            quoted.map(str::to_string),
            format!("unknown field: {}", quoted.unwrap_or("?")),
        )
    } else if detail.starts_with("missing field") {
        (
            "missing_field",
            quoted.map(str::to_string),
            format!("missing required field: {}", quoted.unwrap_or("?")),
        )
    } else {
        (
            "invalid_field",
            path.filter(|p| *p != ".").map(str::to_string),
            format!("invalid value: {detail}"),
        )
    };
    let mut err = ApiError::new(StatusCode::BAD_REQUEST, code, message);
    err.field = field;
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_internal_cause_reaches_the_log_middleware_and_never_the_client() {
        let e = ApiError::unavailable(&"database is locked");
        let response = e.clone().into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let cause = response.extensions().get::<Cause>().map(|c| c.0.clone());
        assert_eq!(cause.as_deref(), Some("database is locked"));
        let response = log_cause(response).await;
        assert!(response.extensions().get::<Cause>().is_none());
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("locked"));
        let client_error = ApiError::not_found("message").into_response();
        assert!(client_error.extensions().get::<Cause>().is_none());
    }

    #[test]
    fn serde_errors_name_the_field() {
        let e = data_error("unknown field `tos`, expected one of `from`, `to` at line 1 column 7");
        assert_eq!((e.code, e.field.as_deref()), ("unknown_field", Some("tos")));
        let e = data_error("missing field `from` at line 1 column 2");
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("from"))
        );
        let e = data_error("tos: unknown field `tos`, expected one of `from`, `to`");
        assert_eq!((e.code, e.field.as_deref()), ("unknown_field", Some("tos")));
        let e =
            data_error("to[0]: invalid type: integer `3`, expected a string at line 1 column 9");
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("to[0]"))
        );
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
