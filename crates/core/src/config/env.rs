//! Environment overrides: `POSTWERK_<SECTION>_<KEY>` variables, named after the default
//! configuration's keys and typed like their defaults.

use std::collections::BTreeMap;

use super::{Config, ConfigError};

/// `POSTWERK_*` variables Postwerk reads that are not configuration keys.
/// `POSTWERK_TEST_PG_URL` is read by the test suite only.
pub const OTHER_ENV_VARIABLES: &[&str] = &[
    "POSTWERK_CONFIG",
    "POSTWERK_MASTER_KEY",
    "POSTWERK_BACKUP_IDENTITY",
    "POSTWERK_LOG",
    "POSTWERK_LOG_FORMAT",
    "POSTWERK_TEST_PG_URL",
];

/// Keys without a default value (absent from the serialised default configuration)
/// that an environment variable may still set.
pub const OPTIONAL_KEYS: &[&str] = &[
    "store.url",
    "delivery.bounce_domain",
    "smtp.submission.cert",
    "smtp.submission.key",
    "tracking.base_url",
    "tracking.consent_purpose",
    "mta_sts.ca_file",
    "backup.dir",
    "canaries.domain",
];

/// Every configuration key an environment variable can set, by variable name
/// (`POSTWERK_SMTP_SUBMISSION_LISTEN` → `["smtp", "submission", "listen"]`): the
/// default configuration's scalar and list keys, plus [`OPTIONAL_KEYS`].
fn env_keys(defaults: &toml::Table) -> BTreeMap<String, Vec<String>> {
    fn walk(table: &toml::Table, path: &mut Vec<String>, out: &mut BTreeMap<String, Vec<String>>) {
        for (name, value) in table {
            path.push(name.clone());
            match value.as_table() {
                Some(inner) => walk(inner, path, out),
                None => {
                    out.insert(env_name(path), path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = BTreeMap::new();
    walk(defaults, &mut Vec::new(), &mut out);
    for key in OPTIONAL_KEYS {
        let path: Vec<String> = key.split('.').map(String::from).collect();
        out.insert(env_name(&path), path);
    }
    out
}

/// `["smtp", "submission", "listen"]` → `POSTWERK_SMTP_SUBMISSION_LISTEN`.
fn env_name(path: &[String]) -> String {
    format!("POSTWERK_{}", path.join("_").to_ascii_uppercase())
}

fn default_table() -> Result<toml::Table, ConfigError> {
    toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Parse(e.to_string()))
}

/// The `POSTWERK_*` variables in `env` that Postwerk does not read (a misspelt
/// `POSTWERK_HTTP_LISTN` would otherwise be ignored silently), each with the known
/// variable closest to it (`POSTWERK_HTTP_LISTEN`).
pub fn unknown_env_variables(
    env: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let Ok(defaults) = default_table() else {
        return Vec::new();
    };
    let keys = env_keys(&defaults);
    let known: Vec<&str> = keys
        .keys()
        .map(String::as_str)
        .chain(OTHER_ENV_VARIABLES.iter().copied())
        .collect();
    env.into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("POSTWERK_"))
        .filter(|name| !known.contains(&name.to_ascii_uppercase().as_str()))
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            let closest = known
                .iter()
                .min_by_key(|k| strsim::levenshtein(&upper, k))
                .map_or_else(String::new, |k| k.to_string());
            (name, closest)
        })
        .collect()
}

/// Applies `POSTWERK_<SECTION>_<KEY>` variables. The key path is found among the
/// default configuration's keys (see [`env_keys`]); values are typed like the default
/// (numbers, booleans, comma-separated lists). Other `POSTWERK_*` variables are left
/// alone here: [`unknown_env_variables`] names the ones nothing reads.
pub(super) fn apply_env(
    doc: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let defaults = default_table()?;
    let keys = env_keys(&defaults);
    for (name, value) in env {
        let Some(path) = keys.get(&name.to_ascii_uppercase()) else {
            continue;
        };
        let (key, parents) = path.split_last().expect("non-empty path");
        let default = parents
            .iter()
            .try_fold(&defaults, |t, k| t.get(k.as_str())?.as_table())
            .and_then(|t| t.get(key.as_str()));
        let typed = typed_like(default, &value).map_err(|reason| ConfigError::Invalid {
            key: name.clone(),
            reason,
        })?;
        let mut table = &mut *doc;
        for p in parents {
            table = table
                .entry(p.as_str())
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::Parse(format!("`{p}` must be a table")))?;
        }
        table.insert(key.clone(), typed);
    }
    Ok(())
}

fn typed_like(default: Option<&toml::Value>, raw: &str) -> Result<toml::Value, String> {
    Ok(match default {
        Some(toml::Value::Integer(_)) => {
            toml::Value::Integer(raw.parse().map_err(|_| "expected an integer".to_string())?)
        }
        Some(toml::Value::Float(_)) => {
            toml::Value::Float(raw.parse().map_err(|_| "expected a number".to_string())?)
        }
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
            raw.parse()
                .map_err(|_| "expected true or false".to_string())?,
        ),
        Some(toml::Value::Array(_)) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.into()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    })
}
