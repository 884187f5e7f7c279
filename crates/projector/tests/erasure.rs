//! Sealed personal data in the read models, on a SQLite file and on Postgres: the projector
//! opens it, records whose it is, shows the person as `[erased]` as soon as `UserErased` is
//! applied (her answers leave the analytics counts too), and a rebuild then gives exactly the
//! same tables.

#[allow(
    dead_code,
    reason = "this binary uses the builders and the backends, not the projector scenarios"
)]
mod common;

use std::sync::Arc;

use common::{Backend, append, project_until, published_event};
use marquee_auth::{AuthStore, Vault};
use marquee_domain::event::{AnswerValue, Answers, Attendee, EventFact, Question, QuestionKind};
use marquee_domain::user::UserFact;
use marquee_domain::{ERASED, RegistrationId, TicketCode, UserId, WaitlistEntryId};
use marquee_projector::{READ_MODEL_TABLES, ReadModels, RebuildOptions};
use marquee_store::EventStore;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::sqlite_file().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::postgres().await).await;
                }
            )*
        }
    };
}

on_every_backend!(
    the_guest_list_shows_sealed_attendees_opened_and_whose_they_are,
    an_erased_person_leaves_the_read_models_at_once_and_a_rebuild_agrees,
);

const ADA: &str = "Ada Lovelace";
const ADA_EMAIL: &str = "ada.lovelace@example.org";
const ADA_DIET: &str = "no parsnips, ever";
const BOB: &str = "Bob Babbage";
const BOB_EMAIL: &str = "bob.babbage@example.org";

/// What the command side writes: attendee, answers and waitlist place sealed for their person.
struct Sealed {
    vault: Vault,
    ada: String,
}

impl Sealed {
    async fn new(backend: &Backend) -> Sealed {
        let keys = AuthStore::connect(backend.read_url())
            .await
            .expect("auth store");
        let vault = Vault::new(keys).await.expect("vault");
        let ada = vault.person_id(ADA_EMAIL);
        Sealed { vault, ada }
    }

    async fn seal(&self, email: &str, text: &str) -> String {
        self.vault
            .seal(&self.vault.person_id(email), text)
            .await
            .expect("sealed")
    }

    async fn attendee(&self, name: &str, email: &str) -> Attendee {
        Attendee {
            name: self.seal(email, name).await,
            email: self.seal(email, email).await,
        }
    }
}

/// Ada's free registration with her answers, her waitlist place, Bob's registration (sealed
/// too) and Carol's, written before sealing existed (plaintext). Returns Ada's registration
/// and entry and the last position.
async fn guests(
    store: &Arc<dyn EventStore>,
    sealed: &Sealed,
) -> (RegistrationId, WaitlistEntryId, u64) {
    let f = published_event(store).await;
    let (ada, bob, carol) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let entry = WaitlistEntryId(Uuid::now_v7());
    let confirmed = |registration_id, attendee| EventFact::RegistrationConfirmed {
        registration_id,
        ticket_type_id: f.b,
        attendee,
        quantity: 1,
        ticket_codes: vec![TicketCode(Uuid::new_v4().simple().to_string())],
        confirmed_at: "2026-02-02T09:00:00Z".parse().expect("time"),
    };
    let answers: Answers = [
        (
            "diet".to_owned(),
            AnswerValue::One(sealed.seal(ADA_EMAIL, ADA_DIET).await),
        ),
        (
            "talks".to_owned(),
            AnswerValue::Many(vec![
                sealed.seal(ADA_EMAIL, "looms").await,
                sealed.seal(ADA_EMAIL, "engines").await,
            ]),
        ),
    ]
    .into();
    let question = |id: &str, kind, options: &[&str]| Question {
        id: id.to_owned(),
        label: id.to_owned(),
        kind,
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        required: false,
    };
    let last = append(
        store,
        &f.event.stream(),
        &[
            // Analytics counts the talks (a closed question), never the diet (free text).
            EventFact::RegistrationQuestionsSet {
                questions: vec![
                    question("diet", QuestionKind::Text, &[]),
                    question("talks", QuestionKind::MultipleChoice, &["looms", "engines"]),
                ],
            },
            confirmed(ada, sealed.attendee(ADA, ADA_EMAIL).await),
            EventFact::AnswersGiven {
                registration_id: ada,
                answers,
            },
            confirmed(bob, sealed.attendee(BOB, BOB_EMAIL).await),
            EventFact::AnswersGiven {
                registration_id: bob,
                answers: [(
                    "talks".to_owned(),
                    AnswerValue::Many(vec![sealed.seal(BOB_EMAIL, "looms").await]),
                )]
                .into(),
            },
            confirmed(
                carol,
                Attendee {
                    name: "Carol Plain".into(),
                    email: "carol@example.org".into(),
                },
            ),
            EventFact::WaitlistJoined {
                entry_id: entry,
                ticket_type_id: f.a,
                attendee: sealed.attendee(ADA, ADA_EMAIL).await,
                quantity: 1,
                answers: Answers::new(),
                joined_at: "2026-02-02T10:00:00Z".parse().expect("time"),
            },
        ],
    )
    .await;
    (ada, entry, last)
}

/// `(name, email, answers, person id)` of a registration.
async fn registration(
    read_url: &str,
    id: RegistrationId,
) -> (String, String, String, Option<String>) {
    let pool = pool(read_url).await;
    let row = sqlx::query(
        "SELECT attendee_name, attendee_email, answers, person_id FROM registrations \
         WHERE registration_id = $1",
    )
    .bind(id.0.to_string())
    .fetch_one(&pool)
    .await
    .expect("registration row");
    (
        row.get("attendee_name"),
        row.get("attendee_email"),
        row.get("answers"),
        row.get("person_id"),
    )
}

/// `(name, email, person id)` of a waitlist entry.
async fn entry(read_url: &str, id: WaitlistEntryId) -> (String, String, Option<String>) {
    let pool = pool(read_url).await;
    let row = sqlx::query(
        "SELECT attendee_name, attendee_email, person_id FROM waitlist_entries \
         WHERE entry_id = $1",
    )
    .bind(id.0.to_string())
    .fetch_one(&pool)
    .await
    .expect("entry row");
    (
        row.get("attendee_name"),
        row.get("attendee_email"),
        row.get("person_id"),
    )
}

/// `(answer, registrations)` of the talks question, by answer.
async fn talks(read_url: &str) -> Vec<(String, i64)> {
    let pool = pool(read_url).await;
    let rows = sqlx::query(
        "SELECT answer, registrations FROM analytics_answers WHERE question_id = 'talks' \
         ORDER BY answer",
    )
    .fetch_all(&pool)
    .await
    .expect("answers");
    rows.iter()
        .map(|row| {
            (
                row.try_get("answer").expect("answer"),
                row.try_get("registrations").expect("count"),
            )
        })
        .collect()
}

async fn pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(url).await.expect("read-model pool")
}

/// Every row of every read-model table, as text, table by table in key order.
async fn dump(read_url: &str) -> Vec<String> {
    let pool = pool(read_url).await;
    let mut lines = Vec::new();
    for table in READ_MODEL_TABLES {
        let sql = format!("SELECT * FROM {table}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .expect("rows");
        let mut table_lines = Vec::new();
        for row in rows {
            let values: Vec<String> = (0..row.len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i)
                        .map(|v| format!("{v:?}"))
                        .or_else(|_| row.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                        .unwrap_or_else(|e| panic!("{table} column {i}: {e}"))
                })
                .collect();
            table_lines.push(format!("{table}: {}", values.join(" | ")));
        }
        // Several rows of an analytics table share their first column: sorted whole lines
        // compare the same rows in the same order.
        table_lines.sort();
        lines.extend(table_lines);
    }
    lines
}

fn read_models_with(read: ReadModels, sealed: &Sealed) -> ReadModels {
    read.with_vault(sealed.vault.clone())
}

async fn the_guest_list_shows_sealed_attendees_opened_and_whose_they_are(backend: Backend) {
    let sealed = Sealed::new(&backend).await;
    let read = read_models_with(backend.read_models().await, &sealed);
    let (ada, entry_id, last) = guests(&backend.store, &sealed).await;
    project_until(backend.store.clone(), &read, last).await;

    let (name, email, answers, person) = registration(backend.read_url(), ada).await;
    assert_eq!((name.as_str(), email.as_str()), (ADA, ADA_EMAIL));
    let answers: serde_json::Value = serde_json::from_str(&answers).expect("answers JSON");
    assert_eq!(
        answers,
        serde_json::json!({ "diet": ADA_DIET, "talks": ["looms", "engines"] })
    );
    assert_eq!(person.as_deref(), Some(sealed.ada.as_str()));
    let (name, email, person) = entry(backend.read_url(), entry_id).await;
    assert_eq!((name.as_str(), email.as_str()), (ADA, ADA_EMAIL));
    assert_eq!(person.as_deref(), Some(sealed.ada.as_str()));
    let rows = dump(backend.read_url()).await.join("\n");
    assert!(
        !rows.contains("sealed:v1:"),
        "nothing sealed in the read models: {rows}"
    );
    assert!(
        rows.contains("Carol Plain"),
        "plaintext from before sealing reads as it is"
    );
}

async fn an_erased_person_leaves_the_read_models_at_once_and_a_rebuild_agrees(backend: Backend) {
    let sealed = Sealed::new(&backend).await;
    let read = read_models_with(backend.read_models().await, &sealed);
    let (ada, entry_id, last) = guests(&backend.store, &sealed).await;
    project_until(backend.store.clone(), &read, last).await;
    assert_eq!(
        talks(backend.read_url()).await,
        [("engines".to_owned(), 1), ("looms".to_owned(), 2)]
    );

    // As `POST /v1/me/erase` does it: the key first, then the fact naming the person.
    sealed.vault.erase(&sealed.ada).await.expect("erased");
    let user = UserId(Uuid::now_v7());
    let erased_at = append(
        &backend.store,
        &user.stream(),
        &[UserFact::UserErased {
            erased_at: "2026-03-01T09:00:00Z".parse().expect("time"),
            person_id: sealed.ada.clone(),
        }],
    )
    .await;
    project_until(backend.store.clone(), &read, erased_at).await;

    let (name, email, answers, person) = registration(backend.read_url(), ada).await;
    assert_eq!((name.as_str(), email.as_str()), (ERASED, ERASED));
    assert_eq!(
        answers,
        r#"{"diet":"[erased]","talks":["[erased]","[erased]"]}"#
    );
    assert_eq!(person.as_deref(), Some(sealed.ada.as_str()));
    let (name, email, _) = entry(backend.read_url(), entry_id).await;
    assert_eq!((name.as_str(), email.as_str()), (ERASED, ERASED));
    assert_eq!(
        talks(backend.read_url()).await,
        [("looms".to_owned(), 1)],
        "Ada's answers no longer count; Bob's do"
    );
    let live = dump(backend.read_url()).await;
    let text = live.join("\n");
    for secret in [ADA, ADA_EMAIL, ADA_DIET, "engines"] {
        assert!(
            !text.contains(secret),
            "`{secret}` left in the read models:\n{text}"
        );
    }
    assert!(
        text.contains(BOB) && text.contains(BOB_EMAIL),
        "only Ada is erased"
    );

    let report = read
        .rebuild(
            backend.store.as_ref(),
            "read_models",
            &RebuildOptions::default(),
            &mut |_| {},
        )
        .await
        .expect("rebuilt");
    assert_eq!(report.position, erased_at);
    assert_eq!(
        dump(backend.read_url()).await,
        live,
        "the rebuild reads Ada erased from the log"
    );
}
