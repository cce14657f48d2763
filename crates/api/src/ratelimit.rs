//! Rate limits on the API (`[rate_limits]`): per client address before the key is
//! looked at, then per API key and per tenant once the key is known. Answers carry
//! `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy`
//! for the tightest limit that applied; a refusal is `429 rate_limited` with
//! `Retry-After`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use postwerk_services::ratelimit::Decision;

use crate::AppState;
use crate::error::ApiError;

/// The tightest limit decision taken while a request is handled (a request
/// extension, filled by the middleware and by [`crate::auth::Caller`]).
#[derive(Clone, Default)]
pub struct Quota(Arc<Mutex<Option<Decision>>>);

impl Quota {
    /// Records a decision; the tighter one is kept.
    pub fn record(&self, decision: Decision) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(slot.map_or(decision, |d| d.tighter(decision)));
    }

    fn get(&self) -> Option<Decision> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Middleware for `/v1/…`: the per-address limit, and the `RateLimit-*` headers.
pub async fn limit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let quota = Quota::default();
    if let Some(ip) = crate::auth::client_ip(request.extensions(), request.headers(), &state) {
        let decision = state.services.limits.ip(ip);
        quota.record(decision);
        if !decision.allowed {
            let mut response = refused(decision).into_response();
            set_headers(response.headers_mut(), decision, &state);
            return response;
        }
    }
    request.extensions_mut().insert(quota.clone());
    let mut response = next.run(request).await;
    if let Some(decision) = quota.get() {
        set_headers(response.headers_mut(), decision, &state);
    }
    response
}

/// `429 rate_limited` for a refused request.
pub fn refused(decision: Decision) -> ApiError {
    let seconds = whole_seconds(decision.retry_after).max(1);
    let mut error = ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "rate limit of {} requests per window exceeded; retry in {seconds} s",
            decision.limit
        ),
    );
    error.retry_after = Some(seconds);
    error
}

fn set_headers(headers: &mut HeaderMap, decision: Decision, state: &AppState) {
    if decision.limit == 0 {
        return;
    }
    let window = whole_seconds(state.services.config.rate_limits.window);
    for (name, value) in [
        ("ratelimit-limit", decision.limit.to_string()),
        ("ratelimit-remaining", decision.remaining.to_string()),
        ("ratelimit-reset", whole_seconds(decision.reset).to_string()),
        ("ratelimit-policy", format!("{};w={window}", decision.limit)),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

/// Seconds, rounded up.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
