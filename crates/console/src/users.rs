//! `/ui/users` (admins): the tenant's users with their roles; create, disable,
//! end sessions, remove a lost second factor, delete.

use askama::Template;
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::path_segment;
use crate::page::{Chrome, Empty, Outcome, PageError, Posted, Visit, done, render};

/// The roles a new user can be given (`custom` takes ticked scopes).
const ROLES: [&str; 6] = postwerk_accounts::users::ROLES;

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    c: Chrome,
    users: Vec<Map<String, Value>>,
    roles: &'static [&'static str],
    scopes: Vec<&'static str>,
    me: String,
    error: Option<String>,
}

async fn show(visit: Visit, error: Option<String>) -> Result<Response, PageError> {
    visit.require("GET", "/v1/users")?;
    let list: Value = visit
        .api
        .get("/v1/users")
        .await
        .map_err(|f| PageError::api(visit.lang, f))?;
    let page = UsersPage {
        c: visit.chrome("users.title", "/ui/users"),
        users: crate::view::objects(&list["users"]),
        roles: &ROLES,
        scopes: postwerk_core::model::Scope::ALL
            .iter()
            .map(|s| s.as_str())
            .collect(),
        me: visit.me.user.id.clone(),
        error,
    };
    Ok(render(&page))
}

/// `GET /ui/users`.
pub async fn page(visit: Visit) -> Result<Response, PageError> {
    show(visit, None).await
}

/// A user being created.
#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

/// `POST /ui/users`.
pub async fn create(Posted(visit, form): Posted<NewUserForm>) -> Result<Response, PageError> {
    visit.require("POST", "/v1/users")?;
    let mut body =
        json!({"email": form.email.trim(), "password": form.password, "role": form.role});
    if form.role == "custom" {
        body["scopes"] = json!(visit.form_values("scope"));
    }
    match visit
        .act::<Value>(Method::POST, "/v1/users", Some(body))
        .await?
    {
        Outcome::Done(_) => Ok(done("/ui/users", "user_created")),
        Outcome::Refused(message) => show(visit, Some(message)).await,
    }
}

/// `POST /ui/users/{id}/{action}`: `disable`, `logout` (end every session),
/// `remove-totp` (a lost second factor) or `delete`.
pub async fn act(
    Path((id, action)): Path<(String, String)>,
    Posted(visit, Empty {}): Posted<Empty>,
) -> Result<Response, PageError> {
    let user = path_segment(&id);
    let (method, path, route, notice) = match action.as_str() {
        "disable" => (
            Method::POST,
            format!("/v1/users/{user}/disable"),
            "/v1/users/{id}/disable",
            "user_disabled",
        ),
        "logout" => (
            Method::POST,
            format!("/v1/users/{user}/logout"),
            "/v1/users/{id}/logout",
            "user_logged_out",
        ),
        "remove-totp" => (
            Method::DELETE,
            format!("/v1/users/{user}/totp"),
            "/v1/users/{id}/totp",
            "user_totp_removed",
        ),
        "delete" => (
            Method::DELETE,
            format!("/v1/users/{user}"),
            "/v1/users/{id}",
            "user_deleted",
        ),
        _ => return Err(PageError::not_found(visit.lang)),
    };
    visit.require(method.as_str(), route)?;
    match visit.act::<Value>(method, &path, None).await? {
        Outcome::Done(_) => Ok(done("/ui/users", notice)),
        Outcome::Refused(message) => show(visit, Some(message)).await,
    }
}
