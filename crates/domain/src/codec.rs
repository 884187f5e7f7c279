//! How facts travel to and from the log: a type name, a schema version and a JSON body.
//!
//! The log stores facts as opaque JSON so that the store knows nothing about the domain. Each
//! aggregate's fact enum is serialized with an internal `"type"` tag; the tag becomes the log's
//! `fact_type` column and the rest of the object its `data`. Reading goes the other way and runs
//! every stored body through [`FactCodec::upcast`] first, so an old version of a fact is reshaped
//! into the current one before serde sees it. A fact's meaning never changes: new optional fields
//! get serde defaults, renames and reshapes get an upcaster and a version bump.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A stored fact could not be turned back into a domain fact.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The type name is not one this aggregate knows.
    #[error("unknown fact type `{0}`")]
    UnknownType(String),
    /// The version is newer than this build understands (written by a newer Marquee).
    #[error("fact `{fact_type}` has schema version {version}, newer than this build's {current}")]
    FutureVersion {
        fact_type: String,
        version: u32,
        current: u32,
    },
    /// The body does not match the fact's shape.
    #[error("fact `{fact_type}` v{version} is malformed: {message}")]
    Malformed {
        fact_type: String,
        version: u32,
        message: String,
    },
}

/// Implemented by every aggregate's fact enum. Only [`FactCodec::schema_version`] and, when a
/// fact's shape changes, [`FactCodec::upcast`] need writing by hand.
pub trait FactCodec: Serialize + DeserializeOwned + Sized {
    /// The aggregate these facts belong to, e.g. `event`; also the NATS subject segment.
    const AGGREGATE: &'static str;

    /// The current schema version of the fact type `fact_type`. Starts at 1.
    fn schema_version(fact_type: &str) -> u32;

    /// Reshapes the body of fact `fact_type` written at `version` into the current version's
    /// shape. The default knows only version 1.
    fn upcast(fact_type: &str, version: u32, data: Value) -> Result<Value, DecodeError> {
        let _ = (fact_type, version);
        Ok(data)
    }

    /// The type name of this fact, e.g. `RegistrationConfirmed`.
    fn fact_type(&self) -> String {
        split(self).0
    }

    /// `(fact_type, schema_version, data)` as the log stores them.
    fn encode(&self) -> (String, u32, Value) {
        let (fact_type, data) = split(self);
        let version = Self::schema_version(&fact_type);
        (fact_type, version, data)
    }

    /// The inverse of [`FactCodec::encode`], upcasting old versions on the way.
    fn decode(fact_type: &str, version: u32, data: Value) -> Result<Self, DecodeError> {
        let current = Self::schema_version(fact_type);
        if version > current {
            return Err(DecodeError::FutureVersion {
                fact_type: fact_type.to_owned(),
                version,
                current,
            });
        }
        let data = if version < current {
            Self::upcast(fact_type, version, data)?
        } else {
            data
        };
        let mut object = match data {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            other => {
                return Err(DecodeError::Malformed {
                    fact_type: fact_type.to_owned(),
                    version,
                    message: format!("expected an object, found {other}"),
                });
            }
        };
        object.insert("type".to_owned(), Value::String(fact_type.to_owned()));
        serde_json::from_value(Value::Object(object)).map_err(|e| {
            let message = e.to_string();
            // Only the tag itself being unknown makes the type unknown; an unknown variant of
            // some enum inside the body is a malformed body.
            if message.starts_with(&format!("unknown variant `{fact_type}`")) {
                DecodeError::UnknownType(fact_type.to_owned())
            } else {
                DecodeError::Malformed {
                    fact_type: fact_type.to_owned(),
                    version,
                    message,
                }
            }
        })
    }
}

/// Serializes a fact and splits its `"type"` tag from the rest of the body.
fn split<F: Serialize>(fact: &F) -> (String, Value) {
    // Serializing a plain data enum into a Value cannot fail: no maps with non-string keys.
    let value = serde_json::to_value(fact).unwrap_or(Value::Null);
    match value {
        Value::Object(mut map) => {
            let fact_type = match map.remove("type") {
                Some(Value::String(t)) => t,
                _ => String::new(),
            };
            (fact_type, Value::Object(map))
        }
        other => (String::new(), other),
    }
}
