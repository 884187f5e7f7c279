//! Registration questions: what an organizer asks every attendee, and the checks on the answers.
//!
//! Answers are personal data. They travel in `AnswersGiven` and `WaitlistJoined` facts, never in
//! a fact that must outlive a person's erasure without its key.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::EventError;

/// Most questions one event may ask.
pub const MAX_QUESTIONS: usize = 50;
/// Most options one choice question may offer.
pub const MAX_OPTIONS: usize = 50;
/// Longest question id, in characters (`[a-z0-9_]`).
pub const MAX_QUESTION_ID: usize = 40;
/// Longest question label or option, in characters.
pub const MAX_LABEL: usize = 200;
/// Longest free-text answer, in characters.
pub const MAX_TEXT_ANSWER: usize = 1_000;

/// The age ranges an `age_range` question offers, youngest first.
pub const AGE_RANGES: [&str; 7] = [
    "under_18", "18_24", "25_34", "35_44", "45_54", "55_64", "65_plus",
];

/// One question asked at registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable key of the answer, `[a-z0-9_]{1,40}`, unique within the event.
    pub id: String,
    /// What the attendee is asked.
    pub label: String,
    /// What kind of answer is expected.
    #[serde(rename = "type")]
    pub kind: QuestionKind,
    /// The choices of a choice question; empty for the other kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Whether a registration without an answer is refused.
    #[serde(default)]
    pub required: bool,
}

/// The kinds of answer a question takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// Free text, up to [`MAX_TEXT_ANSWER`] characters.
    Text,
    /// Exactly one of the options.
    SingleChoice,
    /// Any number of distinct options (at least one when required).
    MultipleChoice,
    /// An ISO 3166-1 alpha-2 country code, e.g. `DE`.
    Country,
    /// One of [`AGE_RANGES`].
    AgeRange,
}

impl QuestionKind {
    /// True for the kinds answered from a list of options.
    pub fn has_options(self) -> bool {
        matches!(self, Self::SingleChoice | Self::MultipleChoice)
    }
}

/// An answer: one value, or several for a multiple-choice question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnswerValue {
    /// Text, a choice, a country code or an age range.
    One(String),
    /// The choices of a multiple-choice question.
    Many(Vec<String>),
}

/// Answers by question id.
pub type Answers = BTreeMap<String, AnswerValue>;

fn invalid_question(message: impl Into<String>) -> EventError {
    EventError::Invalid {
        field: "questions",
        message: message.into(),
    }
}

fn invalid_answer(question: &str, message: impl Into<String>) -> EventError {
    EventError::InvalidAnswer {
        question: question.to_owned(),
        message: message.into(),
    }
}

fn check_label(what: &str, value: &str) -> Result<String, EventError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid_question(format!("{what} must not be blank")));
    }
    if value.chars().count() > MAX_LABEL {
        return Err(invalid_question(format!(
            "{what} must be at most {MAX_LABEL} characters"
        )));
    }
    Ok(value.to_owned())
}

/// Checks a whole question list and returns it with labels and options trimmed.
pub(crate) fn check_questions(questions: Vec<Question>) -> Result<Vec<Question>, EventError> {
    if questions.len() > MAX_QUESTIONS {
        return Err(invalid_question(format!(
            "an event asks at most {MAX_QUESTIONS} questions"
        )));
    }
    let mut ids = BTreeSet::new();
    let mut checked = Vec::with_capacity(questions.len());
    for question in questions {
        let id_ok = !question.id.is_empty()
            && question.id.chars().count() <= MAX_QUESTION_ID
            && question
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !id_ok {
            return Err(invalid_question(format!(
                "question id {:?} must be 1 to {MAX_QUESTION_ID} characters of [a-z0-9_]",
                question.id
            )));
        }
        if !ids.insert(question.id.clone()) {
            return Err(invalid_question(format!(
                "question id {:?} is used twice",
                question.id
            )));
        }
        let label = check_label("a question's label", &question.label)?;
        let options = if question.kind.has_options() {
            check_options(&question.id, question.options)?
        } else if question.options.is_empty() {
            Vec::new()
        } else {
            return Err(invalid_question(format!(
                "question {:?} is not a choice question and takes no options",
                question.id
            )));
        };
        checked.push(Question {
            id: question.id,
            label,
            kind: question.kind,
            options,
            required: question.required,
        });
    }
    Ok(checked)
}

fn check_options(id: &str, options: Vec<String>) -> Result<Vec<String>, EventError> {
    if options.is_empty() || options.len() > MAX_OPTIONS {
        return Err(invalid_question(format!(
            "question {id:?} must offer 1 to {MAX_OPTIONS} options"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut checked = Vec::with_capacity(options.len());
    for option in options {
        let option = check_label("an option", &option)?;
        if !seen.insert(option.clone()) {
            return Err(invalid_question(format!(
                "question {id:?} offers {option:?} twice"
            )));
        }
        checked.push(option);
    }
    Ok(checked)
}

/// Checks `answers` against the event's `questions`: no unknown question, every required one
/// answered, each answer of the right kind. Returns the answers trimmed, blank optional answers
/// dropped.
pub(crate) fn check_answers(
    questions: &[Question],
    answers: Answers,
) -> Result<Answers, EventError> {
    if let Some(unknown) = answers
        .keys()
        .find(|id| !questions.iter().any(|q| &q.id == *id))
    {
        return Err(invalid_answer(unknown, "there is no such question"));
    }
    let mut checked = Answers::new();
    for question in questions {
        let answer = answers
            .get(&question.id)
            .map(|value| check_answer(question, value))
            .transpose()?
            .flatten();
        match answer {
            Some(answer) => {
                checked.insert(question.id.clone(), answer);
            }
            None if question.required => {
                return Err(invalid_answer(&question.id, "an answer is required"));
            }
            None => {}
        }
    }
    Ok(checked)
}

/// One answer, normalised; `None` when it is blank (no answer).
fn check_answer(
    question: &Question,
    value: &AnswerValue,
) -> Result<Option<AnswerValue>, EventError> {
    let id = question.id.as_str();
    let one = |value: &AnswerValue| match value {
        AnswerValue::One(text) => Ok(text.trim().to_owned()),
        AnswerValue::Many(_) => Err(invalid_answer(id, "expects a single value, not a list")),
    };
    match &question.kind {
        QuestionKind::Text => {
            let text = one(value)?;
            if text.chars().count() > MAX_TEXT_ANSWER {
                return Err(invalid_answer(
                    id,
                    format!("must be at most {MAX_TEXT_ANSWER} characters"),
                ));
            }
            Ok((!text.is_empty()).then_some(AnswerValue::One(text)))
        }
        QuestionKind::SingleChoice => {
            let options = &question.options;
            let choice = one(value)?;
            if choice.is_empty() {
                return Ok(None);
            }
            if !options.contains(&choice) {
                return Err(invalid_answer(id, "is not one of the options".to_owned()));
            }
            Ok(Some(AnswerValue::One(choice)))
        }
        QuestionKind::MultipleChoice => {
            let options = &question.options;
            let AnswerValue::Many(choices) = value else {
                return Err(invalid_answer(id, "expects a list of options"));
            };
            let mut seen = BTreeSet::new();
            let mut checked = Vec::with_capacity(choices.len());
            for choice in choices {
                let choice = choice.trim().to_owned();
                if !options.contains(&choice) {
                    return Err(invalid_answer(id, "is not one of the options".to_owned()));
                }
                if !seen.insert(choice.clone()) {
                    return Err(invalid_answer(id, "chooses an option twice".to_owned()));
                }
                checked.push(choice);
            }
            Ok((!checked.is_empty()).then_some(AnswerValue::Many(checked)))
        }
        QuestionKind::Country => {
            let code = one(value)?.to_ascii_uppercase();
            if code.is_empty() {
                return Ok(None);
            }
            if !COUNTRY_CODES.contains(&code.as_str()) {
                return Err(invalid_answer(
                    id,
                    "is not an ISO 3166-1 alpha-2 country code".to_owned(),
                ));
            }
            Ok(Some(AnswerValue::One(code)))
        }
        QuestionKind::AgeRange => {
            let range = one(value)?;
            if range.is_empty() {
                return Ok(None);
            }
            if !AGE_RANGES.contains(&range.as_str()) {
                return Err(invalid_answer(
                    id,
                    format!("must be one of {}", AGE_RANGES.join(", ")),
                ));
            }
            Ok(Some(AnswerValue::One(range)))
        }
    }
}

/// ISO 3166-1 alpha-2: every officially assigned code.
pub const COUNTRY_CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];
