//! JSON numbers as APIs take them.

use serde::Deserialize;

/// The largest magnitude of a whole number taken: JSON's safe integers, which every
/// JSON reader holds exactly.
pub const MAX_WHOLE: i64 = (1 << 53) - 1;

/// An optional whole number (`#[serde(deserialize_with = "postwerk_core::json::whole")]`),
/// which JSON may write as `42` or `42.0` (a number with a zero fraction is an integer
/// to JSON Schema): beyond ±[`MAX_WHOLE`] or `T`'s range, or with a fraction, it is
/// refused.
pub fn whole<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let int = n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_WHOLE as f64)
            .map(|f| f as i64)
    });
    int.filter(|i| i.abs() <= MAX_WHOLE)
        .and_then(|i| T::try_from(i).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a whole number in range")))
}
