//! Which scope each operation needs. The source is the operation's `security`
//! requirement in `docs/openapi.json` (`[{"bearer": ["read"]}]`): the document users
//! read is the one the server enforces, so the two cannot drift. [`crate::auth::Caller`]
//! checks it before a request body is read, so a key without the scope gets
//! `403 insufficient_scope` whatever it sent.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::LazyLock;

use axum::http::Method;
use postwerk_core::model::Scope;

/// The OpenAPI document, as served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// `(METHOD, path template)` → the scope an operation needs.
static REQUIRED: LazyLock<HashMap<(String, String), Scope>> = LazyLock::new(|| {
    let doc: serde_json::Value =
        serde_json::from_str(OPENAPI).expect("docs/openapi.json is valid JSON");
    let mut required = HashMap::new();
    for (path, operations) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in operations.as_object().into_iter().flatten() {
            let scope = operation["security"][0]["bearer"][0]
                .as_str()
                .map(|s| Scope::from_str(s).expect("documented scopes exist"));
            if let Some(scope) = scope {
                required.insert((method.to_ascii_uppercase(), path.clone()), scope);
            }
        }
    }
    required
});

/// The scope the operation `method path` (an axum route template such as
/// `/v1/messages/{id}`) needs, if it is documented as needing one.
pub fn required(method: &Method, path: &str) -> Option<Scope> {
    REQUIRED
        .get(&(method.as_str().to_string(), path.to_string()))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_but_the_public_and_session_ones_documents_one_scope() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        for (path, operations) in doc["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                // Public, or for a signed-in session only (no API key, no scope).
                let public = operation["security"] == serde_json::json!([])
                    || operation["security"] == serde_json::json!([{"session": []}]);
                let method = Method::from_str(&method.to_ascii_uppercase()).unwrap();
                assert_eq!(
                    required(&method, path).is_none(),
                    public,
                    "{method} {path}: documented neither as public nor with one scope"
                );
            }
        }
        assert_eq!(required(&Method::GET, "/v1/keys"), Some(Scope::Admin));
        assert_eq!(required(&Method::POST, "/v1/messages"), Some(Scope::Send));
    }
}
