//! The upcaster path: a fact written at an old schema version is reshaped on read into the
//! current shape, so old facts stay readable forever. Shown on a fact type that went through two
//! changes (a rename, then a new field with a default), with a fixture body of every version.

use marquee_domain::{DecodeError, FactCodec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// v1: `{ "name": "…" }`; v2 renamed `name` to `title`; v3 added `capacity` (default 0).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum ShowFact {
    ShowAnnounced {
        title: String,
        #[serde(default)]
        capacity: u32,
    },
}

impl FactCodec for ShowFact {
    const AGGREGATE: &'static str = "show";

    fn schema_version(_fact_type: &str) -> u32 {
        3
    }

    fn upcast(fact_type: &str, version: u32, mut data: Value) -> Result<Value, DecodeError> {
        if fact_type == "ShowAnnounced" && version < 2 {
            // v1 → v2: `name` became `title`.
            if let Some(object) = data.as_object_mut()
                && let Some(name) = object.remove("name")
            {
                object.insert("title".into(), name);
            }
        }
        // v2 → v3 needs no code: `capacity` has a serde default.
        Ok(data)
    }
}

fn current() -> ShowFact {
    ShowFact::ShowAnnounced {
        title: "Opening night".into(),
        capacity: 0,
    }
}

#[test]
fn a_version_one_fact_is_upcast_to_the_current_shape() {
    let decoded = ShowFact::decode("ShowAnnounced", 1, json!({ "name": "Opening night" }));
    assert_eq!(decoded, Ok(current()));
}

#[test]
fn a_version_two_fact_gets_the_new_field_s_default() {
    let decoded = ShowFact::decode("ShowAnnounced", 2, json!({ "title": "Opening night" }));
    assert_eq!(decoded, Ok(current()));
}

#[test]
fn a_current_fact_is_read_as_written_and_encodes_at_the_current_version() {
    let fact = ShowFact::ShowAnnounced {
        title: "Opening night".into(),
        capacity: 120,
    };
    let (fact_type, version, data) = fact.encode();
    assert_eq!((fact_type.as_str(), version), ("ShowAnnounced", 3));
    assert_eq!(ShowFact::decode(&fact_type, version, data), Ok(fact));
}

#[test]
fn a_version_from_the_future_is_refused_not_guessed() {
    let decoded = ShowFact::decode("ShowAnnounced", 4, json!({ "title": "x" }));
    assert!(matches!(
        decoded,
        Err(DecodeError::FutureVersion {
            version: 4,
            current: 3,
            ..
        })
    ));
}
