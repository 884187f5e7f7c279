//! Personal data in the facts the projector reads: opened before they are decoded, and whose it
//! is.
//!
//! The command side seals attendee names, e-mail addresses and answers with a key per person
//! (`marquee_command_api::personal`, `marquee_auth::vault`); the log, the relay and JetStream
//! carry them sealed. Before a batch is applied, every sealed string of its event facts is
//! opened with one key query for the whole batch ([`open`]): the plaintext, or
//! [`ERASED`] (`"[erased]"`) for an erased person — and, with a warning, for a value that
//! cannot be opened. Facts written before sealing existed read as they are.
//!
//! Every row made from a fact with sealed data also records the **person id** the data was
//! sealed under (taken from the sealed value, `sealed:v1:<person id>:…`): `UserErased` names
//! that id, and the projector then replaces the person's name, e-mail address and answers in
//! `registrations` and `waitlist_entries` at once. A rebuild reads them as erased anyway, so
//! the live and the rebuilt read models agree.
//!
//! The vault reads keys without a cache ([`crate::ReadModels::with_vault`]): a key erased by a
//! command API in another process reads as erased here at once, so no fact applied after
//! `UserErased` can bring plaintext of that person back.

use marquee_auth::vault::SEALED_PREFIX;
use marquee_auth::{Opened, Vault};
use marquee_domain::ERASED;
use marquee_store::RecordedFact;
use serde_json::Value;

use crate::ProjectorError;

/// A fact as the projector applies it: as recorded, with its data opened.
pub(crate) struct Readable<'a> {
    /// The fact as the log holds it (its data may be sealed).
    pub recorded: &'a RecordedFact,
    /// Its data with personal data opened; `None` when nothing in it was sealed (read
    /// `recorded.data` then).
    pub opened: Option<Value>,
    /// The person whose sealed data the fact holds, if it holds any.
    pub person: Option<String>,
}

impl Readable<'_> {
    /// The data to decode: opened, or as recorded.
    pub fn data(&self) -> &Value {
        self.opened.as_ref().unwrap_or(&self.recorded.data)
    }
}

/// Opens the personal data of `facts` (with at most one key query, however many facts);
/// without a vault, or for facts without sealed data, they read as recorded.
pub(crate) async fn open<'a>(
    vault: Option<&Vault>,
    facts: &'a [RecordedFact],
) -> Result<Vec<Readable<'a>>, ProjectorError> {
    let mut readable: Vec<Readable<'a>> = facts
        .iter()
        .map(|recorded| {
            let mut person = None;
            first_sealed_person(&recorded.data, &mut person);
            Readable {
                recorded,
                opened: person.is_some().then(|| recorded.data.clone()),
                person,
            }
        })
        .collect();
    let Some(vault) = vault else {
        for fact in &mut readable {
            fact.opened = None;
        }
        return Ok(readable);
    };
    let mut sealed: Vec<&mut String> = Vec::new();
    for fact in &mut readable {
        if let Some(data) = &mut fact.opened {
            sealed_strings(data, &mut sealed);
        }
    }
    if sealed.is_empty() {
        return Ok(readable);
    }
    let opened = vault
        .open_many(&sealed)
        .await
        .map_err(|e| ProjectorError::Keys(e.to_string()))?;
    for (value, opened) in sealed.into_iter().zip(opened) {
        *value = match opened {
            Ok(Opened::Plain(text)) => text,
            Ok(Opened::Erased) => ERASED.to_owned(),
            Err(error) => {
                tracing::warn!(%error, "a sealed value cannot be opened; it reads as erased");
                ERASED.to_owned()
            }
        };
    }
    Ok(readable)
}

/// The person id of the first sealed string in `value`, into `person`.
fn first_sealed_person(value: &Value, person: &mut Option<String>) {
    if person.is_some() {
        return;
    }
    match value {
        Value::String(text) => *person = sealed_person(text).map(str::to_owned),
        Value::Array(items) => items
            .iter()
            .for_each(|item| first_sealed_person(item, person)),
        Value::Object(map) => map
            .values()
            .for_each(|item| first_sealed_person(item, person)),
        _ => {}
    }
}

/// Adds every sealed string of `value` to `found`.
fn sealed_strings<'a>(value: &'a mut Value, found: &mut Vec<&'a mut String>) {
    match value {
        Value::String(text) if Vault::is_sealed(text) => found.push(text),
        Value::Array(items) => {
            for item in items {
                sealed_strings(item, found);
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                sealed_strings(item, found);
            }
        }
        _ => {}
    }
}

/// The person a sealed value belongs to, from its prefix; `None` for anything else.
fn sealed_person(value: &str) -> Option<&str> {
    value
        .strip_prefix(SEALED_PREFIX)
        .and_then(|rest| rest.split(':').next())
        .filter(|person| !person.is_empty())
}

/// Answers (a JSON object of question id → text or list of texts, as stored) with every value
/// replaced by [`ERASED`], as they read once their person is erased; `None` when `answers` is
/// not such an object.
pub(crate) fn erased_answers(answers: &str) -> Option<String> {
    let mut answers: serde_json::Map<String, Value> = serde_json::from_str(answers).ok()?;
    for value in answers.values_mut() {
        match value {
            Value::Array(items) => {
                for item in items {
                    *item = Value::from(ERASED);
                }
            }
            other => *other = Value::from(ERASED),
        }
    }
    serde_json::to_string(&answers).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_names_its_person() {
        assert_eq!(sealed_person("sealed:v1:abc123:AAAA:BBBB"), Some("abc123"));
        assert_eq!(sealed_person("Ada"), None);
        assert_eq!(sealed_person("sealed:v1::x:y"), None);
    }

    #[test]
    fn erased_answers_keep_their_questions_and_shapes() {
        assert_eq!(
            erased_answers(r#"{"diet":"vegan","talks":["rust","sql"]}"#).as_deref(),
            Some(r#"{"diet":"[erased]","talks":["[erased]","[erased]"]}"#)
        );
        assert_eq!(erased_answers("{}").as_deref(), Some("{}"));
        assert_eq!(erased_answers("not json"), None);
    }
}
