//! `/v1/templates…`: campaign templates with versions, and a preview that renders one
//! with sample data. A template's parts are compiled before they are saved: one that
//! does not compile is refused with `422 template_error`, naming the part, line and
//! column in the message.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postwerk_privacy::campaigns::render::{Parts, TemplateError};
use postwerk_privacy::campaigns::templates::{self, Template, TemplateFailure};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::compose::SendRequest;
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::view;

impl From<TemplateError> for ApiError {
    fn from(e: TemplateError) -> Self {
        ApiError::invalid("template_error", e.part.as_str(), e.to_string())
    }
}

impl From<TemplateFailure> for ApiError {
    fn from(e: TemplateFailure) -> Self {
        match e {
            TemplateFailure::InvalidName => {
                ApiError::invalid("invalid_name", "name", e.to_string())
            }
            TemplateFailure::TooLarge => {
                ApiError::invalid("template_too_large", "html", e.to_string())
            }
            TemplateFailure::Taken => {
                ApiError::new(StatusCode::CONFLICT, "template_exists", e.to_string())
            }
            TemplateFailure::Changed => {
                ApiError::new(StatusCode::CONFLICT, "template_changed", e.to_string())
            }
            TemplateFailure::NotFound => ApiError::not_found("template"),
            TemplateFailure::Template(e) => e.into(),
            TemplateFailure::Service(e) => e.into(),
        }
    }
}

/// A template as JSON: its parts at `version`, and its current version.
fn template_json(t: &Template) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "version": t.version,
        "current_version": t.current,
        "subject": t.parts.subject,
        "html": t.parts.html,
        "text": t.parts.text,
        "created_at": view::time(t.created_at),
        "updated_at": view::time(t.updated_at),
    })
}

/// `POST /v1/templates` body; `PATCH` takes any of the fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// `POST /v1/templates` (scope `write`): a new template at version 1.
pub async fn create_template(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TemplateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = req
        .name
        .ok_or_else(|| ApiError::invalid("missing_field", "name", "name is required"))?;
    let subject = req
        .subject
        .ok_or_else(|| ApiError::invalid("missing_field", "subject", "subject is required"))?;
    if req.html.is_none() && req.text.is_none() {
        return Err(ApiError::invalid(
            "missing_field",
            "html",
            "a template needs html or text",
        ));
    }
    let parts = Parts {
        subject,
        html: req.html,
        text: req.text,
    };
    let t = templates::create(&state.services, &caller.tenant_id, &name, parts).await?;
    Ok((StatusCode::CREATED, Json(template_json(&t))))
}

/// `GET /v1/templates` (scope `read`): every template at its current version, by name.
pub async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let all = templates::list(&state.services, &caller.tenant_id).await?;
    Ok(Json(json!({
        "templates": all.iter().map(template_json).collect::<Vec<_>>()
    })))
}

/// `?version=N` on a template.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    #[serde(default)]
    version: Option<u32>,
}

/// A version asked for: from 1.
fn version(v: Option<u32>) -> Result<Option<i64>, ApiError> {
    match v {
        Some(0) => Err(ApiError::invalid(
            "invalid_field",
            "version",
            "versions count from 1",
        )),
        v => Ok(v.map(i64::from)),
    }
}

/// `GET /v1/templates/{id}` (scope `read`): at its current version or `?version=N`.
pub async fn show_template(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<Json<Value>, ApiError> {
    let version = version(q.version)?;
    let t = templates::get(&state.services, &caller.tenant_id, &id, version).await?;
    Ok(Json(template_json(&t)))
}

/// `PATCH /v1/templates/{id}` (scope `write`): renames it, or changes parts (a new
/// version when they differ).
pub async fn update_template(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TemplateBody>,
) -> Result<Json<Value>, ApiError> {
    let change = templates::Change {
        subject: req.subject,
        html: req.html,
        text: req.text,
    };
    let name = req.name.as_deref();
    let t = templates::update(&state.services, &caller.tenant_id, &id, name, change).await?;
    Ok(Json(template_json(&t)))
}

/// `DELETE /v1/templates/{id}` (scope `write`).
pub async fn delete_template(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    templates::delete(&state.services, &caller.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/templates/{id}/render` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderBody {
    #[serde(default)]
    variables: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "postwerk_core::json::whole")]
    version: Option<u32>,
}

/// `POST /v1/templates/{id}/render` (scope `read`): the template rendered with sample
/// `variables` (sample values stand in for `unsubscribe_url` and `preferences_url`
/// unless given).
pub async fn render_template(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RenderBody>,
) -> Result<Json<Value>, ApiError> {
    let version = version(req.version)?;
    let t = templates::get(&state.services, &caller.tenant_id, &id, version).await?;
    let base = state.services.config.links_base_url();
    let mut variables = Map::new();
    variables.insert("unsubscribe_url".into(), json!(format!("{base}/u/preview")));
    variables.insert("preferences_url".into(), json!(format!("{base}/p/preview")));
    variables.extend(req.variables.unwrap_or_default());
    let rendered = t.compiled()?.render(&Value::Object(variables))?;
    Ok(Json(json!({
        "version": t.version,
        "subject": rendered.subject,
        "html": rendered.html,
        "text": rendered.text,
    })))
}

/// Fills a message's subject and bodies from its `template`, if it names one, rendered
/// with its `variables`. A message to one recipient gets that recipient's
/// `unsubscribe_url` and `preferences_url` (the link of the preference centre, whose
/// one-click `POST` unsubscribes); with more recipients the message is rendered once
/// and those render empty (send one message each, or a broadcast).
pub async fn apply(
    state: &AppState,
    caller: &Caller,
    mut req: SendRequest,
) -> Result<SendRequest, ApiError> {
    let Some(key) = req.template.take() else {
        if req.version.is_some() || req.variables.is_some() {
            return Err(ApiError::invalid(
                "invalid_field",
                "template",
                "version and variables go with a template",
            ));
        }
        return Ok(req);
    };
    if req.subject.is_some() || req.html.is_some() || req.text.is_some() {
        return Err(ApiError::invalid(
            "invalid_field",
            "template",
            "a message from a template takes no subject, html or text",
        ));
    }
    let services = &state.services;
    let t = templates::get(services, &caller.tenant_id, &key, version(req.version)?).await?;
    let mut variables = req.variables.take().unwrap_or_default();
    let recipients = [&req.to, &req.cc, &req.bcc].map(|m| m.items().len());
    if recipients.iter().sum::<usize>() == 1 {
        let id = postwerk_core::id::new_id("rcpt");
        let keys = services.tenant_keys(&caller.tenant_id).await?;
        let url = postwerk_mta::unsubscribe::url(&services.config, &keys, &id);
        variables.insert("unsubscribe_url".into(), json!(url));
        variables.insert("preferences_url".into(), json!(url));
        req.recipient_ids = vec![id];
    }
    let rendered = t.compiled()?.render(&Value::Object(variables))?;
    req.subject = Some(rendered.subject);
    req.html = rendered.html;
    req.text = Some(rendered.text);
    Ok(req)
}
