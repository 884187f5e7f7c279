//! Erasure, black box: a person signs up, reserves with answers, joins a waitlist, is checked
//! in, renames themselves, exports what Marquee holds on them, and erases their account. After
//! that, no row of any table of the database, no fact of the log as the store reads it, no line
//! of `marquee export` and no line of `GET /v1/log` holds their name, e-mail address or answer
//! in plain text; the guest list and replayed answers show `[erased]`; and the address can
//! never be recorded again (`409 person_erased`).

use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};

use crate::helpers::{Backend, MEMBER_PASSWORD, Reply, Session, TestApp, spawn_app};

/// Their name, e-mail address and a free-text answer: what must not survive anywhere.
const NAME: &str = "Augusta Ada Lovelace";
const EMAIL: &str = "augusta.ada@analytical-engines.example";
const NEW_NAME: &str = "Countess Augusta King";
const DIET: &str = "no parsnips whatsoever";

#[tokio::test]
async fn after_erasure_no_table_and_no_export_holds_the_persons_name_or_address() {
    erase_and_search(Backend::Sqlite).await;
}

#[tokio::test]
async fn after_erasure_no_table_and_no_export_holds_the_persons_name_or_address_on_postgres() {
    erase_and_search(Backend::Postgres).await;
}

/// A published event whose one ticket type has one free seat, asking about diets; its id and
/// the ticket type's.
async fn one_seat_event(app: &TestApp) -> (String, String) {
    let venue_id = app.create_venue(100).await;
    let event_id = app.draft_event(&venue_id, "Erasure night").await;
    let questions = app
        .send(
            app.client
                .put(format!(
                    "{}/v1/events/{event_id}/questions",
                    app.command_url
                ))
                .json(&json!({ "questions": [
                    { "id": "diet", "label": "Dietary needs", "type": "text" },
                ] })),
        )
        .await;
    assert_eq!(questions.status, 200, "{}", questions.body);
    let ticket_type_id = app.add_free_ticket_type(&event_id, "Standard", 1).await;
    app.publish(&event_id).await;
    (event_id, ticket_type_id)
}

/// `POST` to the command API as `session`, with an `Idempotency-Key`.
async fn post_remembered(
    app: &TestApp,
    token: Option<&str>,
    path: &str,
    key: &str,
    body: Value,
) -> Reply {
    app.send(
        app.request_as(token, Method::POST, &format!("{}{path}", app.command_url))
            .header("Idempotency-Key", key)
            .json(&body),
    )
    .await
}

fn attendee() -> Value {
    json!({ "name": NAME, "email": EMAIL })
}

async fn erase_and_search(backend: Backend) {
    let app = spawn_app(backend).await;
    let (event_id, ticket_type_id) = one_seat_event(&app).await;

    let signed_up = app.sign_up(EMAIL, MEMBER_PASSWORD, NAME).await;
    assert_eq!(signed_up.status, 201, "{}", signed_up.body);
    let ada: Session = app.sign_in(EMAIL, MEMBER_PASSWORD).await;

    // She takes the one seat with her answer, then waits for another.
    let reserved = post_remembered(
        &app,
        ada.token(),
        &format!("/v1/events/{event_id}/reservations"),
        "reserve-1",
        json!({
            "ticket_type_id": ticket_type_id,
            "quantity": 1,
            "attendee": attendee(),
            "answers": { "diet": DIET },
        }),
    )
    .await;
    assert_eq!(reserved.status, 201, "{}", reserved.body);
    let code = reserved.body["ticket_codes"][0]
        .as_str()
        .expect("a ticket code")
        .to_owned();
    let joined = app
        .post_as(
            ada.token(),
            &format!("/v1/events/{event_id}/waitlist"),
            json!({ "ticket_type_id": ticket_type_id, "attendee": attendee(), "answers": { "diet": DIET } }),
        )
        .await;
    assert_eq!(joined.status, 201, "{}", joined.body);

    // The door lets her in and is told her name; the answer is remembered under its key.
    let scan = json!({ "ticket_code": code, "nonce": "door-1" });
    let check_in = format!("/v1/events/{event_id}/check-ins");
    let owner = app.owner.token();
    let admitted = post_remembered(&app, owner, &check_in, "scan-1", scan.clone()).await;
    assert_eq!(admitted.status, 200, "{}", admitted.body);
    assert_eq!(admitted.body["attendee"]["name"], NAME);
    let replayed = post_remembered(&app, owner, &check_in, "scan-1", scan.clone()).await;
    assert_eq!(replayed.body["attendee"]["name"], NAME, "{}", replayed.body);

    // She renames herself; the profile answer is remembered too.
    let renamed = app
        .send(
            app.request_as(
                ada.token(),
                Method::PATCH,
                &format!("{}/v1/me", app.command_url),
            )
            .header("Idempotency-Key", "rename-1")
            .json(&json!({ "name": NEW_NAME })),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);

    // What Marquee holds on her.
    let export = app.get_command_as(ada.token(), "/v1/me/export").await;
    assert_eq!(export.status, 200, "{}", export.body);
    assert_eq!(export.body["account"]["name"], NEW_NAME);
    assert_eq!(export.body["account"]["email"], EMAIL);
    assert_eq!(export.body["organizations"], json!([]));
    let registrations = export.body["registrations"].as_array().expect("a list");
    assert_eq!(registrations.len(), 1, "{}", export.body);
    assert_eq!(registrations[0]["event_id"], event_id);
    assert_eq!(registrations[0]["attendee"], attendee());
    assert_eq!(registrations[0]["answers"], json!({ "diet": DIET }));
    assert_eq!(registrations[0]["ticket_codes"], json!([code]));
    assert_eq!(registrations[0]["held_by_you"], true);
    let waitlist = export.body["waitlist"].as_array().expect("a list");
    assert_eq!(waitlist.len(), 1, "{}", export.body);
    assert_eq!(waitlist[0]["attendee"], attendee());
    assert_eq!(waitlist[0]["status"], "waiting");

    // She erases her account.
    let erased = app
        .post_as(
            ada.token(),
            "/v1/me/erase",
            json!({ "password": MEMBER_PASSWORD }),
        )
        .await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    let erased_at = erased.body["position"].as_u64().expect("position");
    let applied = app
        .get(&format!("/v1/events/{event_id}"), Some(erased_at))
        .await;
    assert_eq!(
        applied.status, 200,
        "the read models applied the erasure: {}",
        applied.body
    );

    // Gone for the API: the account, the remembered answer, the guest list.
    let gone = app.get_command_as(ada.token(), "/v1/me/export").await;
    assert_eq!(gone.status, 401, "{}", gone.body);
    let replayed = post_remembered(&app, owner, &check_in, "scan-1", scan).await;
    assert_eq!(
        replayed.body["attendee"]["name"], "[erased]",
        "{}",
        replayed.body
    );
    let guests = app
        .get(&format!("/v1/events/{event_id}/attendees"), None)
        .await;
    assert_eq!(guests.status, 200, "{}", guests.body);
    assert!(
        guests.body.to_string().contains("[erased]"),
        "the guest list shows her as erased: {}",
        guests.body
    );

    // The address can never be recorded again.
    let again = app.sign_up(EMAIL, MEMBER_PASSWORD, NAME).await;
    again.assert_problem(409, "person_erased");
    let for_her = app
        .post(
            &format!("/v1/events/{event_id}/waitlist"),
            json!({ "ticket_type_id": ticket_type_id, "attendee": attendee() }),
        )
        .await;
    for_her.assert_problem(409, "person_erased");

    // And nothing anywhere holds her in plain text.
    let secrets = [NAME, EMAIL, NEW_NAME, DIET];
    let tables = every_row_of_every_table(&app).await;
    assert!(
        tables.len() > 10,
        "the search read the database: {tables:?}"
    );
    assert!(
        tables.iter().any(|row| row.contains("[erased]")),
        "the read models show her as erased"
    );
    assert_none_holds(&tables, &secrets, "database row");
    assert_none_holds(&log_as_stored(&app).await, &secrets, "fact in the log");
    assert_none_holds(&marquee_export(&app), &secrets, "line of `marquee export`");
    assert_none_holds(&log_route(&app).await, &secrets, "line of GET /v1/log");
}

#[track_caller]
fn assert_none_holds(texts: &[String], secrets: &[&str], what: &str) {
    assert!(!texts.is_empty(), "no {what} read at all");
    for text in texts {
        let text_lower = text.to_lowercase();
        for secret in secrets {
            assert!(
                !text_lower.contains(&secret.to_lowercase()),
                "`{secret}` in plain text in a {what}: {text}"
            );
        }
    }
}

/// Every row of every table of the app's database, one text per row (`table: values…`).
async fn every_row_of_every_table(app: &TestApp) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let url = app.database();
    let postgres = app.database_url().is_some();
    let pool = AnyPool::connect(&url).await.expect("the app's database");
    let tables_sql = if postgres {
        "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1"
    };
    let tables: Vec<String> = sqlx::query(tables_sql)
        .fetch_all(&pool)
        .await
        .expect("table names")
        .iter()
        .map(|row| row.get("name"))
        .collect();
    let mut rows = Vec::new();
    for table in tables {
        // Every column as text, whatever its type. The names come from the database's own
        // catalogue.
        let sql = if postgres {
            format!("SELECT CAST(row_to_json(t) AS TEXT) AS line FROM \"{table}\" t")
        } else {
            // Blobs stay bytes (a cast of one that is no UTF-8 fails); the rest becomes text.
            let columns: Vec<String> =
                sqlx::query("SELECT name, upper(type) AS type FROM pragma_table_info($1)")
                    .bind(&table)
                    .fetch_all(&pool)
                    .await
                    .expect("columns")
                    .iter()
                    .map(|row| {
                        let name: String = row.get("name");
                        let kind: String = row.get("type");
                        if kind == "BLOB" {
                            format!("\"{name}\"")
                        } else {
                            format!("CAST(\"{name}\" AS TEXT)")
                        }
                    })
                    .collect();
            format!("SELECT {} FROM \"{table}\"", columns.join(", "))
        };
        for row in sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("reading {table}: {e}"))
        {
            let values: Vec<String> = (0..row.len()).map(|i| as_text(&row, i)).collect();
            rows.push(format!("{table}: {}", values.join(" | ")));
        }
    }
    pool.close().await;
    rows
}

/// Column `i` of `row`, selected as text or bytes.
fn as_text(row: &sqlx::any::AnyRow, i: usize) -> String {
    if let Ok(text) = row.try_get::<Option<String>, _>(i) {
        return text.unwrap_or_default();
    }
    let bytes = row
        .try_get::<Option<Vec<u8>>, _>(i)
        .unwrap_or_else(|e| panic!("column {i} is neither text nor bytes: {e}"));
    String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
}

/// Every fact of the log as the store's `read_all` returns it, one JSON text per fact.
async fn log_as_stored(app: &TestApp) -> Vec<String> {
    let store = marquee_store::connect(&app.database())
        .await
        .expect("the app's log");
    let mut facts = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_all(after, 1000).await.expect("read_all");
        let Some(last) = page.last() else {
            return facts;
        };
        after = last.position;
        facts.extend(
            page.iter()
                .map(|fact| serde_json::to_string(fact).expect("a fact as JSON")),
        );
    }
}

/// The lines `marquee export` writes for the app's whole log.
fn marquee_export(app: &TestApp) -> Vec<String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marquee"));
    command
        .arg("export")
        .arg("--data-dir")
        .arg(app.data_dir())
        .env_remove("NATS_URL")
        .env("MARQUEE_LOG", "warn");
    match app.database_url() {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let output = command.output().expect("marquee export runs");
    assert!(
        output.status.success(),
        "marquee export: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("NDJSON is text")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The lines of `GET /v1/log` for the organization that owns the event, as its owner reads
/// them.
async fn log_route(app: &TestApp) -> Vec<String> {
    let response = app
        .client
        .get(format!(
            "{}/v1/log?organization_id={}",
            app.query_url, app.organization_id
        ))
        .send()
        .await
        .expect("GET /v1/log");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("NDJSON");
    assert!(text.contains("sealed:v1:"), "the log shows her data sealed");
    text.lines().map(str::to_owned).collect()
}
