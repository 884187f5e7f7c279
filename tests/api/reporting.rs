//! Reporting consumers, black-box: `marquee export` writes the log as NDJSON, and `marquee
//! replay` folds the log or that export into a standalone SQLite file whose read models equal
//! the live ones, table by table and row by row. Run with the real binary against a running
//! `marquee serve`, on SQLite and with Postgres as the source.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use marquee_store::RecordedFact;
use serde_json::{Value, json};
use sqlx::{AnyPool, Column, Row};

use crate::helpers::{Backend, TestApp, spawn_app};

/// Runs `marquee ARGS…` to completion against the app's database (its data directory, or its
/// Postgres URL) without the runner's settings; panics unless it succeeds.
async fn marquee(app: &TestApp, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marquee"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("NATS_URL")
        .env("MARQUEE_LOG", "warn");
    for (key, _) in std::env::vars() {
        if key.starts_with("MARQUEE_") && key != "MARQUEE_LOG" {
            command.env_remove(key);
        }
    }
    match app.database_url() {
        Some(url) => command.args(["--database-url", url]),
        None => command.arg("--data-dir").arg(app.data_dir()),
    };
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run marquee");
    assert!(
        output.status.success(),
        "marquee {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Some of everything the read models hold: venues, published events, free registrations and a
/// cancellation, a waitlist with an offer, a paid hold and a paid registration. Returns the
/// log's head once the query API has applied it.
async fn activity(app: &TestApp) -> u64 {
    let venue = app.create_venue(100).await;

    let free = app.draft_event(&venue, "Free night").await;
    let seats = app.add_free_ticket_type(&free, "Standing", 3).await;
    app.publish(&free).await;
    let first = app.reserve(&free, &seats, 2, 1).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let second = app.reserve(&free, &seats, 1, 2).await;
    assert_eq!(second.status, 201, "{}", second.body);
    let joined = app
        .post(
            &format!("/v1/events/{free}/waitlist"),
            json!({
                "ticket_type_id": seats,
                "attendee": { "name": "Guest 3", "email": "guest3@example.com" },
            }),
        )
        .await;
    assert_eq!(joined.status, 201, "{}", joined.body);
    let registration = second.text("registration_id");
    let cancelled = app
        .post(
            &format!("/v1/events/{free}/reservations/{registration}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);

    let paid = app.draft_event(&venue, "Paid night").await;
    let tickets = app.add_ticket_type(&paid, "Seat", 2500, 5).await;
    app.publish(&paid).await;
    let held = app.reserve(&paid, &tickets, 1, 4).await;
    assert_eq!(held.status, 201, "{}", held.body);
    let registration = held.text("registration_id");
    let payment = app
        .post(
            &format!("/v1/events/{paid}/reservations/{registration}/pay"),
            json!({ "card_number": "4242424242424242" }),
        )
        .await;
    assert_eq!(payment.status, 200, "{}", payment.body);
    let still_held = app.reserve(&paid, &tickets, 2, 5).await;
    assert_eq!(still_held.status, 201, "{}", still_held.body);

    let head = app.head_position().await;
    let applied = app.get("/v1/events", Some(head)).await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    head
}

/// Every read-model table (and the checkpoint) of the database at `url`: per table, its rows
/// as JSON objects (column → value), sorted, so that two engines compare equal when their
/// contents do.
async fn read_models(url: &str) -> BTreeMap<String, Vec<String>> {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(url).await.expect("connect to read models");
    let mut tables = BTreeMap::new();
    for table in marquee_projector::READ_MODEL_TABLES
        .into_iter()
        .chain(["projector_checkpoints"])
    {
        let sql = format!("SELECT * FROM {table}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        let mut rows: Vec<String> = rows
            .iter()
            .map(|row| {
                let object: serde_json::Map<String, Value> = row
                    .columns()
                    .iter()
                    .map(|column| {
                        let i = column.ordinal();
                        let value = if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                            json!(v)
                        } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                            json!(v)
                        } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
                            json!(v)
                        } else {
                            json!(row.try_get::<Option<bool>, _>(i).expect("a known type"))
                        };
                        (column.name().to_owned(), value)
                    })
                    .collect();
                Value::Object(object).to_string()
            })
            .collect();
        rows.sort();
        tables.insert(table.to_owned(), rows);
    }
    pool.close().await;
    tables
}

#[track_caller]
fn assert_same_read_models(
    live: &BTreeMap<String, Vec<String>>,
    copy: &BTreeMap<String, Vec<String>>,
    what: &str,
) {
    for (table, rows) in live {
        assert_eq!(
            copy.get(table),
            Some(rows),
            "{what}: table {table} differs from the live one"
        );
    }
    assert_eq!(live.len(), copy.len());
}

fn parse_lines(text: &str) -> Vec<RecordedFact> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

async fn export_then_replay_gives_the_live_read_models(backend: Backend) {
    let app = spawn_app(backend).await;
    let head = activity(&app).await;
    let work = tempfile::tempdir().expect("temp dir");
    let export = work.path().join("log.ndjson");
    let export_arg = export.display().to_string();

    marquee(&app, &["export", "--after", "0", "--out", &export_arg]).await;
    let facts = parse_lines(&std::fs::read_to_string(&export).expect("the export"));
    assert_eq!(
        facts.iter().map(|f| f.position).collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>(),
        "the whole log, in position order, without a gap"
    );

    let from_export = work.path().join("from-export.db");
    let from_log = work.path().join("from-log.db");
    for (into, from) in [(&from_export, Some(&export_arg)), (&from_log, None)] {
        let into_arg = into.display().to_string();
        let mut args = vec!["replay", "--into", into_arg.as_str()];
        if let Some(from) = from {
            args.extend(["--from", from.as_str()]);
        }
        let output = marquee(&app, &args).await;
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(&format!("up to position {head}")),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    let live = read_models(&app.database()).await;
    assert!(
        live.values().filter(|rows| !rows.is_empty()).count() >= 6,
        "the activity fills most tables: {live:?}"
    );
    let sqlite = |path: &Path| format!("sqlite://{}", path.display());
    assert_same_read_models(
        &live,
        &read_models(&sqlite(&from_export)).await,
        "replayed from the export",
    );
    assert_same_read_models(
        &live,
        &read_models(&sqlite(&from_log)).await,
        "replayed from the log",
    );

    // An existing file is never overwritten.
    let again = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["replay", "--into", &from_log.display().to_string()])
        .args(["--from", &export_arg])
        .output()
        .expect("run marquee");
    assert!(!again.status.success());
}

async fn an_export_for_one_organization_is_that_organizations_facts_from_a_position(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    activity(&app).await;
    // Facts of another organization, and an account's own facts, are in the log too.
    let stranger = app.account("stranger").await;
    let theirs = app.found_organization(&stranger, "Elsewhere").await;
    let whole = parse_lines(&String::from_utf8_lossy(
        &marquee(&app, &["export"]).await.stdout,
    ));
    let after = whole[whole.len() / 3].position;
    let output = marquee(
        &app,
        &[
            "export",
            "--after",
            &after.to_string(),
            "--organization",
            &app.organization_id,
        ],
    )
    .await;
    let ours = parse_lines(&String::from_utf8_lossy(&output.stdout));
    let expected: Vec<RecordedFact> = whole
        .iter()
        .filter(|f| {
            f.position > after
                && f.metadata.organization.as_deref() == Some(app.organization_id.as_str())
        })
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(ours, expected, "stdout carries exactly those lines");
    assert!(
        whole
            .iter()
            .any(|f| f.metadata.organization.as_deref() == Some(theirs.as_str())),
        "the other organization wrote facts of its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_replay_into_a_fresh_file_gives_the_live_read_models() {
    export_then_replay_gives_the_live_read_models(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_export_then_replay_into_a_fresh_sqlite_file_gives_the_live_read_models() {
    export_then_replay_gives_the_live_read_models(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_for_one_organization_after_a_position_holds_exactly_its_later_facts() {
    an_export_for_one_organization_is_that_organizations_facts_from_a_position(Backend::Sqlite)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_export_for_one_organization_after_a_position_holds_exactly_its_later_facts() {
    an_export_for_one_organization_is_that_organizations_facts_from_a_position(Backend::Postgres)
        .await;
}
