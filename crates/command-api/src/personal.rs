//! Personal data on its way into the store and back: sealed before it is written, opened after
//! it is read (crypto-shredding; the keys and the sealed format are `marquee_auth::vault`'s).
//!
//! # What is personal, and whose
//!
//! | in documents of | personal strings | whose (the person's e-mail address) |
//! |---|---|---|
//! | the event aggregate | `name` and `email` of every `attendee` object, every answer string in every `answers` object (a one-value answer, and each value of a multiple choice), at any depth | the `attendee.email` beside them; else the registration's attendee, looked up in the aggregate (`AnswersGiven`, the check-in answer) |
//! | the user aggregate | `name` and `email` at the top level | the `email` beside them; else the account's |
//! | venues, organizations | nothing | — |
//!
//! The same rules serve facts (`RegistrationConfirmed`, `SeatsHeld`, `WaitlistJoined`,
//! `AnswersGiven`, `UserRegistered`, `UserProfileChanged`), snapshots of the folded state (an
//! event's registrations and waitlist entries hold attendees and answers) and the answers an
//! idempotency key remembers (the check-in answer names the attendee, the profile answer the
//! account). A person is `Vault::person_id(email)`: every value of one person is sealed under
//! that person's key, so erasing the person erases all of them at once.
//!
//! # Where
//!
//! - **Written**: the engine builds every append as an [`Unsealed`] request (the pipeline's
//!   batches, the naive path, `execute_scheduled`, `execute_two`) and the log seals it just
//!   before the append; the aggregate in the decider's memory keeps the plaintext (the domain
//!   stays pure and never sees a sealed value). Snapshots are sealed when saved.
//! - **Read**: every page of facts the engine loads is opened before it is decoded (one key
//!   query per page at most), and so is a snapshot before it is deserialized, and a remembered
//!   answer before it is replayed. Text that is not sealed (facts written before sealing
//!   existed) reads as it is.
//! - The relay publishes facts exactly as stored, sealed: NATS never carries plaintext.
//!
//! # Erased persons
//!
//! Everything sealed for an erased person reads as [`ERASED`] (`"[erased]"`), and so does a
//! value that is sealed but cannot be opened (tampered with, or a log restored without its
//! keys). The placeholder is never sealed again: writing it is writing no personal data.
//! Nothing new can be sealed for an erased person (`Vault::seal` refuses: erasure is forever for
//! an address), so a command that would record new personal data of one — a reservation or a
//! sign-up with an erased address — is refused with `409 person_erased`. A remembered answer or
//! a snapshot that still held such a person's data (a decider that read it before the erasure)
//! gets the placeholder instead.
//!
//! An engine without a vault (`Engine::new`, in tests and benchmarks) writes and reads personal
//! data as it is.

use marquee_auth::vault::SEALED_PREFIX;
use marquee_auth::{AuthError, Opened, Vault};
use marquee_domain::ERASED;
use serde_json::Value;

use crate::error::ApiError;

/// Where the documents of one aggregate keep personal data; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The event aggregate: `attendee` objects and `answers` objects, at any depth.
    Attendees,
    /// The user aggregate: `name` and `email` at the top level.
    Account,
    /// Nothing personal.
    Nothing,
}

impl Shape {
    /// The shape of the documents of the aggregate named `aggregate` (`FactCodec::AGGREGATE`).
    pub(crate) fn of(aggregate: &str) -> Shape {
        match aggregate {
            "event" => Shape::Attendees,
            "user" => Shape::Account,
            _ => Shape::Nothing,
        }
    }
}

/// What to do with a personal value that cannot be sealed because its person is erased or
/// unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsealable {
    /// Refuse the write: a fact must not silently lose what it records.
    Refuse,
    /// Write the placeholder: a snapshot or a remembered answer is only a copy.
    Erase,
}

/// One personal string of a document, and the e-mail address of its person when known.
struct Slot<'a> {
    value: &'a mut String,
    subject: Option<String>,
}

/// Adds the personal strings of `doc` (of `shape`) to `slots`. `fallback` is whose they are
/// when the document does not say.
fn collect<'a>(
    shape: Shape,
    doc: &'a mut Value,
    fallback: Option<&str>,
    slots: &mut Vec<Slot<'a>>,
) {
    match shape {
        Shape::Nothing => {}
        Shape::Account => {
            let Value::Object(map) = doc else {
                return;
            };
            let subject = map
                .get("email")
                .and_then(Value::as_str)
                .or(fallback)
                .map(str::to_owned);
            for (key, value) in map.iter_mut() {
                if let ("name" | "email", Value::String(value)) = (key.as_str(), value) {
                    slots.push(Slot {
                        value,
                        subject: subject.clone(),
                    });
                }
            }
        }
        Shape::Attendees => collect_attendees(doc, fallback, slots),
    }
}

/// [`Shape::Attendees`]: walks the whole document.
fn collect_attendees<'a>(doc: &'a mut Value, fallback: Option<&str>, slots: &mut Vec<Slot<'a>>) {
    match doc {
        Value::Object(map) => {
            let subject = map
                .get("attendee")
                .and_then(|attendee| attendee.get("email"))
                .and_then(Value::as_str)
                .or(fallback)
                .map(str::to_owned);
            for (key, value) in map.iter_mut() {
                match (key.as_str(), value) {
                    ("attendee", Value::Object(attendee)) => {
                        for (field, value) in attendee.iter_mut() {
                            if let ("name" | "email", Value::String(value)) =
                                (field.as_str(), value)
                            {
                                slots.push(Slot {
                                    value,
                                    subject: subject.clone(),
                                });
                            }
                        }
                    }
                    ("answers", Value::Object(answers)) => {
                        for answer in answers.values_mut() {
                            match answer {
                                Value::String(value) => slots.push(Slot {
                                    value,
                                    subject: subject.clone(),
                                }),
                                Value::Array(values) => {
                                    for value in values {
                                        if let Value::String(value) = value {
                                            slots.push(Slot {
                                                value,
                                                subject: subject.clone(),
                                            });
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    (_, value) => collect_attendees(value, fallback, slots),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_attendees(item, fallback, slots);
            }
        }
        _ => {}
    }
}

/// One document to seal: its shape, whose its data is when it does not say, and what to do
/// with data that cannot be sealed.
pub(crate) struct Document<'a> {
    pub doc: &'a mut Value,
    pub shape: Shape,
    pub subject: Option<&'a str>,
    pub unsealable: Unsealable,
}

/// The personal strings of `documents`, each with what to do when it cannot be sealed.
fn slots_of<'a>(documents: Vec<Document<'a>>) -> Vec<(Slot<'a>, Unsealable)> {
    let mut slots = Vec::new();
    for document in documents {
        let mut found = Vec::new();
        collect(document.shape, document.doc, document.subject, &mut found);
        slots.extend(found.into_iter().map(|slot| (slot, document.unsealable)));
    }
    slots
}

/// The distinct persons of `slots`.
fn persons_of(vault: &Vault, slots: &[(Slot<'_>, Unsealable)]) -> Vec<String> {
    let mut persons: Vec<String> = slots
        .iter()
        .filter_map(|(slot, _)| slot.subject.as_deref())
        .filter(|subject| *subject != ERASED)
        .map(|subject| vault.person_id(subject))
        .collect();
    persons.sort_unstable();
    persons.dedup();
    persons
}

/// Reads the keys of everyone whose data is in `documents` ahead, with one query (see
/// [`warm_keys`]), for documents that are sealed one after another afterwards.
pub(crate) async fn warm(vault: &Vault, documents: Vec<Document<'_>>) {
    let slots = slots_of(documents);
    warm_keys(vault, &persons_of(vault, &slots)).await;
}

/// Seals the personal strings of `documents` in place; on an error the documents are half
/// sealed and must not be written. The keys of everyone involved are read with one query
/// first (see [`warm_keys`]).
pub(crate) async fn seal(vault: &Vault, documents: Vec<Document<'_>>) -> Result<(), ApiError> {
    let slots = slots_of(documents);
    warm_keys(vault, &persons_of(vault, &slots)).await;
    for (slot, unsealable) in slots {
        // The placeholder is no one's data. Anything else is sealed, even text that looks
        // sealed already: it is what someone typed.
        if slot.value == ERASED {
            continue;
        }
        let person = slot
            .subject
            .as_deref()
            .filter(|subject| *subject != ERASED)
            .map(|subject| vault.person_id(subject));
        let refusal = match person {
            Some(person) => match vault.seal(&person, slot.value).await {
                Ok(sealed) => {
                    *slot.value = sealed;
                    continue;
                }
                Err(AuthError::PersonErased) => ApiError::PersonErased,
                Err(e) => return Err(ApiError::Internal(format!("sealing personal data: {e}"))),
            },
            None => ApiError::Internal("personal data of no known person; not written".into()),
        };
        match unsealable {
            Unsealable::Refuse => return Err(refusal),
            Unsealable::Erase => *slot.value = ERASED.to_owned(),
        }
    }
    Ok(())
}

/// Readies the keys of `persons` in the vault's cache: one query reads those that exist and
/// one statement creates the rest (see [`Vault::prepare`]), so sealing a batch of facts with
/// many new attendees, or a snapshot of many attendees, commits no key per person. If it fails,
/// sealing reads and creates the keys one by one and reports the error itself.
async fn warm_keys(vault: &Vault, persons: &[String]) {
    if persons.is_empty() {
        return;
    }
    let persons: Vec<&str> = persons.iter().map(String::as_str).collect();
    if let Err(e) = vault.prepare(&persons).await {
        tracing::debug!(error = %e, "could not ready personal keys ahead; sealing makes them one by one");
    }
}

/// Opens every sealed string in `documents` in place, whatever field it is in: with one key
/// query for all of them, the plaintext, or [`ERASED`] for an erased person (and, with a
/// warning, for a value that cannot be opened). The error is the key store's.
pub(crate) async fn open<'a>(
    vault: &Vault,
    documents: impl IntoIterator<Item = &'a mut Value>,
) -> Result<(), ApiError> {
    let mut sealed: Vec<&mut String> = Vec::new();
    for doc in documents {
        sealed_strings(doc, &mut sealed);
    }
    if sealed.is_empty() {
        return Ok(());
    }
    let opened = vault
        .open_many(&sealed)
        .await
        .map_err(|e| ApiError::Internal(format!("reading personal keys: {e}")))?;
    for (value, opened) in sealed.into_iter().zip(opened) {
        *value = match opened {
            Ok(Opened::Plain(text)) => text,
            Ok(Opened::Erased) => ERASED.to_owned(),
            Err(e) => {
                tracing::warn!(error = %e, "a sealed value cannot be opened; it reads as erased");
                ERASED.to_owned()
            }
        };
    }
    Ok(())
}

/// Adds every sealed string of `doc` to `found`.
fn sealed_strings<'a>(doc: &'a mut Value, found: &mut Vec<&'a mut String>) {
    match doc {
        Value::String(text) if Vault::is_sealed(text) => found.push(text),
        Value::Array(items) => {
            for item in items {
                sealed_strings(item, found);
            }
        }
        Value::Object(map) => {
            for value in map.values_mut() {
                sealed_strings(value, found);
            }
        }
        _ => {}
    }
}

/// The person a sealed value belongs to, from its prefix; `None` for anything else.
pub(crate) fn sealed_person(value: &str) -> Option<&str> {
    value
        .strip_prefix(SEALED_PREFIX)
        .and_then(|rest| rest.split(':').next())
        .filter(|person| !person.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn personal(
        shape: Shape,
        mut doc: Value,
        fallback: Option<&str>,
    ) -> Vec<(String, Option<String>)> {
        let mut slots = Vec::new();
        collect(shape, &mut doc, fallback, &mut slots);
        slots
            .into_iter()
            .map(|slot| (slot.value.clone(), slot.subject))
            .collect()
    }

    fn of(value: &str, subject: &str) -> (String, Option<String>) {
        (value.to_owned(), Some(subject.to_owned()))
    }

    #[test]
    fn an_attendee_and_the_answers_beside_it_belong_to_that_attendee() {
        let fact = json!({
            "registration_id": "r1",
            "attendee": { "name": "Ada", "email": "ada@example.org" },
            "answers": { "diet": "vegan", "talks": ["rust", "sql"], "age": "25_34" },
            "quantity": 2,
        });
        let mut found = personal(Shape::Attendees, fact, None);
        found.sort();
        let ada = "ada@example.org";
        let mut expected = vec![
            of("Ada", ada),
            of(ada, ada),
            of("vegan", ada),
            of("rust", ada),
            of("sql", ada),
            of("25_34", ada),
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn answers_without_an_attendee_belong_to_the_person_named_from_outside() {
        let fact = json!({ "registration_id": "r1", "answers": { "diet": "vegan" } });
        assert_eq!(
            personal(Shape::Attendees, fact, Some("ada@example.org")),
            vec![of("vegan", "ada@example.org")]
        );
    }

    #[test]
    fn every_attendee_of_a_snapshot_is_its_own_person() {
        let state = json!({
            "title": "Not personal",
            "registrations": {
                "r1": { "attendee": { "name": "Ada", "email": "ada@example.org" }, "answers": {} },
                "r2": { "attendee": { "name": "Bob", "email": "bob@example.org" },
                        "answers": { "diet": "none" } },
            },
            "waitlist": { "e1": { "attendee": { "name": "Cy", "email": "cy@example.org" },
                                  "answers": { "diet": "fish" } } },
            "questions": [{ "id": "diet", "label": "Diet", "type": "text" }],
        });
        let mut found = personal(Shape::Attendees, state, None);
        found.sort();
        let mut expected = vec![
            of("Ada", "ada@example.org"),
            of("ada@example.org", "ada@example.org"),
            of("Bob", "bob@example.org"),
            of("bob@example.org", "bob@example.org"),
            of("none", "bob@example.org"),
            of("Cy", "cy@example.org"),
            of("cy@example.org", "cy@example.org"),
            of("fish", "cy@example.org"),
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn an_account_keeps_its_name_and_address_at_the_top_level_only() {
        let state = json!({
            "name": "Ada", "email": "ada@example.org", "locale": "en",
            "organizations": { "o1": "owner" },
        });
        let mut found = personal(Shape::Account, state, None);
        found.sort();
        assert_eq!(
            found,
            vec![
                of("Ada", "ada@example.org"),
                of("ada@example.org", "ada@example.org")
            ]
        );
        let changed = json!({ "name": "Ada L." });
        assert_eq!(
            personal(Shape::Account, changed, Some("ada@example.org")),
            vec![of("Ada L.", "ada@example.org")]
        );
    }

    #[test]
    fn venues_and_organizations_hold_nothing_personal() {
        let venue = json!({ "name": "Hall", "attendee": { "name": "x", "email": "y" } });
        assert!(personal(Shape::Nothing, venue, Some("a@b.c")).is_empty());
    }

    #[test]
    fn a_sealed_value_names_its_person() {
        assert_eq!(sealed_person("sealed:v1:abc123:AAAA:BBBB"), Some("abc123"));
        assert_eq!(sealed_person("Ada"), None);
        assert_eq!(sealed_person("sealed:v1::x:y"), None);
    }
}
