//! How NX-OS writes JSON: numbers as strings or as numbers depending on the
//! release, and a table with one row as an object rather than a list. These
//! readers accept both, so callers never see the difference.

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A field NX-OS writes as a string or a number, kept as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Deserializes a count NX-OS writes as `"123"` or `123`. Anything else
/// (`"N/A"`, an empty string, a negative number) is `None`: unavailable,
/// never zero.
pub fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct Visitor;
    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a count as a number or a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<u64>, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u64>, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u64>, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<u64>, E> {
            Ok((v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64).then_some(v as u64))
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
            d.deserialize_any(Visitor)
        }
    }
    deserializer.deserialize_any(Visitor)
}

/// A count as [`number`] reads it, for hand-written visitors.
pub struct Count(pub Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Count, D::Error> {
        number(deserializer).map(Count)
    }
}

/// A map key, borrowed from the input when it has no escapes.
pub struct Key<'de>(pub std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// A `ROW_*` of an NX-OS table: a list of rows, or one row written as an
/// object. Absent tables deserialize to no rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows<T>(pub Vec<T>);

impl<T> Default for Rows<T> {
    fn default() -> Rows<T> {
        Rows(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Rows<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Rows<T>, D::Error> {
        // A visitor rather than an untagged enum: the rows are read in place,
        // so a raw `body` inside them and numbers of either kind survive.
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for Visitor<T> {
            type Value = Rows<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a row or a list of rows")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Rows<T>, A::Error> {
                let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(row) = seq.next_element()? {
                    rows.push(row);
                }
                Ok(Rows(rows))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Rows<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|row| Rows(vec![row]))
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Counts {
        #[serde(default, deserialize_with = "number")]
        a: Option<u64>,
        #[serde(default, deserialize_with = "number")]
        b: Option<u64>,
        #[serde(default, deserialize_with = "number")]
        c: Option<u64>,
        #[serde(default, deserialize_with = "number")]
        d: Option<u64>,
    }

    #[test]
    fn counts_read_as_strings_or_numbers() {
        let counts: Counts =
            serde_json::from_str(r#"{"a": "18446744073709551615", "b": 7, "c": "N/A"}"#).unwrap();
        assert_eq!(counts.a, Some(u64::MAX));
        assert_eq!(counts.b, Some(7));
        assert_eq!(counts.c, None);
        assert_eq!(counts.d, None);
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Row {
        name: Text,
    }

    #[test]
    fn one_row_or_many() {
        let one: Rows<Row> = serde_json::from_str(r#"{"name": "x"}"#).unwrap();
        let many: Rows<Row> = serde_json::from_str(r#"[{"name": "x"}, {"name": 2}]"#).unwrap();
        assert_eq!(
            one.0,
            vec![Row {
                name: Text("x".into())
            }]
        );
        assert_eq!(many.0.len(), 2);
        assert_eq!(many.0[1].name, Text("2".into()));
    }
}
