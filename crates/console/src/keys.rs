//! `/ui/keys`: API keys created with scopes, expiry and an address allowlist (the
//! key shown once), rotated with a grace period, revoked.

use askama::Template;
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use postwerk_core::model::Scope;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::path_segment;
use crate::page::{Chrome, Empty, Outcome, PageError, Posted, Visit, done, render};

/// A key shown once, right after it was made.
pub struct NewSecret {
    /// The key's name.
    pub name: String,
    /// The secret.
    pub key: String,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    c: Chrome,
    keys: Vec<Map<String, Value>>,
    scopes: Vec<&'static str>,
    secret: Option<NewSecret>,
    error: Option<String>,
}

async fn show(
    visit: Visit,
    secret: Option<NewSecret>,
    error: Option<String>,
) -> Result<Response, PageError> {
    visit.require("GET", "/v1/keys")?;
    let list: Value = visit
        .api
        .get("/v1/keys")
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    let page = KeysPage {
        c: visit.chrome("keys.title", "/ui/keys"),
        keys: crate::view::objects(&list["keys"]),
        scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
        secret,
        error,
    };
    Ok(render(&page))
}

/// `GET /ui/keys`.
pub async fn page(visit: Visit) -> Result<Response, PageError> {
    show(visit, None, None).await
}

/// A key being made. Checkbox `scope` repeats, once per scope ticked.
#[derive(Deserialize)]
pub struct NewKeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_in: String,
    /// Addresses or networks, separated by commas or spaces.
    #[serde(default)]
    allowed_ips: String,
}

/// `POST /ui/keys`: makes a key and shows it once.
pub async fn create(Posted(visit, form): Posted<NewKeyForm>) -> Result<Response, PageError> {
    visit.require("POST", "/v1/keys")?;
    let allowed_ips: Vec<&str> = form
        .allowed_ips
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut body = json!({
        "name": form.name.trim(),
        "scopes": visit.form_values("scope"),
        "allowed_ips": allowed_ips,
    });
    if !form.expires_in.trim().is_empty() {
        body["expires_in"] = Value::from(form.expires_in.trim());
    }
    let outcome = visit.act(Method::POST, "/v1/keys", Some(body)).await?;
    shown_once(visit, outcome).await
}

/// The keys page after a key was made or rotated: its secret, shown once, or why the
/// API refused.
async fn shown_once(visit: Visit, outcome: Outcome<Value>) -> Result<Response, PageError> {
    match outcome {
        Outcome::Done(made) => {
            let text = |field: &str| made[field].as_str().unwrap_or_default().to_string();
            let secret = NewSecret {
                name: text("name"),
                key: text("key"),
            };
            show(visit, Some(secret), None).await
        }
        Outcome::Refused(message) => show(visit, None, Some(message)).await,
    }
}

/// A rotation: how long the old secret keeps working.
#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace: String,
}

/// The grace period a rotation form asks for (`24h` when left empty).
pub fn grace(form: &RotateForm) -> &str {
    match form.grace.trim() {
        "" => "24h",
        grace => grace,
    }
}

/// `POST /ui/keys/{id}/rotate`: a new secret, shown once; the old one works until the
/// grace period ends.
pub async fn rotate(
    Path(id): Path<String>,
    Posted(visit, form): Posted<RotateForm>,
) -> Result<Response, PageError> {
    visit.require("POST", "/v1/keys/{id}/rotate")?;
    let path = format!("/v1/keys/{}/rotate", path_segment(&id));
    let body = json!({"grace": grace(&form)});
    let outcome = visit.act(Method::POST, &path, Some(body)).await?;
    shown_once(visit, outcome).await
}

/// `POST /ui/keys/{id}/revoke`.
pub async fn revoke(
    Path(id): Path<String>,
    Posted(visit, Empty {}): Posted<Empty>,
) -> Result<Response, PageError> {
    visit.require("DELETE", "/v1/keys/{id}")?;
    visit
        .api
        .send::<Value>(
            Method::DELETE,
            &format!("/v1/keys/{}", path_segment(&id)),
            None,
        )
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    Ok(done("/ui/keys", "key_revoked"))
}
