//! Notifications, black box: the real `marquee serve` mailing an SMTP sink and posting to an
//! HTTP receiver that the tests start on free ports (`marquee_notifier::testing`).
//!
//! - A reminder with a short offset fires once, at its offset before the start, although the
//!   process is killed and restarted before it is due and again after it went out.
//! - Organizers register a webhook endpoint through the command API (the secret shown once),
//!   deliveries and pings arrive signed (checked with Python's `hmac`), the delivery log shows
//!   them, and removing the endpoint ends it; other roles and outsiders are refused.

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use marquee_notifier::testing::{HttpReceiver, SmtpSink};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{AppOptions, Backend, TestApp, spawn_app_with};

/// A scalar from the app's database (SQLite file or Postgres).
async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database())
        .await
        .expect("the app's database");
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await.expect(sql);
    pool.close().await;
    n
}

/// Waits until `sql` counts `expected`.
async fn until_count(app: &TestApp, sql: &'static str, expected: i64) {
    while count(app, sql).await != expected {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the notifier has planned everything in the log.
async fn notifier_caught_up(app: &TestApp) {
    let head = app.head_position().await;
    loop {
        let at = count(
            app,
            "SELECT COALESCE(MAX(position), 0) FROM notifier_checkpoints",
        )
        .await;
        if u64::try_from(at).unwrap_or(0) >= head {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A published event at a new venue starting at `starts_at` with one free ticket type and the
/// given reminder offsets; its id and the ticket type's.
async fn event_starting(
    app: &TestApp,
    starts_at: DateTime<Utc>,
    reminders: &[u32],
) -> (String, String) {
    let venue_id = app.create_venue(100).await;
    let draft = app
        .post(
            "/v1/events",
            json!({
                "venue_id": venue_id,
                "title": "Soon",
                "category": "talk",
                "starts_at": starts_at,
                "ends_at": starts_at + chrono::Duration::hours(2),
                "reminder_offsets_seconds": reminders,
            }),
        )
        .await;
    assert_eq!(draft.status, 201, "{}", draft.body);
    let event_id = draft.text("event_id");
    let ticket_type_id = app.add_free_ticket_type(&event_id, "Seat", 10).await;
    app.publish(&event_id).await;
    (event_id, ticket_type_id)
}

#[tokio::test]
async fn a_reminder_fires_once_at_its_offset_across_restarts() {
    let sink = SmtpSink::start().await.expect("SMTP sink");
    let mut app = spawn_app_with(
        AppOptions::new(Backend::Sqlite)
            .env("MARQUEE_SMTP_URL", &sink.url())
            .env("MARQUEE_NOTIFY_CLAIM_SECS", "3"),
    )
    .await;
    let starts_at = Utc::now() + chrono::Duration::seconds(20);
    let (event_id, ticket_type_id) = event_starting(&app, starts_at, &[8]).await;
    let reserved = app.reserve(&event_id, &ticket_type_id, 1, 1).await;
    assert_eq!(reserved.status, 201, "{}", reserved.body);
    sink.wait_for(|mails| {
        mails
            .iter()
            .any(|m| m.subject().starts_with("Your tickets"))
    })
    .await;

    // Killed before the reminder is due; the timer and the notifier's tables outlive it.
    app.restart().await;
    let mails = sink
        .wait_for(|mails| mails.iter().any(|m| m.subject().starts_with("Reminder:")))
        .await;
    let reminder = mails
        .iter()
        .find(|m| m.subject().starts_with("Reminder:"))
        .expect("a reminder");
    assert_eq!(reminder.to, ["guest1@example.com"]);
    assert!(
        reminder.text().contains("(in 8 seconds)"),
        "{}",
        reminder.text()
    );

    // Killed again once it went out (the notifier recorded it as sent; a kill between the
    // server's acceptance and that record is the window `marquee_notifier::sender` describes):
    // nothing fires twice.
    until_count(
        &app,
        "SELECT COUNT(*) FROM notifications WHERE kind = 'reminder' AND status = 'sent'",
        1,
    )
    .await;
    app.restart().await;
    until_count(&app, "SELECT COUNT(*) FROM timers WHERE kind = 'remind'", 0).await;
    notifier_caught_up(&app).await;
    until_count(
        &app,
        "SELECT COUNT(*) FROM notifications WHERE status IN ('pending', 'sending')",
        0,
    )
    .await;
    let history = app
        .get(&format!("/v1/streams/event-{event_id}"), None)
        .await;
    assert_eq!(history.status, 200, "{}", history.body);
    let due: Vec<&Value> = history.body["items"]
        .as_array()
        .expect("facts")
        .iter()
        .filter(|f| f["fact_type"] == "ReminderDue")
        .collect();
    assert_eq!(due.len(), 1, "one reminder for one offset: {due:?}");
    let data = &due[0]["data"];
    assert_eq!(data["offset_seconds"], 8);
    let time = |v: &Value| {
        v.as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .expect("a time")
            .with_timezone(&Utc)
    };
    let due_at = time(&data["due_at"]);
    assert_eq!(
        due_at,
        time(&data["starts_at"]) - chrono::Duration::seconds(8)
    );
    assert!(
        time(&data["reminded_at"]) >= due_at,
        "not before its time: {data}"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM notifications WHERE kind = 'reminder'"
        )
        .await,
        1
    );
    let reminders = sink
        .messages()
        .iter()
        .filter(|m| m.subject().starts_with("Reminder:"))
        .count();
    assert_eq!(reminders, 1);
}

/// Python's own HMAC says whether `signature` (`t=…,v1=…`) signs `body` with `secret`; fails
/// the test plainly when python3 cannot run.
fn python_verifies(secret: &str, signature: &str, body: &str) -> bool {
    let script = r#"
import hashlib, hmac, sys
secret, header = sys.argv[1], sys.argv[2]
parts = dict(p.split("=", 1) for p in header.split(","))
body = sys.stdin.buffer.read()
mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(mac, parts["v1"]) else 1)
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, secret, signature])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("signatures are checked with python3, which could not run: {e}")
        });
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(body.as_bytes()).expect("body to python3");
    }
    child.wait().expect("python3 ran").success()
}

async fn webhooks_through_the_api(backend: Backend) {
    let receiver = HttpReceiver::start(&[]).await.expect("receiver");
    let app = spawn_app_with(AppOptions::new(backend)).await;
    let org = app.organization_id.clone();
    let hooks = format!("/v1/organizations/{org}/webhooks");

    // Only owners and organizers manage webhooks.
    let door = app.member("door_staff").await;
    let refused = app
        .post_as(
            door.token(),
            &hooks,
            json!({ "url": receiver.url(), "fact_types": ["*"] }),
        )
        .await;
    refused.assert_problem(403, "forbidden");
    let outsider = app.account("outsider").await;
    app.get_command_as(outsider.token(), &hooks)
        .await
        .assert_problem(404, "not_found");
    app.get_command_as(None, &hooks)
        .await
        .assert_problem(401, "unauthorized");
    let bad = app
        .post(
            &hooks,
            json!({ "url": "ftp://nowhere", "fact_types": ["*"] }),
        )
        .await;
    bad.assert_problem(422, "validation_failed");

    let organizer = app.member("organizer").await;
    let created = app
        .post_as(
            organizer.token(),
            &hooks,
            json!({ "url": receiver.url(), "fact_types": ["RegistrationConfirmed"] }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.text("secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let webhook_id = created.text("webhook_id");
    let listed = app.get_command_as(app.owner.token(), &hooks).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["items"][0]["webhook_id"], webhook_id.as_str());
    assert!(
        !listed.body.to_string().contains(&secret),
        "the secret is shown once"
    );

    // A registration is delivered, signed.
    let venue_id = app.create_venue(100).await;
    let event_id = app.draft_event(&venue_id, "Hooked").await;
    let ticket_type_id = app.add_free_ticket_type(&event_id, "Seat", 10).await;
    app.publish(&event_id).await;
    let reserved = app.reserve(&event_id, &ticket_type_id, 1, 7).await;
    assert_eq!(reserved.status, 201, "{}", reserved.body);
    let received = receiver.wait_for(|r| !r.is_empty()).await;
    let body: Value = serde_json::from_str(&received[0].body).expect("JSON");
    assert_eq!(body["type"], "RegistrationConfirmed");
    assert_eq!(
        body["fact"]["data"]["attendee"]["email"],
        "guest7@example.com"
    );
    assert_eq!(
        body["fact"]["data"]["registration_id"],
        reserved.body["registration_id"]
    );
    let signature = received[0].header("marquee-signature").expect("signed");
    assert!(python_verifies(&secret, signature, &received[0].body));

    // A ping on request, in the delivery log with the registration.
    let one = format!("{hooks}/{webhook_id}");
    let ping = app.post(&format!("{one}/ping"), json!({})).await;
    assert_eq!(ping.status, 202, "{}", ping.body);
    let received = receiver.wait_for(|r| r.len() == 2).await;
    let ping_body: Value = serde_json::from_str(&received[1].body).expect("JSON");
    assert_eq!(ping_body["type"], "ping");
    assert_eq!(ping_body["id"], ping.body["delivery_id"]);
    let signature = received[1].header("marquee-signature").expect("signed");
    assert!(python_verifies(&secret, signature, &received[1].body));
    let deliveries = loop {
        let log = app
            .get_command_as(app.owner.token(), &format!("{one}/deliveries"))
            .await;
        assert_eq!(log.status, 200, "{}", log.body);
        let items = log.body["items"].as_array().expect("items").clone();
        if items.len() == 2 && items.iter().all(|d| d["status"] == "sent") {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(deliveries[0]["fact_type"], "ping");
    assert_eq!(deliveries[1]["fact_type"], "RegistrationConfirmed");
    assert_eq!(deliveries[1]["attempts"], 1);
    assert_eq!(deliveries[1]["attempt_log"][0]["status"], 200);

    // Removed: gone from the list, nothing more delivered.
    let removed = app
        .send(app.request_as(
            app.owner.token(),
            Method::DELETE,
            &format!("{}{one}", app.command_url),
        ))
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    let listed = app.get_command_as(app.owner.token(), &hooks).await;
    assert_eq!(listed.body["items"], json!([]));
    app.get_command_as(app.owner.token(), &format!("{one}/deliveries"))
        .await
        .assert_problem(404, "not_found");
    let again = app.reserve(&event_id, &ticket_type_id, 1, 8).await;
    assert_eq!(again.status, 201, "{}", again.body);
    notifier_caught_up(&app).await;
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn organizers_register_webhooks_that_arrive_signed_and_logged() {
    webhooks_through_the_api(Backend::Sqlite).await;
}

#[tokio::test]
async fn organizers_register_webhooks_that_arrive_signed_and_logged_on_postgres() {
    webhooks_through_the_api(Backend::Postgres).await;
}
