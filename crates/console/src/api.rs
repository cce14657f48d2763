//! The console's client of the REST API: every page reads and changes data through
//! the same operations a script calls, in-process (no socket), with the browser's
//! session cookie and client address, so scopes, tenant rules, rate limits and the
//! audit log apply exactly as they do to `curl`.

use axum::Router;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt as _;

/// The request headers the API reads besides the body: the session cookie, the
/// client's address behind a trusted proxy, and the language.
const FORWARDED_HEADERS: [header::HeaderName; 4] = [
    header::COOKIE,
    header::HeaderName::from_static("x-forwarded-for"),
    header::FORWARDED,
    header::USER_AGENT,
];

/// An API answer that was not a success: its status and the JSON error's code and
/// message (already free of personal data).
#[derive(Debug, Clone)]
pub struct Failure {
    /// HTTP status.
    pub status: StatusCode,
    /// The stable error code (`insufficient_scope`, `not_found`, …).
    pub code: String,
    /// The API's explanation.
    pub message: String,
}

impl Failure {
    fn internal(message: impl Into<String>) -> Self {
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "console_error".into(),
            message: message.into(),
        }
    }
}

/// The API, called on behalf of one browser request.
#[derive(Clone)]
pub struct Api {
    router: Router,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
}

/// A successful answer's headers and body.
pub struct Answer {
    /// Response headers (`Set-Cookie` after sign-in, `Content-Disposition`, …).
    pub headers: HeaderMap,
    /// The body (JSON for every operation the console calls).
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Failure::internal(format!("unexpected API answer: {e}")))
    }
}

impl Api {
    /// A client for the request described by `parts`; `csrf` is the session's token,
    /// sent with state-changing calls once the console has checked the form's copy.
    pub fn new(router: &Router, parts: &Parts, csrf: Option<&str>) -> Self {
        let mut headers = HeaderMap::new();
        for name in FORWARDED_HEADERS {
            for value in parts.headers.get_all(&name) {
                headers.append(name.clone(), value.clone());
            }
        }
        if let Some(token) = csrf.and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert("x-csrf-token", token);
        }
        let mut extensions = axum::http::Extensions::new();
        if let Some(connect) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        {
            extensions.insert(*connect);
        }
        Api {
            router: router.clone(),
            headers,
            extensions,
        }
    }

    /// `GET path` (with its query) as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.call(Method::GET, path, None).await?.json()
    }

    /// `method path` with a JSON body; the answer's body as `T` (`Value::Null` for
    /// an empty one).
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, Failure> {
        let answer = self.call(method, path, body).await?;
        if answer.body.is_empty() {
            return serde_json::from_value(Value::Null)
                .map_err(|e| Failure::internal(format!("unexpected empty answer: {e}")));
        }
        answer.json()
    }

    /// `method path` with an optional JSON body: the answer, or the API's error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, Failure> {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(h) = request.headers_mut() {
            h.extend(self.headers.clone());
            if body.is_some() {
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
        }
        if let Some(e) = request.extensions_mut() {
            e.extend(self.extensions.clone());
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let request = request
            .body(body)
            .map_err(|e| Failure::internal(format!("bad API request: {e}")))?;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| Failure::internal(format!("API call failed: {e}")))?;
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|e| Failure::internal(format!("API answer unreadable: {e}")))?;
        if parts.status.is_success() {
            return Ok(Answer {
                headers: parts.headers,
                body: bytes.to_vec(),
            });
        }
        let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let text = |key: &str| error["error"][key].as_str().unwrap_or_default().to_string();
        Err(Failure {
            status: parts.status,
            code: text("code"),
            message: text("message"),
        })
    }
}

/// `segment` escaped for a URL path (an address or name the API takes in its path;
/// these URLs never leave the process).
pub fn path_segment(segment: &str) -> String {
    escape(segment, b"-._~@+")
}

/// `text` percent-encoded, but for ASCII letters, digits and `keep`.
fn escape(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pairs` as a query string (`?a=1&b=2`; empty values left out).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        out.push_str(&escape(value, b"-._~@:"));
    }
    out
}
