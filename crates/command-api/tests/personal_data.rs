//! Personal data through the engine, on SQLite and Postgres: what reaches the log, the snapshots
//! and the remembered answers is sealed; it reads back as plaintext, and as `[erased]` once its
//! person is erased; a command that would record an erased person's data again is refused
//! without holding up the others.

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{Duration, TimeZone, Utc};
use marquee_auth::{AuthStore, Vault};
use marquee_command_api::CommandState;
use marquee_command_api::access::{Auth, RateLimits};
use marquee_command_api::engine::{
    Answer, CommandContext, CommandMode, Engine, EngineOptions, EventAggregate, UserAggregate,
    VenueAggregate,
};
use marquee_command_api::error::ApiError;
use marquee_domain::event::{
    AnswerValue, Answers, Attendee, Event, EventCommand, EventFact, Question, QuestionKind,
};
use marquee_domain::user::UserCommand;
use marquee_domain::venue::VenueCommand;
use marquee_domain::{
    ERASED, EventId, Money, RegistrationId, TicketCode, TicketTypeId, UserId, VenueId,
};
use marquee_store::{EventStore, StoreOptions, connect_with};
use serde_json::{Value, json};
use uuid::Uuid;

/// Runs each scenario on a fresh SQLite file and on a fresh Postgres database.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = super::Db::sqlite();
                    super::$scenario(&db.url).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = marquee_store::testing::PgTestDb::create().await;
                    super::$scenario(&db.url).await;
                }
            )*
        }
    };
}

on_every_backend!(
    a_reservation_reaches_the_log_sealed_and_reads_back_as_plaintext,
    an_erased_attendee_reads_as_erased_and_the_event_still_decides,
    snapshots_hold_no_plaintext_and_read_back_as_the_folded_state,
    a_remembered_check_in_answer_holds_the_attendee_sealed,
    a_command_for_an_erased_address_is_refused_and_its_batch_goes_on,
    an_account_is_sealed_and_erasing_it_forgets_it_for_good,
    a_running_decider_reads_its_aggregate_again_after_an_erasure,
);

/// A SQLite file in a directory that lives as long as the test.
struct Db {
    url: String,
    _dir: tempfile::TempDir,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("marquee.db").display());
        Db { url, _dir: dir }
    }
}

const ADA: &str = "Ada Lovelace";
const ADA_EMAIL: &str = "ada.lovelace@example.org";
const BOB_EMAIL: &str = "bob.babbage@example.org";
/// Ada's answers to the registration questions: free text and a multiple choice.
const ADA_DIET: &str = "no parsnips, ever";

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0)
        .single()
        .expect("time")
}

/// The log at `url` (snapshots every `snapshot_every` facts, 0: none) and a vault on the same
/// database.
async fn open(url: &str, snapshot_every: u64) -> (Arc<dyn EventStore>, Vault) {
    let options = StoreOptions {
        snapshot_every,
        ..StoreOptions::default()
    };
    let store = connect_with(url, options).await.expect("store");
    let keys = AuthStore::connect(url).await.expect("auth store");
    (store, Vault::new(keys).await.expect("vault"))
}

fn engine(store: &Arc<dyn EventStore>, vault: &Vault, mode: CommandMode) -> Engine {
    let options = EngineOptions {
        mode,
        ..EngineOptions::default()
    };
    Engine::with_options(store.clone(), Arc::new(now), options).with_vault(vault.clone())
}

fn context() -> CommandContext {
    CommandContext {
        correlation_id: Uuid::now_v7(),
        actor: Some("test".into()),
        organization: None,
        idempotency: None,
    }
}

fn ok<F, S>(_: &[F], _: &S) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: json!({}),
    }
}

/// A published event with a free ticket type of `seats` and two questions. Returns the event's
/// stream and the ticket type.
async fn event(engine: &Engine, seats: u32) -> (String, TicketTypeId) {
    let venue_id = VenueId(Uuid::now_v7());
    engine
        .execute::<VenueAggregate>(
            &venue_id.stream(),
            vec![VenueCommand::CreateVenue {
                venue_id,
                name: "Hall".into(),
                city: "Oslo".into(),
                address: None,
                capacity: 1000,
                timezone: "Europe/Oslo".into(),
            }],
            &context(),
            ok,
        )
        .await
        .expect("venue");
    let event_id = EventId(Uuid::now_v7());
    let ticket_type_id = TicketTypeId(Uuid::now_v7());
    let starts = now() + Duration::days(60);
    let setup = vec![
        EventCommand::DraftEvent {
            event_id,
            venue: Some(marquee_domain::event::VenueInfo {
                venue_id,
                capacity: 1000,
            }),
            title: "Analytical engines".into(),
            description: String::new(),
            category: "talk".into(),
            starts_at: starts,
            ends_at: starts + Duration::hours(2),
            timezone: "Europe/Oslo".into(),
            capacity: None,
            max_per_order: None,
        },
        EventCommand::AddTicketType {
            ticket_type_id,
            name: "GA".into(),
            price: Money {
                amount_minor: 0,
                currency: "NOK".into(),
            },
            quantity: seats,
            sales_start: None,
            sales_end: None,
        },
        EventCommand::SetQuestions {
            questions: vec![
                Question {
                    id: "diet".into(),
                    label: "Dietary needs".into(),
                    kind: QuestionKind::Text,
                    options: vec![],
                    required: false,
                },
                Question {
                    id: "talks".into(),
                    label: "Talks".into(),
                    kind: QuestionKind::MultipleChoice,
                    options: vec!["looms".into(), "engines".into()],
                    required: false,
                },
            ],
        },
        EventCommand::Publish,
    ];
    let stream = event_id.stream();
    engine
        .execute::<EventAggregate>(&stream, setup, &context(), ok)
        .await
        .expect("event");
    (stream, ticket_type_id)
}

fn answers() -> Answers {
    [
        ("diet".to_owned(), AnswerValue::One(ADA_DIET.into())),
        (
            "talks".to_owned(),
            AnswerValue::Many(vec!["looms".into(), "engines".into()]),
        ),
    ]
    .into()
}

fn reserve(
    ticket_type_id: TicketTypeId,
    name: &str,
    email: &str,
    answers: Answers,
) -> EventCommand {
    let registration_id = RegistrationId(Uuid::now_v7());
    EventCommand::Reserve {
        registration_id,
        ticket_type_id,
        attendee: Attendee {
            name: name.into(),
            email: email.into(),
        },
        quantity: 1,
        ticket_codes: vec![TicketCode(Uuid::new_v4().simple().to_string())],
        answers,
    }
}

/// Reserves a seat for Ada with her answers; the registration's id.
async fn reserve_for_ada(
    engine: &Engine,
    stream: &str,
    ticket_type_id: TicketTypeId,
) -> RegistrationId {
    let command = reserve(ticket_type_id, ADA, ADA_EMAIL, answers());
    let EventCommand::Reserve {
        registration_id, ..
    } = &command
    else {
        unreachable!("a reservation")
    };
    let registration_id = *registration_id;
    engine
        .execute::<EventAggregate>(stream, vec![command], &context(), ok)
        .await
        .expect("reserved");
    registration_id
}

/// Everything `stream` holds in the log, as stored, as one text.
async fn stored_text(store: &Arc<dyn EventStore>, stream: &str) -> String {
    let facts = store.read_stream(stream, 0, 10_000).await.expect("read");
    facts
        .iter()
        .map(|fact| fact.data.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn assert_holds_none_of(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !text.to_lowercase().contains(&secret.to_lowercase()),
            "`{secret}` in plain text: {text}"
        );
    }
}

fn ada_of(event: &Event) -> &marquee_domain::event::Registration {
    event
        .registrations
        .values()
        .find(|r| r.attendee.name == ADA || r.attendee.name == ERASED)
        .expect("Ada's registration")
}

async fn a_reservation_reaches_the_log_sealed_and_reads_back_as_plaintext(url: &str) {
    let (store, vault) = open(url, 0).await;
    let engine = engine(&store, &vault, CommandMode::Pipeline);
    let (stream, ticket_type_id) = event(&engine, 10).await;
    reserve_for_ada(&engine, &stream, ticket_type_id).await;

    let stored = stored_text(&store, &stream).await;
    assert_holds_none_of(&stored, &[ADA, ADA_EMAIL, ADA_DIET]);
    assert!(
        stored.contains("Analytical engines"),
        "only personal data is sealed"
    );
    // Every answer, each choice of a multiple choice too, is sealed for Ada.
    let sealed_for_ada = format!("sealed:v1:{}:", vault.person_id(ADA_EMAIL));
    let facts = store.read_stream(&stream, 0, 100).await.expect("read");
    let given = facts
        .iter()
        .find(|fact| fact.fact_type == "AnswersGiven")
        .expect("answers given");
    let talks = given.data["answers"]["talks"].as_array().expect("a list");
    let diet = &given.data["answers"]["diet"];
    for value in talks.iter().chain([diet]) {
        let value = value.as_str().expect("text");
        assert!(value.starts_with(&sealed_for_ada), "{value}");
    }

    // Another engine (no cache, no decider) reads it back from the log.
    let reader = self::engine(&store, &vault, CommandMode::Naive);
    let event = reader
        .load::<EventAggregate>(&stream)
        .await
        .expect("load")
        .state;
    let registration = ada_of(&event);
    assert_eq!(registration.attendee.name, ADA);
    assert_eq!(registration.attendee.email, ADA_EMAIL);
    assert_eq!(registration.answers, answers());
    assert_eq!(event.seats_of(ADA_EMAIL), 1);
}

async fn an_erased_attendee_reads_as_erased_and_the_event_still_decides(url: &str) {
    let (store, vault) = open(url, 0).await;
    let engine = engine(&store, &vault, CommandMode::Pipeline);
    let (stream, ticket_type_id) = event(&engine, 10).await;
    let registration_id = reserve_for_ada(&engine, &stream, ticket_type_id).await;

    vault
        .erase(&vault.person_id(ADA_EMAIL))
        .await
        .expect("erased");
    let after = self::engine(&store, &vault, CommandMode::Pipeline);
    let event = after
        .load::<EventAggregate>(&stream)
        .await
        .expect("load")
        .state;
    let registration = &event.registrations[&registration_id];
    assert_eq!(registration.attendee.name, ERASED);
    assert_eq!(registration.attendee.email, ERASED);
    assert_eq!(
        registration.answers,
        Answers::from([
            ("diet".to_owned(), AnswerValue::One(ERASED.into())),
            (
                "talks".to_owned(),
                AnswerValue::Many(vec![ERASED.into(), ERASED.into()])
            ),
        ])
    );
    assert_eq!(
        event.seats_of(ADA_EMAIL),
        0,
        "nobody can be told apart any more"
    );

    // The event goes on deciding: others reserve, the erased registration can be cancelled.
    after
        .execute::<EventAggregate>(
            &stream,
            vec![reserve(ticket_type_id, "Bob", BOB_EMAIL, Answers::new())],
            &context(),
            ok,
        )
        .await
        .expect("Bob reserves");
    after
        .execute::<EventAggregate>(
            &stream,
            vec![EventCommand::CancelRegistration { registration_id }],
            &context(),
            ok,
        )
        .await
        .expect("the erased registration is cancelled");
    let event = after
        .load::<EventAggregate>(&stream)
        .await
        .expect("load")
        .state;
    assert_eq!(event.confirmed(), 1);
}

async fn snapshots_hold_no_plaintext_and_read_back_as_the_folded_state(url: &str) {
    let (store, vault) = open(url, 3).await;
    let engine = engine(&store, &vault, CommandMode::Naive);
    let (stream, ticket_type_id) = event(&engine, 10).await;
    reserve_for_ada(&engine, &stream, ticket_type_id).await;
    for n in 0..4 {
        engine
            .execute::<EventAggregate>(
                &stream,
                vec![reserve(
                    ticket_type_id,
                    &format!("Guest Number{n}"),
                    &format!("guest.number{n}@example.org"),
                    Answers::new(),
                )],
                &context(),
                ok,
            )
            .await
            .expect("reserved");
    }
    let snapshot = store
        .load_snapshot(&stream)
        .await
        .expect("read")
        .expect("a snapshot was taken");
    let text = snapshot.state.to_string();
    assert_holds_none_of(
        &text,
        &[
            ADA,
            ADA_EMAIL,
            ADA_DIET,
            "Guest Number",
            "guest.number",
            "seats_by_attendee",
        ],
    );
    assert!(text.contains("sealed:v1:"), "{text}");

    let from_snapshot = engine.load::<EventAggregate>(&stream).await.expect("load");
    let (plain_store, _) = open(url, 0).await;
    let folded = self::engine(&plain_store, &vault, CommandMode::Naive)
        .load::<EventAggregate>(&stream)
        .await
        .expect("load");
    assert_eq!(from_snapshot.state, folded.state);
    assert_eq!(from_snapshot.revision, folded.revision);
    assert_eq!(ada_of(&from_snapshot.state).attendee.name, ADA);
    assert_eq!(from_snapshot.state.seats_of(ADA_EMAIL), 1);

    vault
        .erase(&vault.person_id(ADA_EMAIL))
        .await
        .expect("erased");
    let erased = self::engine(&store, &vault, CommandMode::Naive)
        .load::<EventAggregate>(&stream)
        .await
        .expect("load")
        .state;
    assert_eq!(ada_of(&erased).attendee.email, ERASED);
    assert_eq!(
        erased
            .registrations
            .values()
            .filter(|r| r.attendee.email.starts_with("guest.number"))
            .count(),
        4,
        "only Ada is erased"
    );
}

async fn a_remembered_check_in_answer_holds_the_attendee_sealed(url: &str) {
    let (store, vault) = open(url, 0).await;
    let engine = engine(&store, &vault, CommandMode::Pipeline);
    let (stream, ticket_type_id) = event(&engine, 10).await;
    let registration_id = reserve_for_ada(&engine, &stream, ticket_type_id).await;
    let event = engine
        .load::<EventAggregate>(&stream)
        .await
        .expect("load")
        .state;
    let code = event.registrations[&registration_id].ticket_codes[0].clone();

    let key = format!("test:{}", Uuid::new_v4());
    let remembering = CommandContext {
        idempotency: Some((key.clone(), "request-hash".into())),
        ..context()
    };
    let (_, answer) = engine
        .execute::<EventAggregate>(
            &stream,
            vec![EventCommand::CheckIn {
                ticket_code: code,
                nonce: "door-1".into(),
                scanned_at: None,
            }],
            &remembering,
            move |_: &[EventFact], event: &Event| Answer {
                status: StatusCode::OK,
                body: json!({
                    "result": "ok",
                    "attendee": { "name": event.registrations[&registration_id].attendee.name },
                }),
            },
        )
        .await
        .expect("checked in");
    assert_eq!(
        answer.body["attendee"]["name"], ADA,
        "the door sees the name"
    );

    let remembered = store
        .idempotency_get(&key)
        .await
        .expect("read")
        .expect("remembered");
    assert_holds_none_of(&remembered.body.to_string(), &[ADA]);
    let mut replayed = remembered.body.clone();
    engine.open_personal(&mut replayed).await.expect("opened");
    assert_eq!(replayed["attendee"]["name"], ADA);

    vault
        .erase(&vault.person_id(ADA_EMAIL))
        .await
        .expect("erased");
    let mut replayed = remembered.body;
    engine.open_personal(&mut replayed).await.expect("opened");
    assert_eq!(replayed["attendee"]["name"], ERASED);
}

async fn a_command_for_an_erased_address_is_refused_and_its_batch_goes_on(url: &str) {
    let (store, vault) = open(url, 0).await;
    let setup = engine(&store, &vault, CommandMode::Pipeline);
    let (stream, ticket_type_id) = event(&setup, 10).await;
    vault
        .erase(&vault.person_id(BOB_EMAIL))
        .await
        .expect("erased");

    let context = context();
    for mode in [CommandMode::Pipeline, CommandMode::Naive] {
        let engine = self::engine(&store, &vault, mode);
        let attempts = [
            ("Cy", "cy@example.org"),
            ("Bob", BOB_EMAIL),
            ("Dee", "dee@example.org"),
        ]
        .map(|(name, email)| {
            engine.execute::<EventAggregate>(
                &stream,
                vec![reserve(ticket_type_id, name, email, Answers::new())],
                &context,
                ok,
            )
        });
        let [cy, bob, dee] = futures::future::join_all(attempts)
            .await
            .try_into()
            .unwrap_or_else(|_| unreachable!("three answers"));
        assert!(matches!(bob, Err(ApiError::PersonErased)), "{mode:?}");
        assert!(cy.is_ok(), "{mode:?}: {:?}", cy.err());
        assert!(dee.is_ok(), "{mode:?}: {:?}", dee.err());
    }
    let event = setup
        .load::<EventAggregate>(&stream)
        .await
        .expect("load")
        .state;
    assert_eq!(event.confirmed(), 4, "Cy and Dee, twice each");
    assert!(
        event
            .registrations
            .values()
            .all(|r| r.attendee.email != BOB_EMAIL)
    );
}

async fn an_account_is_sealed_and_erasing_it_forgets_it_for_good(url: &str) {
    let (store, _) = open(url, 0).await;
    let auth = Auth::connect(url, store.clone(), RateLimits::default())
        .await
        .expect("auth");
    let state = CommandState::with_clock(store.clone(), Arc::new(auth), Arc::new(now));
    let password = marquee_auth::Password::new("a long and dull passphrase".to_owned());
    let user_id: UserId = marquee_command_api::accounts::open_account(
        &state,
        &context(),
        ADA_EMAIL,
        &password,
        ADA,
        None,
    )
    .await
    .expect("signed up");
    state
        .engine
        .execute::<UserAggregate>(
            &user_id.stream(),
            vec![UserCommand::ChangeProfile {
                name: Some("Ada King".into()),
                locale: None,
            }],
            &context(),
            ok,
        )
        .await
        .expect("renamed");
    let stored = stored_text(&store, &user_id.stream()).await;
    assert_holds_none_of(&stored, &[ADA, ADA_EMAIL, "Ada King"]);
    let user = state
        .engine
        .load::<UserAggregate>(&user_id.stream())
        .await
        .expect("load")
        .state;
    assert_eq!(
        (user.name.as_str(), user.email.as_str()),
        ("Ada King", ADA_EMAIL)
    );

    marquee_command_api::accounts::erase_account(&state, &context(), user_id, ADA_EMAIL)
        .await
        .expect("erased");
    let facts = store
        .read_stream(&user_id.stream(), 0, 100)
        .await
        .expect("read");
    let erased: Value = facts
        .iter()
        .find(|fact| fact.fact_type == "UserErased")
        .map(|fact| fact.data.clone())
        .expect("UserErased");
    assert_eq!(
        erased["person_id"],
        state.auth.vault.person_id(ADA_EMAIL),
        "names whose data went"
    );
    let user = state
        .engine
        .load::<UserAggregate>(&user_id.stream())
        .await
        .expect("load")
        .state;
    assert!(user.erased);
    assert_eq!((user.name.as_str(), user.email.as_str()), (ERASED, ERASED));

    let again = marquee_command_api::accounts::open_account(
        &state,
        &context(),
        ADA_EMAIL,
        &password,
        ADA,
        None,
    )
    .await;
    assert!(
        matches!(again, Err(ApiError::PersonErased)),
        "an erased address cannot sign up again: {:?}",
        again.err()
    );
}

async fn a_running_decider_reads_its_aggregate_again_after_an_erasure(url: &str) {
    let (store, vault) = open(url, 0).await;
    // A decider that would keep its aggregate for a minute without commands.
    let options = EngineOptions {
        idle: std::time::Duration::from_secs(60),
        ..EngineOptions::default()
    };
    let engine =
        Engine::with_options(store.clone(), Arc::new(now), options).with_vault(vault.clone());
    let (stream, ticket_type_id) = event(&engine, 10).await;
    let registration_id = reserve_for_ada(&engine, &stream, ticket_type_id).await;
    let name_on_check_in = |nonce: &str| {
        let event = stream.clone();
        let nonce = nonce.to_owned();
        let engine = &engine;
        async move {
            let state = engine
                .load::<EventAggregate>(&event)
                .await
                .expect("load")
                .state;
            let code = state.registrations[&registration_id].ticket_codes[0].clone();
            let (_, answer) = engine
                .execute::<EventAggregate>(
                    &event,
                    vec![EventCommand::CheckIn {
                        ticket_code: code,
                        nonce,
                        scanned_at: None,
                    }],
                    &context(),
                    move |_: &[EventFact], event: &Event| Answer {
                        status: StatusCode::OK,
                        body: json!({ "name": event.registrations[&registration_id].attendee.name }),
                    },
                )
                .await
                .expect("scanned");
            answer.body["name"].clone()
        }
    };
    assert_eq!(name_on_check_in("door-1").await, ADA);

    vault
        .erase(&vault.person_id(ADA_EMAIL))
        .await
        .expect("erased");
    engine.forget_personal_data().await;
    // The same nonce again is the same scan: no new fact, the answer from the decider's state.
    assert_eq!(name_on_check_in("door-1").await, ERASED);
}
