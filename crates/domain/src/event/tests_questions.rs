//! Rules of registration questions and the answers to them, one sentence per test.

use super::questions::{
    AGE_RANGES, MAX_LABEL, MAX_OPTIONS, MAX_QUESTION_ID, MAX_QUESTIONS, MAX_TEXT_ANSWER,
};
use super::tests_vocabulary::*;
// The vocabulary's words win over the event module's private functions of the same name.
use super::tests_vocabulary::on_sale;
use super::*;
use crate::testing::{given, now};

fn question(id: &str, kind: QuestionKind, options: &[&str], required: bool) -> Question {
    Question {
        id: id.into(),
        label: format!("About {id}"),
        kind,
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        required,
    }
}

/// A badge name (optional text), a diet (required single choice), topics (optional multiple
/// choice), a country and an age range (both optional).
fn questions() -> Vec<Question> {
    vec![
        question("badge", QuestionKind::Text, &[], false),
        question(
            "diet",
            QuestionKind::SingleChoice,
            &["vegan", "vegetarian", "anything"],
            true,
        ),
        question(
            "topics",
            QuestionKind::MultipleChoice,
            &["rust", "wasm", "databases"],
            false,
        ),
        question("country", QuestionKind::Country, &[], false),
        question("age", QuestionKind::AgeRange, &[], false),
    ]
}

fn set_questions(questions: Vec<Question>) -> EventCommand {
    EventCommand::SetQuestions { questions }
}

fn questions_set(questions: Vec<Question>) -> EventFact {
    EventFact::RegistrationQuestionsSet { questions }
}

/// [`on_sale`] asking [`questions`].
fn asking() -> Vec<EventFact> {
    then_also(on_sale(50, 10), [questions_set(questions())])
}

fn one(value: &str) -> AnswerValue {
    AnswerValue::One(value.into())
}

fn many(values: &[&str]) -> AnswerValue {
    AnswerValue::Many(values.iter().map(|v| (*v).to_owned()).collect())
}

fn answers(pairs: &[(&str, AnswerValue)]) -> Answers {
    pairs
        .iter()
        .map(|(id, value)| ((*id).to_owned(), value.clone()))
        .collect()
}

/// Ada reserves one free seat with `answers`.
fn reserve_answering(answers: Answers) -> EventCommand {
    reserve_answering_for(free(), answers)
}

fn reserve_answering_for(ticket_type_id: TicketTypeId, answers: Answers) -> EventCommand {
    EventCommand::Reserve {
        registration_id: reg(1),
        ticket_type_id,
        attendee: ada(),
        quantity: 1,
        ticket_codes: codes(1, 1),
        answers,
    }
}

fn answers_given(answers: Answers) -> EventFact {
    EventFact::AnswersGiven {
        registration_id: reg(1),
        answers,
    }
}

/// The vegan diet, the one answer [`questions`] requires.
fn vegan() -> (&'static str, AnswerValue) {
    ("diet", one("vegan"))
}

fn is_invalid_answer(question: &'static str) -> impl FnOnce(&EventError) -> bool {
    move |error| matches!(error, EventError::InvalidAnswer { question: q, .. } if q == question)
}

fn is_invalid_answer_saying(
    question: &'static str,
    message: &'static str,
) -> impl FnOnce(&EventError) -> bool {
    move |error| {
        matches!(error, EventError::InvalidAnswer { question: q, message: m }
            if q == question && m.contains(message))
    }
}

/// Asserts that answering [`questions`] with `vegan()` and `answer` is refused for `question`.
#[track_caller]
fn refused(question_id: &'static str, answer: AnswerValue) {
    given(asking())
        .when(reserve_answering(answers(&[
            vegan(),
            (question_id, answer),
        ])))
        .then_err_matches(is_invalid_answer(question_id));
}

// ---- setting questions ------------------------------------------------------------------------

#[test]
fn setting_questions_records_them_with_labels_and_options_trimmed() {
    let mut sloppy = questions();
    sloppy[0].label = "  Name on your badge ".into();
    sloppy[1].options = vec![" vegan".into(), "vegetarian ".into(), "anything".into()];
    let mut tidy = questions();
    tidy[0].label = "Name on your badge".into();
    given(on_sale(50, 10))
        .when(set_questions(sloppy))
        .then([questions_set(tidy)]);
}

#[test]
fn set_questions_show_in_the_event() {
    let state = given(on_sale(50, 10))
        .when(set_questions(questions()))
        .then_state();
    assert_eq!(state.questions, questions());
}

#[test]
fn questions_can_be_set_on_a_draft() {
    given([drafted(CAPACITY)])
        .when(set_questions(questions()))
        .then([questions_set(questions())]);
}

#[test]
fn setting_the_questions_already_asked_records_nothing() {
    given(asking())
        .when(set_questions(questions()))
        .then_nothing();
    given(on_sale(50, 10))
        .when(set_questions(vec![]))
        .then_nothing();
}

#[test]
fn setting_no_questions_stops_asking() {
    given(asking())
        .when(set_questions(vec![]))
        .then([questions_set(vec![])]);
}

#[test]
fn replacing_the_questions_keeps_the_answers_already_given() {
    let history = then_also(
        asking(),
        [confirmed(1, 1), answers_given(answers(&[vegan()]))],
    );
    let state = given(history)
        .when(set_questions(vec![question(
            "shirt",
            QuestionKind::Text,
            &[],
            true,
        )]))
        .then_state();
    assert_eq!(state.registrations[&reg(1)].answers, answers(&[vegan()]));
}

#[test]
fn setting_the_questions_of_a_cancelled_event_is_refused() {
    given(then_also(on_sale(50, 10), [event_cancelled()]))
        .when(set_questions(questions()))
        .then_err_matches(is_invalid_state);
}

#[test]
fn a_question_id_that_is_not_lower_case_letters_digits_and_underscores_is_refused() {
    let too_long = "q".repeat(MAX_QUESTION_ID + 1);
    for id in ["", "Diet", "diet-x", "dïet", "diet ", too_long.as_str()] {
        given(on_sale(50, 10))
            .when(set_questions(vec![question(
                id,
                QuestionKind::Text,
                &[],
                false,
            )]))
            .then_err_matches(is_invalid("questions"));
    }
}

#[test]
fn a_question_id_of_the_maximum_length_is_accepted() {
    let id = format!("{}_9", "q".repeat(MAX_QUESTION_ID - 2));
    let asked = vec![question(&id, QuestionKind::Text, &[], false)];
    given(on_sale(50, 10))
        .when(set_questions(asked.clone()))
        .then([questions_set(asked)]);
}

#[test]
fn two_questions_with_one_id_are_refused() {
    given(on_sale(50, 10))
        .when(set_questions(vec![
            question("diet", QuestionKind::Text, &[], false),
            question("diet", QuestionKind::Country, &[], false),
        ]))
        .then_err_matches(is_invalid("questions"));
}

#[test]
fn a_blank_or_overlong_label_is_refused() {
    for label in ["", "  ", &"x".repeat(MAX_LABEL + 1)] {
        let mut asked = question("badge", QuestionKind::Text, &[], false);
        asked.label = label.into();
        given(on_sale(50, 10))
            .when(set_questions(vec![asked]))
            .then_err_matches(is_invalid("questions"));
    }
}

#[test]
fn a_choice_question_without_options_is_refused() {
    for kind in [QuestionKind::SingleChoice, QuestionKind::MultipleChoice] {
        given(on_sale(50, 10))
            .when(set_questions(vec![question("pick", kind, &[], false)]))
            .then_err_matches(is_invalid("questions"));
    }
}

#[test]
fn a_choice_question_with_too_many_options_is_refused() {
    let options: Vec<String> = (0..=MAX_OPTIONS).map(|i| format!("option {i}")).collect();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    given(on_sale(50, 10))
        .when(set_questions(vec![question(
            "pick",
            QuestionKind::SingleChoice,
            &options,
            false,
        )]))
        .then_err_matches(is_invalid("questions"));
    given(on_sale(50, 10))
        .when(set_questions(vec![question(
            "pick",
            QuestionKind::SingleChoice,
            &options[..MAX_OPTIONS],
            false,
        )]))
        .then_facts();
}

#[test]
fn a_choice_question_offering_an_option_twice_or_a_blank_option_is_refused() {
    for options in [&["a", " a "][..], &["a", " "][..]] {
        given(on_sale(50, 10))
            .when(set_questions(vec![question(
                "pick",
                QuestionKind::MultipleChoice,
                options,
                false,
            )]))
            .then_err_matches(is_invalid("questions"));
    }
}

#[test]
fn options_on_a_question_that_is_not_a_choice_are_refused() {
    for kind in [
        QuestionKind::Text,
        QuestionKind::Country,
        QuestionKind::AgeRange,
    ] {
        given(on_sale(50, 10))
            .when(set_questions(vec![question("q", kind, &["a"], false)]))
            .then_err_matches(is_invalid("questions"));
    }
}

#[test]
fn more_questions_than_the_maximum_are_refused() {
    let many_questions = |n: usize| -> Vec<Question> {
        (0..n)
            .map(|i| question(&format!("q{i}"), QuestionKind::Text, &[], false))
            .collect()
    };
    given(on_sale(50, 10))
        .when(set_questions(many_questions(MAX_QUESTIONS + 1)))
        .then_err_matches(is_invalid("questions"));
    given(on_sale(50, 10))
        .when(set_questions(many_questions(MAX_QUESTIONS)))
        .then_facts();
}

// ---- answers ----------------------------------------------------------------------------------

#[test]
fn answers_are_recorded_after_the_registration_normalised() {
    given(asking())
        .when(reserve_answering(answers(&[
            ("badge", one("  Ada  ")),
            ("diet", one(" vegan ")),
            ("topics", many(&[" rust", "databases"])),
            ("country", one("de")),
            ("age", one("25_34")),
        ])))
        .then([
            confirmed(1, 1),
            answers_given(answers(&[
                ("badge", one("Ada")),
                ("diet", one("vegan")),
                ("topics", many(&["rust", "databases"])),
                ("country", one("DE")),
                ("age", one("25_34")),
            ])),
        ]);
}

#[test]
fn answers_to_a_paid_reservation_follow_the_hold() {
    given(asking())
        .when(reserve_answering_for(paid(), answers(&[vegan()])))
        .then([held(1, 1), answers_given(answers(&[vegan()]))]);
}

#[test]
fn answers_land_on_the_registration() {
    let state = given(asking())
        .when(reserve_answering(answers(&[
            vegan(),
            ("country", one("fr")),
        ])))
        .then_state();
    assert_eq!(
        state.registrations[&reg(1)].answers,
        answers(&[vegan(), ("country", one("FR"))])
    );
}

#[test]
fn blank_answers_to_optional_questions_are_dropped() {
    given(asking())
        .when(reserve_answering(answers(&[
            vegan(),
            ("badge", one("   ")),
            ("topics", many(&[])),
            ("country", one("")),
            ("age", one(" ")),
        ])))
        .then([confirmed(1, 1), answers_given(answers(&[vegan()]))]);
}

#[test]
fn no_answers_to_optional_questions_record_no_answers() {
    let history = then_also(
        on_sale(50, 10),
        [questions_set(vec![question(
            "badge",
            QuestionKind::Text,
            &[],
            false,
        )])],
    );
    given(history)
        .when(reserve_answering(Answers::new()))
        .then([confirmed(1, 1)]);
}

#[test]
fn a_required_question_left_unanswered_or_blank_is_refused() {
    for given_answers in [answers(&[]), answers(&[("diet", one("  "))])] {
        given(asking())
            .when(reserve_answering(given_answers))
            .then_err_matches(is_invalid_answer_saying("diet", "required"));
    }
}

#[test]
fn a_required_multiple_choice_needs_at_least_one_option() {
    let history = then_also(
        on_sale(50, 10),
        [questions_set(vec![question(
            "topics",
            QuestionKind::MultipleChoice,
            &["rust", "wasm"],
            true,
        )])],
    );
    given(history.clone())
        .when(reserve_answering(answers(&[("topics", many(&[]))])))
        .then_err_matches(is_invalid_answer_saying("topics", "required"));
    given(history)
        .when(reserve_answering(answers(&[("topics", many(&["wasm"]))])))
        .then([
            confirmed(1, 1),
            answers_given(answers(&[("topics", many(&["wasm"]))])),
        ]);
}

#[test]
fn an_answer_to_a_question_not_asked_is_refused() {
    given(asking())
        .when(reserve_answering(answers(&[
            vegan(),
            ("shoe_size", one("42")),
        ])))
        .then_err_matches(is_invalid_answer_saying("shoe_size", "no such question"));
    given(on_sale(50, 10))
        .when(reserve_answering(answers(&[vegan()])))
        .then_err_matches(is_invalid_answer("diet"));
}

#[test]
fn a_text_answer_must_be_one_value_of_at_most_a_thousand_characters() {
    refused("badge", one(&"x".repeat(MAX_TEXT_ANSWER + 1)));
    refused("badge", many(&["Ada"]));
    given(asking())
        .when(reserve_answering(answers(&[
            vegan(),
            ("badge", one(&"é".repeat(MAX_TEXT_ANSWER))),
        ])))
        .then_facts();
}

#[test]
fn a_single_choice_answer_must_be_one_of_the_options_exactly() {
    for answer in [one("carnivore"), one("Vegan"), many(&["vegan"])] {
        given(asking())
            .when(reserve_answering(answers(&[("diet", answer)])))
            .then_err_matches(is_invalid_answer("diet"));
    }
}

#[test]
fn a_multiple_choice_answer_must_be_a_list_of_distinct_options() {
    refused("topics", many(&["rust", "cobol"]));
    refused("topics", many(&["rust", " rust"]));
    refused("topics", one("rust"));
}

#[test]
fn a_country_answer_must_be_an_iso_country_code() {
    for answer in [one("XX"), one("Germany"), one("D"), many(&["DE"])] {
        refused("country", answer);
    }
}

#[test]
fn a_country_code_is_accepted_in_any_case_and_recorded_in_upper_case() {
    given(asking())
        .when(reserve_answering(answers(&[
            vegan(),
            ("country", one(" gB ")),
        ])))
        .then([
            confirmed(1, 1),
            answers_given(answers(&[vegan(), ("country", one("GB"))])),
        ]);
}

#[test]
fn an_age_range_answer_must_be_one_of_the_ranges() {
    for range in AGE_RANGES {
        given(asking())
            .when(reserve_answering(answers(&[vegan(), ("age", one(range))])))
            .then([
                confirmed(1, 1),
                answers_given(answers(&[vegan(), ("age", one(range))])),
            ]);
    }
    for answer in [one("30_40"), one("65+"), one("UNDER_18"), many(&["18_24"])] {
        refused("age", answer);
    }
}

#[test]
fn joining_the_waitlist_checks_and_keeps_the_answers() {
    let history = then_also(asking(), [confirmed_for(9, 50, dee())]);
    given(history.clone())
        .when(EventCommand::JoinWaitlist {
            entry_id: entry(1),
            ticket_type_id: free(),
            attendee: bob(),
            quantity: 1,
            answers: answers(&[("country", one("se"))]),
        })
        .then_err_matches(is_invalid_answer_saying("diet", "required"));
    given(history)
        .when(EventCommand::JoinWaitlist {
            entry_id: entry(1),
            ticket_type_id: free(),
            attendee: bob(),
            quantity: 1,
            answers: answers(&[(" vegan", one("x"))]),
        })
        .then_err_matches(is_invalid_answer(" vegan"));
    given(then_also(asking(), [confirmed_for(9, 50, dee())]))
        .when(EventCommand::JoinWaitlist {
            entry_id: entry(1),
            ticket_type_id: free(),
            attendee: bob(),
            quantity: 1,
            answers: answers(&[vegan(), ("country", one("se"))]),
        })
        .then([EventFact::WaitlistJoined {
            entry_id: entry(1),
            ticket_type_id: free(),
            attendee: bob(),
            quantity: 1,
            answers: answers(&[vegan(), ("country", one("SE"))]),
            joined_at: now(),
        }]);
}

#[test]
fn invalid_answers_are_reported_before_seats_run_out() {
    let history = then_also(asking(), [confirmed_for(9, 50, dee())]);
    given(history)
        .when(reserve_answering(answers(&[])))
        .then_err_matches(is_invalid_answer("diet"));
}
