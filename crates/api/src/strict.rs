//! Strict JSON decoding for request bodies. serde's derived structs also accept a JSON
//! array of their fields in order (`[]` or `["a", 1]` for `{"x": …, "y": …}`); a client
//! that sends an array where the API documents an object gets `400`, not a guess.
//!
//! [`from_slice`] decodes the body's bytes straight into the request type (no
//! intermediate `serde_json::Value`, whose size can be many times the body's) through
//! a wrapper that offers structs only JSON objects, at every depth, and reports the
//! path of the offending field.

use std::fmt;

use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// Why a body did not decode.
#[derive(Debug)]
pub enum DecodeError {
    /// Not JSON (or cut short): the message says where.
    Syntax(String),
    /// JSON of the wrong shape: `path: message` like axum's.
    Data(String),
}

/// Decodes `bytes` (one JSON document, nothing after it but white space) into `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(Strict(&mut json)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            DecodeError::Data(format!("{path}: {inner}"))
        } else {
            DecodeError::Syntax(inner.to_string())
        }
    })?;
    json.end().map_err(|e| DecodeError::Syntax(e.to_string()))?;
    Ok(value)
}

/// Decodes a JSON value already in memory into `T` with the same strictness (the
/// error text is `path: message`).
pub fn from_value<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        format!("{path}: {}", e.into_inner())
    })
}

/// A deserializer that deserializes structs only from maps (JSON objects), and wraps
/// every nested deserializer the same way.
struct Strict<D>(D);

/// A visitor whose nested deserializers are [`Strict`].
struct Wrap<V>(V);

macro_rules! forward {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method(Wrap(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        // Through `deserialize_any`, so that a JSON `null` reaches the map's
        // `visit_unit`: a `serde_json::Map` field (metadata, contact attributes, a
        // stream's changes) documented as nullable takes `null` as `{}`.
        self.0.deserialize_any(Wrap(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // A map only: `deserialize_struct` would take an array of the fields too.
        self.0.deserialize_map(Wrap(Expecting(visitor)))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, Wrap(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, Wrap(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, Wrap(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// A struct's visitor that says "a JSON object" when it gets anything else.
struct Expecting<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Expecting<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(map)
    }
}

macro_rules! visit {
    ($($method:ident: $ty:ty)*) => {
        $(
            fn $method<E: serde::de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.0.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    visit! {
        visit_bool: bool visit_i8: i8 visit_i16: i16 visit_i32: i32 visit_i64: i64
        visit_i128: i128 visit_u8: u8 visit_u16: u16 visit_u32: u32 visit_u64: u64
        visit_u128: u128 visit_f32: f32 visit_f64: f64 visit_char: char visit_str: &str
        visit_borrowed_str: &'de str visit_string: String visit_bytes: &[u8]
        visit_borrowed_bytes: &'de [u8] visit_byte_buf: Vec<u8>
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Strict(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Strict(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Wrap(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Wrap(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(Wrap(data))
    }
}

/// A seed whose deserializer is [`Strict`].
struct Seed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(Seed(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<A> {
    type Error = A::Error;
    type Variant = Wrap<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        self.0
            .variant_seed(Seed(seed))
            .map(|(value, variant)| (value, Wrap(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.tuple_variant(len, Wrap(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.struct_variant(fields, Wrap(Expecting(visitor)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        a: Option<bool>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Plain,
        With { inner: Inner },
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<u32>,
        #[serde(default)]
        map: BTreeMap<String, Value>,
        #[serde(default)]
        kinds: Vec<Kind>,
    }

    fn data(text: &str) -> String {
        match from_slice::<Outer>(text.as_bytes()) {
            Err(DecodeError::Data(e)) => e,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn objects_only_for_structs_at_every_depth() {
        let ok: Outer = from_slice(
            br#"{"name": "x", "inner": {"a": true}, "list": [1, 2], "map": {"k": [1, {"z": null}]},
                 "kinds": ["plain", {"with": {"inner": {}}}]}"#,
        )
        .unwrap();
        assert_eq!(ok.inner, Some(Inner { a: Some(true) }));
        assert_eq!(ok.list, vec![1, 2]);
        assert_eq!(ok.map["k"], json!([1, {"z": null}]));
        assert_eq!(
            ok.kinds,
            [
                Kind::Plain,
                Kind::With {
                    inner: Inner { a: None }
                }
            ]
        );
        assert!(data(r#"["x"]"#).contains("a JSON object"));
        let nested = data(r#"{"name": "x", "inner": [null]}"#);
        assert!(
            nested.starts_with("inner: ") && nested.contains("a JSON object"),
            "{nested}"
        );
        let variant = data(r#"{"name": "x", "kinds": [{"with": {"inner": [true]}}]}"#);
        assert!(
            variant.starts_with("kinds[0].with.inner: ") && variant.contains("a JSON object"),
            "{variant}"
        );
        let unknown = data(r#"{"name": "x", "nope": 1}"#);
        assert!(unknown.contains("unknown field `nope`"), "{unknown}");
        let typed = data(r#"{"name": "x", "list": ["a"]}"#);
        assert!(typed.starts_with("list[0]: "), "{typed}");
        let inner: Outer = from_slice(br#"{"name": "x", "inner": null}"#).unwrap();
        assert_eq!(inner.inner, None);
    }

    #[test]
    fn a_null_json_map_is_empty_and_a_null_struct_is_refused() {
        let map: serde_json::Map<String, Value> = from_slice(b"null").unwrap();
        assert!(map.is_empty());
        let map: serde_json::Map<String, Value> = from_slice(br#"{"a": 1}"#).unwrap();
        assert_eq!(map["a"], 1);
        assert!(matches!(
            from_slice::<serde_json::Map<String, Value>>(b"[]"),
            Err(DecodeError::Data(_))
        ));
        assert!(matches!(
            from_slice::<Outer>(b"null"),
            Err(DecodeError::Data(_))
        ));
    }

    #[test]
    fn syntax_errors_and_trailing_text_are_not_data_errors() {
        for text in [
            r#"{"name": "x""#,
            r#"{"name": "x"} {}"#,
            "",
            r#"{"name": "x", "list": [1,"#,
            r#"{"name": 'x'}"#,
        ] {
            assert!(
                matches!(
                    from_slice::<Outer>(text.as_bytes()),
                    Err(DecodeError::Syntax(_))
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn a_huge_array_for_a_struct_is_refused_at_its_first_byte() {
        // 8 MiB of `[0,0,…]`: refused without reading it into memory (decoding it into
        // a `Value` would take 32 bytes per element).
        let mut body = b"[".to_vec();
        body.extend(b"0,".repeat(4 << 20));
        body.extend(b"0]");
        assert!(data(std::str::from_utf8(&body).unwrap()).contains("a JSON object"));
    }

    #[test]
    fn values_in_memory_decode_as_strictly() {
        assert!(
            from_value::<Outer>(&json!({"name": "x", "inner": []}))
                .unwrap_err()
                .starts_with("inner: ")
        );
        assert_eq!(
            from_value::<Outer>(&json!({"name": "y"})).unwrap().name,
            "y"
        );
    }
}
