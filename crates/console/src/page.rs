//! What every console page shares: the visitor (session, language, API client), the
//! chrome around the content (navigation by scope, the CSRF token for forms), form
//! posts that must carry that token, and error pages.

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use postwerk_api::session::SessionUser;
use postwerk_core::model::Scope;
use serde::de::DeserializeOwned;

use crate::Console;
use crate::api::{Api, Failure};
use crate::i18n::{Catalogue, Lang};

/// The cookie that holds the session's CSRF token for the console's forms
/// (`HttpOnly`, `SameSite=Strict`: only the console's own pages read it, server-side,
/// and a form's copy must match the session).
pub const CSRF_COOKIE: &str = "pw_csrf";

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    postwerk_api::session::cookie(headers, name)
}

/// A navigation entry: the page, its catalogue key, and the API operation whose scope
/// a user needs to see it.
struct NavEntry {
    path: &'static str,
    key: &'static str,
    needs: &'static [(&'static str, &'static str)],
}

/// The console's pages in menu order. A page shows for a user allowed any one of its
/// operations (the scope each needs is the API's, read from the OpenAPI document).
const NAV: [NavEntry; 10] = [
    NavEntry {
        path: "/ui/",
        key: "nav.overview",
        needs: &[("GET", "/v1/stats")],
    },
    NavEntry {
        path: "/ui/messages",
        key: "nav.messages",
        needs: &[("GET", "/v1/messages")],
    },
    NavEntry {
        path: "/ui/suppressions",
        key: "nav.suppressions",
        needs: &[("GET", "/v1/suppressions")],
    },
    NavEntry {
        path: "/ui/broadcasts",
        key: "nav.broadcasts",
        needs: &[("GET", "/v1/broadcasts")],
    },
    NavEntry {
        path: "/ui/domains",
        key: "nav.domains",
        needs: &[("GET", "/v1/domains")],
    },
    NavEntry {
        path: "/ui/streams",
        key: "nav.streams",
        needs: &[("GET", "/v1/streams")],
    },
    NavEntry {
        path: "/ui/webhooks",
        key: "nav.webhooks",
        needs: &[("GET", "/v1/webhooks")],
    },
    NavEntry {
        path: "/ui/keys",
        key: "nav.keys",
        needs: &[("GET", "/v1/keys")],
    },
    NavEntry {
        path: "/ui/users",
        key: "nav.users",
        needs: &[("GET", "/v1/users")],
    },
    NavEntry {
        path: "/ui/privacy",
        key: "nav.privacy",
        needs: &[
            ("GET", "/v1/subjects/{email}/export"),
            ("DELETE", "/v1/subjects/{email}"),
        ],
    },
];

/// Whether `scopes` allow the API operation `method path`.
pub fn allows(scopes: &[Scope], method: &str, path: &str) -> bool {
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    postwerk_api::scopes::required(&method, path).is_some_and(|s| scopes.contains(&s))
}

/// One menu link as the layout shows it.
pub struct NavLink {
    /// Where it goes.
    pub path: &'static str,
    /// Its text.
    pub label: &'static str,
    /// The current page.
    pub current: bool,
}

/// The frame of every signed-in page.
pub struct Chrome {
    /// The page's language.
    pub lang: Lang,
    /// Its words.
    pub words: &'static Catalogue,
    /// The menu, as far as the user may go.
    pub nav: Vec<NavLink>,
    /// The CSRF token every form carries.
    pub csrf: String,
    /// The signed-in user's role.
    pub role: String,
    /// The page's title (a catalogue key).
    pub title: &'static str,
    /// A notice to show above the content (after an action), already in words.
    pub notice: Option<String>,
}

impl Chrome {
    /// The text for `key`.
    pub fn t<'a>(&self, key: &'a str) -> &'a str {
        self.words.get(key)
    }

    /// The text for `key` with its `{}` filled.
    pub fn with(&self, key: &str, arg: &dyn std::fmt::Display) -> String {
        self.words.with(key, arg)
    }
}

/// A signed-in visitor of a console page.
pub struct Visit {
    /// The session and its user.
    pub me: SessionUser,
    /// The page's language.
    pub lang: Lang,
    /// The API, on the visitor's behalf.
    pub api: Api,
    /// The session's CSRF token.
    pub csrf: String,
    /// `?done=` of a redirect after an action (a catalogue key, never personal data).
    done: Option<String>,
    /// The posted form's fields, in order (empty for a page that was not posted).
    form: Vec<(String, String)>,
}

impl Visit {
    /// Whether the user may call `method path` (an API route template).
    pub fn may(&self, method: &str, path: &str) -> bool {
        allows(&self.me.user.scopes, method, path)
    }

    /// 403 unless the user may call `method path`: what a user may not do is not
    /// accepted, whatever the browser sent.
    pub fn require(&self, method: &str, path: &str) -> Result<(), PageError> {
        if self.may(method, path) {
            Ok(())
        } else {
            Err(PageError::forbidden(self.lang))
        }
    }

    /// Every value of the posted field `name` (a field that repeats, such as ticked
    /// checkboxes).
    pub fn form_values(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The frame for a page titled `title` (a catalogue key) at `path`.
    pub fn chrome(&self, title: &'static str, path: &str) -> Chrome {
        let words = self.lang.words();
        let nav = NAV
            .iter()
            .filter(|e| e.needs.iter().any(|(m, p)| self.may(m, p)))
            .map(|e| NavLink {
                path: e.path,
                label: words.get(e.key),
                current: e.path == path,
            })
            .chain(std::iter::once(NavLink {
                path: "/ui/account",
                label: words.get("nav.account"),
                current: path == "/ui/account",
            }))
            .collect();
        let notice = self
            .done
            .as_deref()
            .map(|key| format!("done.{key}"))
            .filter(|key| words.keys().any(|k| k == key))
            .map(|key| words.get(&key).to_string());
        Chrome {
            lang: self.lang,
            words,
            nav,
            csrf: self.csrf.clone(),
            role: self.me.user.role.clone(),
            title,
            notice,
        }
    }

    async fn from_request(parts: &Parts, console: &Console) -> Result<Self, PageError> {
        let lang = Lang::of(&parts.headers);
        let me = match SessionUser::from_cookie(parts, &console.app).await {
            Ok(Some(me)) => me,
            Ok(None) => return Err(PageError::SignIn),
            Err(e) if e.status == StatusCode::UNAUTHORIZED => return Err(PageError::SignIn),
            Err(e) => return Err(PageError::from_status(lang, e.status, &e.message)),
        };
        let csrf = cookie(&parts.headers, CSRF_COOKIE)
            .filter(|t| postwerk_accounts::users::csrf_matches(&me.session, t))
            .ok_or(PageError::SignIn)?
            .to_string();
        let api = Api::new(&console.api, parts, Some(&csrf));
        let done = parts.uri.query().and_then(|q| {
            q.split('&')
                .find_map(|p| p.strip_prefix("done="))
                .filter(|k| k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                .map(str::to_string)
        });
        Ok(Visit {
            me,
            lang,
            api,
            csrf,
            done,
            form: Vec::new(),
        })
    }
}

impl FromRequestParts<Console> for Visit {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, PageError> {
        Visit::from_request(parts, console).await
    }
}

/// A form posted by a signed-in visitor, its CSRF token checked against the session.
/// Fields the form type does not name are ignored; the body is at most 64 KiB.
pub struct Posted<T>(pub Visit, pub T);

/// Most bytes of a console form.
const MAX_FORM: usize = 64 * 1024;

impl<T: DeserializeOwned> FromRequest<Console> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, console: &Console) -> Result<Self, PageError> {
        let (parts, body) = request.into_parts();
        let mut visit = Visit::from_request(&parts, console).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM).await.map_err(|_| {
            PageError::status(visit.lang, StatusCode::PAYLOAD_TOO_LARGE, "error.too_large")
        })?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            PageError::status(visit.lang, StatusCode::BAD_REQUEST, "error.bad_form")
        })?;
        let token = pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str());
        if !token.is_some_and(|t| postwerk_accounts::users::csrf_matches(&visit.me.session, t)) {
            return Err(PageError::status(
                visit.lang,
                StatusCode::FORBIDDEN,
                "error.csrf",
            ));
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            PageError::status(visit.lang, StatusCode::BAD_REQUEST, "error.bad_form")
        })?;
        visit.form = pairs;
        Ok(Posted(visit, form))
    }
}

/// A form with no fields but its CSRF token (a button that acts).
#[derive(serde::Deserialize)]
pub struct Empty {}

/// What an action's API call came to.
pub enum Outcome<T> {
    /// Done; the API's answer.
    Done(T),
    /// Refused for a reason the user can fix (422, 409): the API's message, to show on
    /// the page with the form again.
    Refused(String),
}

impl Visit {
    /// Calls `method path` with `body` for an action: a refusal the user can fix is
    /// [`Outcome::Refused`], any other failure an error page.
    pub async fn act<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Outcome<T>, PageError> {
        match self.api.send(method, path, body).await {
            Ok(answer) => Ok(Outcome::Done(answer)),
            Err(f)
                if [StatusCode::UNPROCESSABLE_ENTITY, StatusCode::CONFLICT].contains(&f.status) =>
            {
                Ok(Outcome::Refused(f.message))
            }
            Err(f) => Err(PageError::api(self.lang, f)),
        }
    }
}

/// A page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or the session ended): to the sign-in page.
    SignIn,
    /// The tenant requires a second factor the user has not set up: to the account page.
    EnrolSecondFactor,
    /// An error page.
    Page {
        /// Its status.
        status: StatusCode,
        /// Its language.
        lang: Lang,
        /// What went wrong, in words.
        message: String,
    },
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    lang: Lang,
    words: &'static Catalogue,
    status: u16,
    heading: &'a str,
    message: &'a str,
}

impl PageError {
    /// An error page with the catalogue's text for `key`.
    pub fn status(lang: Lang, status: StatusCode, key: &str) -> Self {
        PageError::Page {
            status,
            lang,
            message: lang.words().get(key).to_string(),
        }
    }

    /// 403: the user's scopes do not allow it.
    pub fn forbidden(lang: Lang) -> Self {
        PageError::status(lang, StatusCode::FORBIDDEN, "error.forbidden")
    }

    /// 404.
    pub fn not_found(lang: Lang) -> Self {
        PageError::status(lang, StatusCode::NOT_FOUND, "error.not_found")
    }

    fn from_status(lang: Lang, status: StatusCode, message: &str) -> Self {
        match status {
            StatusCode::FORBIDDEN => PageError::forbidden(lang),
            StatusCode::NOT_FOUND => PageError::not_found(lang),
            _ => PageError::Page {
                status,
                lang,
                message: message.to_string(),
            },
        }
    }

    /// The page for an API failure.
    pub fn api(lang: Lang, failure: Failure) -> Self {
        match (failure.status, failure.code.as_str()) {
            (StatusCode::UNAUTHORIZED, _) => PageError::SignIn,
            (_, "totp_enrolment_required") => PageError::EnrolSecondFactor,
            (StatusCode::FORBIDDEN, "insufficient_scope") => PageError::forbidden(lang),
            (status, _) if status.is_server_error() => {
                PageError::status(lang, status, "error.unavailable")
            }
            (status, _) => PageError::from_status(lang, status, &failure.message),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => Redirect::to("/ui/login").into_response(),
            PageError::EnrolSecondFactor => {
                Redirect::to("/ui/account?done=totp_required").into_response()
            }
            PageError::Page {
                status,
                lang,
                message,
            } => {
                let words = lang.words();
                let heading = match status {
                    StatusCode::FORBIDDEN => words.get("error.forbidden_title"),
                    StatusCode::NOT_FOUND => words.get("error.not_found_title"),
                    _ => words.get("error.title"),
                };
                let page = ErrorPage {
                    lang,
                    words,
                    status: status.as_u16(),
                    heading,
                    message: &message,
                };
                (status, render(&page)).into_response()
            }
        }
    }
}

/// A template as an HTML response (a template that fails to render is a 500).
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(target: "postwerk_console", error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// After an action: back to `path`, with the catalogue's `done.<key>` as a notice.
pub fn done(path: &str, key: &str) -> Response {
    let separator = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{separator}done={key}")).into_response()
}

/// A response that the browser downloads as `filename`.
pub fn download(content_type: &'static str, filename: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}
