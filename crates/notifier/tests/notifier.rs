//! The notifier against an SMTP sink and an HTTP receiver the tests start on free ports: every
//! message type arrives with its content in the recipient's locale; webhook deliveries are
//! signed (checked by Python's `hmac`), retried, and stop at `410 Gone`; a fact read twice, a
//! restart and a kill mid-send send nothing twice; erased people get nothing.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use marquee_auth::{AuthStore, Vault};
use marquee_domain::event::{Attendee, EventFact, RefundReason};
use marquee_domain::user::UserFact;
use marquee_domain::venue::VenueFact;
use marquee_domain::{
    EventId, FactCodec, Money, PaymentId, RegistrationId, TicketCode, TicketTypeId, UserId,
    VenueId, WaitlistEntryId,
};
use marquee_notifier::testing::{HttpReceiver, Received, SmtpSink, SunkMail};
use marquee_notifier::{
    Backoff, Channel, Mailer, NewEndpoint, Notifier, NotifierConfig, NotifierStore, Webhooks,
};
use marquee_store::{AppendRequest, EventStore, ExpectedRevision, FactMetadata, NewFact};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A log, its keys, a notifier over them and the SMTP sink it mails to.
struct World {
    _dir: tempfile::TempDir,
    url: String,
    log: Arc<dyn EventStore>,
    auth: AuthStore,
    vault: Vault,
    store: NotifierStore,
    sink: SmtpSink,
    organization: Uuid,
    venue: VenueId,
    event: EventId,
    free: TicketTypeId,
    paid: TicketTypeId,
    running: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

fn config() -> NotifierConfig {
    NotifierConfig {
        poll_every: Duration::from_millis(50),
        claim_for: Duration::from_secs(2),
        backoff: Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(400),
            give_up_after: Duration::from_secs(3600),
        },
        timeout: Duration::from_secs(5),
        ..NotifierConfig::default()
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

impl World {
    async fn new() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("marquee_notifier=info")
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("marquee.db").display());
        let log = marquee_store::connect(&url).await.expect("log");
        let auth = AuthStore::connect(&url).await.expect("auth");
        let vault = Vault::new(auth.clone())
            .await
            .expect("vault")
            .with_key_cache_ttl(Duration::ZERO);
        let store = NotifierStore::connect(&url).await.expect("notifier tables");
        let sink = SmtpSink::start().await.expect("SMTP sink");
        let mut world = Self {
            _dir: dir,
            url,
            log,
            auth,
            vault,
            store,
            sink,
            organization: Uuid::now_v7(),
            venue: VenueId(Uuid::now_v7()),
            event: EventId(Uuid::now_v7()),
            free: TicketTypeId(Uuid::now_v7()),
            paid: TicketTypeId(Uuid::now_v7()),
            running: None,
        };
        // Started on the empty log, so everything appended afterwards is news to it.
        world.start().await;
        world.event_on_sale().await;
        world
    }

    async fn start(&mut self) {
        let mailer = Mailer::smtp(
            &self.sink.url(),
            "Marquee <no-reply@marquee.test>",
            Duration::from_secs(5),
        )
        .expect("mailer");
        let notifier = Notifier::connect(
            self.log.clone(),
            &self.url,
            self.auth.clone(),
            mailer,
            config(),
        )
        .await
        .expect("notifier");
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            notifier.run(shutdown).await.expect("notifier runs");
        });
        self.running = Some((stop, task));
    }

    /// Stops the notifier gracefully.
    async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(true);
            task.await.expect("notifier task");
        }
    }

    /// Kills the notifier wherever it is (its task is dropped, its connections close).
    async fn kill(&mut self) {
        if let Some((_, task)) = self.running.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn append<F: FactCodec>(&self, stream: &str, facts: &[F]) -> u64 {
        let facts = facts
            .iter()
            .map(|fact| {
                let (fact_type, schema_version, data) = fact.encode();
                NewFact {
                    fact_id: Uuid::now_v7(),
                    fact_type,
                    schema_version,
                    data,
                    metadata: FactMetadata {
                        organization: Some(self.organization.to_string()),
                        ..FactMetadata::default()
                    },
                }
            })
            .collect();
        self.log
            .append(AppendRequest {
                stream: stream.to_owned(),
                expected: ExpectedRevision::Any,
                facts,
                idempotency: None,
            })
            .await
            .expect("append")
            .last_position
    }

    async fn event(&self, facts: &[EventFact]) -> u64 {
        self.append(&self.event.stream(), facts).await
    }

    fn starts_at(&self) -> DateTime<Utc> {
        // A fixed hour tomorrow, so its text is known.
        (now() + TimeDelta::days(2))
            .date_naive()
            .and_hms_opt(18, 0, 0)
            .expect("a time")
            .and_utc()
    }

    async fn event_on_sale(&self) {
        self.append(
            &self.venue.stream(),
            &[VenueFact::VenueCreated {
                venue_id: self.venue,
                name: "Hall A".into(),
                city: "Berlin".into(),
                address: None,
                capacity: 500,
                timezone: "Europe/Berlin".into(),
                created_at: now(),
            }],
        )
        .await;
        let starts_at = self.starts_at();
        self.event(&[
            EventFact::EventDrafted {
                event_id: self.event,
                venue_id: self.venue,
                title: "Festival".into(),
                description: String::new(),
                category: "music".into(),
                starts_at,
                ends_at: starts_at + TimeDelta::hours(3),
                timezone: "Europe/Berlin".into(),
                capacity: 100,
                max_per_order: 10,
            },
            EventFact::TicketTypeAdded {
                ticket_type_id: self.free,
                name: "Standard".into(),
                price: euros(0),
                quantity: 50,
                sales_start: None,
                sales_end: None,
            },
            EventFact::TicketTypeAdded {
                ticket_type_id: self.paid,
                name: "VIP".into(),
                price: euros(2_500),
                quantity: 10,
                sales_start: None,
                sales_end: None,
            },
            EventFact::EventPublished {
                published_at: now(),
            },
        ])
        .await;
    }

    /// An account for `email` whose locale is `locale`.
    async fn account(&self, email: &str, name: &str, locale: &str) {
        let user_id = UserId(Uuid::now_v7());
        self.auth
            .create_credentials(user_id.0, email, "$argon2id$not-a-real-hash", now())
            .await
            .expect("credentials");
        self.append(
            &user_id.stream(),
            &[UserFact::UserRegistered {
                user_id,
                name: name.into(),
                email: email.into(),
                locale: locale.into(),
                registered_at: now(),
            }],
        )
        .await;
    }

    /// Waits until the notifier has planned everything up to the log's head.
    async fn caught_up(&self) {
        let head = self.log.head_position().await.expect("head");
        loop {
            if self.store.checkpoint("notifier").await.expect("checkpoint") >= Some(head) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until no notification is pending or being sent (all sent, failed or dropped).
    async fn settled(&self, channel: Channel) -> Vec<(Uuid, String, String, String)> {
        self.caught_up().await;
        loop {
            let rows = self.store.notifications(channel).await.expect("rows");
            if rows
                .iter()
                .all(|(_, _, _, status)| status != "pending" && status != "sending")
            {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn euros(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: "EUR".into(),
    }
}

fn person(name: &str, email: &str) -> Attendee {
    Attendee {
        name: name.into(),
        email: email.into(),
    }
}

fn code(label: &str) -> TicketCode {
    TicketCode(format!("{label:_<32}"))
}

fn confirmed(
    id: RegistrationId,
    ticket_type: TicketTypeId,
    who: Attendee,
    codes: &[&str],
) -> EventFact {
    EventFact::RegistrationConfirmed {
        registration_id: id,
        ticket_type_id: ticket_type,
        attendee: who,
        quantity: u32::try_from(codes.len()).expect("few"),
        ticket_codes: codes.iter().map(|c| code(c)).collect(),
        confirmed_at: now(),
    }
}

fn held(
    id: RegistrationId,
    ticket_type: TicketTypeId,
    who: Attendee,
    label: &str,
    hold: TimeDelta,
) -> EventFact {
    EventFact::SeatsHeld {
        registration_id: id,
        ticket_type_id: ticket_type,
        attendee: who,
        quantity: 1,
        ticket_codes: vec![code(label)],
        price: euros(2_500),
        expires_at: now() + hold,
        held_at: now(),
    }
}

fn to(mails: &[SunkMail], address: &str) -> Vec<SunkMail> {
    mails
        .iter()
        .filter(|m| m.to.iter().any(|t| t == address))
        .cloned()
        .collect()
}

fn with_subject<'a>(mails: &'a [SunkMail], part: &str) -> &'a SunkMail {
    mails
        .iter()
        .find(|m| m.subject().contains(part))
        .unwrap_or_else(|| {
            panic!(
                "no message with {part:?} in its subject among {:?}",
                mails.iter().map(SunkMail::subject).collect::<Vec<_>>()
            )
        })
}

#[tokio::test]
async fn every_message_type_arrives_with_its_content_in_the_recipients_locale() {
    let mut world = World::new().await;
    world.account("bert@example.org", "Bert", "de-AT").await;
    let (ada, bert, cy, dee, eve) = (
        person("Ada", "ada@example.org"),
        person("Bert", "bert@example.org"),
        person("Cy", "cy@example.org"),
        person("Dee", "dee@example.org"),
        person("Eve", "eve@example.org"),
    );
    let (r_ada, r_bert, r_cy, r_eve) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let entry = WaitlistEntryId(Uuid::now_v7());
    let payment = PaymentId("pay_eve".into());
    let offer_deadline = now() + TimeDelta::hours(1);
    world
        .event(&[
            confirmed(r_ada, world.free, ada.clone(), &["ada-1", "ada-2"]),
            confirmed(r_bert, world.free, bert.clone(), &["bert-1"]),
            // A short hold, warned about halfway through.
            held(r_cy, world.paid, cy.clone(), "cy-1", TimeDelta::seconds(4)),
            EventFact::WaitlistJoined {
                entry_id: entry,
                ticket_type_id: world.paid,
                attendee: dee.clone(),
                quantity: 1,
                answers: Default::default(),
                joined_at: now(),
            },
            EventFact::WaitlistOfferMade {
                entry_id: entry,
                ticket_type_id: world.paid,
                quantity: 1,
                expires_at: offer_deadline,
                offered_at: now(),
            },
            held(
                r_eve,
                world.paid,
                eve.clone(),
                "eve-1",
                TimeDelta::seconds(3),
            ),
            EventFact::PaymentReceived {
                registration_id: r_eve,
                payment_id: payment.clone(),
                amount: euros(2_500),
                received_at: now(),
            },
            EventFact::HoldConfirmed {
                registration_id: r_eve,
                ticket_type_id: world.paid,
                quantity: 1,
                payment_id: payment.clone(),
                late: false,
                confirmed_at: now(),
            },
            EventFact::RegistrationCancelled {
                registration_id: r_eve,
                ticket_type_id: world.paid,
                quantity: 1,
                cancelled_at: now(),
            },
            EventFact::RefundDue {
                registration_id: r_eve,
                payment_id: payment.clone(),
                amount: euros(2_500),
                reason: RefundReason::AttendeeCancelled,
                due_at: now(),
            },
            EventFact::RefundCompleted {
                registration_id: r_eve,
                payment_id: payment.clone(),
                refund_id: "re_42".into(),
                completed_at: now(),
            },
        ])
        .await;
    let starts_at = world.starts_at();
    let new_start = starts_at + TimeDelta::hours(1);
    world
        .event(&[
            EventFact::EventRescheduled {
                starts_at: new_start,
                ends_at: new_start + TimeDelta::hours(3),
                previous_starts_at: starts_at,
                previous_ends_at: starts_at + TimeDelta::hours(3),
                rescheduled_at: now(),
            },
            EventFact::ReminderDue {
                offset_seconds: 3_600,
                starts_at: new_start,
                due_at: new_start - TimeDelta::hours(1),
                reminded_at: now(),
            },
        ])
        .await;
    // The hold warning comes before the event is called off (which ends the hold).
    world
        .sink
        .wait_for(|mails| {
            to(mails, "cy@example.org")
                .iter()
                .any(|m| m.subject().contains("held until"))
        })
        .await;
    world
        .event(&[
            EventFact::EventCancelled {
                reason: Some("The stage collapsed".into()),
                cancelled_at: now(),
            },
            EventFact::RegistrationCancelled {
                registration_id: r_ada,
                ticket_type_id: world.free,
                quantity: 2,
                cancelled_at: now(),
            },
            EventFact::RegistrationCancelled {
                registration_id: r_bert,
                ticket_type_id: world.free,
                quantity: 1,
                cancelled_at: now(),
            },
            EventFact::RegistrationCancelled {
                registration_id: r_cy,
                ticket_type_id: world.paid,
                quantity: 1,
                cancelled_at: now(),
            },
        ])
        .await;
    let rows = world.settled(Channel::Email).await;
    let unsent: Vec<(&str, &str)> = rows
        .iter()
        .filter(|(_, _, _, status)| status != "sent")
        .map(|(_, kind, _, status)| (kind.as_str(), status.as_str()))
        .collect();
    assert_eq!(
        unsent,
        [("hold_expiring", "dropped")],
        "Eve paid her hold: no warning"
    );
    let mails = world.sink.messages();

    // Ada (no account: English): tickets, new times, reminder, cancellation.
    let for_ada = to(&mails, "ada@example.org");
    assert_eq!(
        for_ada.len(),
        4,
        "{:?}",
        for_ada.iter().map(SunkMail::subject).collect::<Vec<_>>()
    );
    let tickets = with_subject(&for_ada, "Your tickets for Festival").text();
    assert!(
        tickets.contains("Hello Ada,")
            && tickets.contains(&code("ada-1").0)
            && tickets.contains(&code("ada-2").0),
        "{tickets}"
    );
    assert!(
        tickets.contains("Hall A, Berlin") && tickets.contains("2 × Standard"),
        "{tickets}"
    );
    let moved = with_subject(&for_ada, "Festival has moved").text();
    assert!(
        moved.contains("20:00 (Europe/Berlin)")
            && moved.contains("instead of")
            && moved.contains("19:00"),
        "{moved}"
    );
    let reminder = with_subject(&for_ada, "Reminder: Festival").text();
    assert!(
        reminder.contains("(in 1 hour)") && reminder.contains(&code("ada-2").0),
        "{reminder}"
    );
    let called_off = with_subject(&for_ada, "Festival is cancelled").text();
    assert!(called_off.contains("The stage collapsed"), "{called_off}");
    assert!(
        with_subject(&for_ada, "Your tickets")
            .part("text/html")
            .contains("<strong>Festival</strong>")
    );

    // Bert's account says de-AT: German.
    let for_bert = to(&mails, "bert@example.org");
    assert_eq!(
        for_bert.len(),
        4,
        "{:?}",
        for_bert.iter().map(SunkMail::subject).collect::<Vec<_>>()
    );
    let tickets = with_subject(&for_bert, "Deine Tickets für Festival").text();
    assert!(
        tickets.contains("Hallo Bert,") && tickets.contains(&code("bert-1").0),
        "{tickets}"
    );
    assert!(
        with_subject(&for_bert, "Erinnerung: Festival")
            .text()
            .contains("(in 1 Stunde)")
    );
    assert!(
        with_subject(&for_bert, "ist verschoben")
            .text()
            .contains("Uhr (Europe/Berlin)")
    );
    assert!(
        with_subject(&for_bert, "ist abgesagt")
            .text()
            .contains("Grund: The stage collapsed")
    );

    // Cy held seats: the warning, new times, cancellation; no reminder (not confirmed).
    let for_cy = to(&mails, "cy@example.org");
    assert_eq!(
        for_cy.len(),
        3,
        "{:?}",
        for_cy.iter().map(SunkMail::subject).collect::<Vec<_>>()
    );
    let warning = with_subject(&for_cy, "are held until").text();
    assert!(
        warning.contains("EUR 25.00") && warning.contains("1 × VIP"),
        "{warning}"
    );

    // Dee waits: the offer with its deadline.
    let for_dee = to(&mails, "dee@example.org");
    assert_eq!(for_dee.len(), 1);
    let offer = with_subject(&for_dee, "are waiting for you").text();
    let deadline = marquee_notifier::templates::format_time(offer_deadline, "Europe/Berlin", "en");
    assert!(offer.contains(&deadline), "{offer} lacks {deadline}");

    // Eve paid, cancelled and was refunded; her paid hold's warning was dropped.
    let for_eve = to(&mails, "eve@example.org");
    assert_eq!(
        for_eve.len(),
        3,
        "{:?}",
        for_eve.iter().map(SunkMail::subject).collect::<Vec<_>>()
    );
    assert!(
        with_subject(&for_eve, "Your tickets")
            .text()
            .contains("(paid: EUR 25.00)")
    );
    assert!(
        with_subject(&for_eve, "is cancelled")
            .text()
            .contains("EUR 25.00 you paid will be refunded")
    );
    assert!(
        with_subject(&for_eve, "Your refund")
            .text()
            .contains("re_42")
    );
    world.stop().await;
}

#[tokio::test]
async fn a_fact_read_twice_and_a_restart_send_nothing_twice() {
    let mut world = World::new().await;
    world
        .event(&[
            confirmed(
                RegistrationId(Uuid::now_v7()),
                world.free,
                person("Ada", "ada@example.org"),
                &["a-1"],
            ),
            confirmed(
                RegistrationId(Uuid::now_v7()),
                world.free,
                person("Ada", "ada@example.org"),
                &["a-2"],
            ),
        ])
        .await;
    world.sink.wait_for(|mails| mails.len() == 2).await;
    world.settled(Channel::Email).await;
    world.stop().await;

    // The checkpoint goes back to the start: every fact is delivered again, to a new process.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&world.url).await.expect("database");
    sqlx::query("UPDATE notifier_checkpoints SET position = 0")
        .execute(&pool)
        .await
        .expect("rewound");
    world.start().await;
    world
        .event(&[confirmed(
            RegistrationId(Uuid::now_v7()),
            world.free,
            person("Bo", "bo@example.org"),
            &["b-1"],
        )])
        .await;
    world.sink.wait_for(|mails| mails.len() >= 3).await;
    let rows = world.settled(Channel::Email).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let mails = world.sink.messages();
    assert_eq!(
        mails.len(),
        3,
        "{:?}",
        mails.iter().map(SunkMail::subject).collect::<Vec<_>>()
    );
    let mut ids: Vec<String> = mails.iter().map(SunkMail::message_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one Message-ID per delivery");
    world.stop().await;
}

#[tokio::test]
async fn a_send_killed_before_the_server_took_it_is_sent_once_by_the_next_process() {
    let mut world = World::new().await;
    world.sink.hold_next();
    let holding = world.sink.holding();
    world
        .event(&[confirmed(
            RegistrationId(Uuid::now_v7()),
            world.free,
            person("Ada", "ada@example.org"),
            &["a-1"],
        )])
        .await;
    holding.await;
    // Killed with the message's data sent and the server's answer outstanding.
    world.kill().await;
    assert!(world.sink.messages().is_empty());
    world.start().await;
    world.sink.wait_for(|mails| !mails.is_empty()).await;
    let rows = world.settled(Channel::Email).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].3, "sent");
    world
        .event(&[confirmed(
            RegistrationId(Uuid::now_v7()),
            world.free,
            person("Bo", "bo@example.org"),
            &["b-1"],
        )])
        .await;
    world.sink.wait_for(|mails| mails.len() >= 2).await;
    world.settled(Channel::Email).await;
    let mails = world.sink.messages();
    assert_eq!(to(&mails, "ada@example.org").len(), 1, "sent once");
    assert_eq!(mails.len(), 2);
    world.stop().await;
}

/// Python's own HMAC says whether `signature` (`t=…,v1=…`) signs `body` with `secret`.
fn python_verifies(secret: &str, signature: &str, body: &str) -> bool {
    let script = r#"
import hashlib, hmac, sys
secret, header = sys.argv[1], sys.argv[2]
parts = dict(p.split("=", 1) for p in header.split(","))
body = sys.stdin.buffer.read()
mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
sys.exit(0 if hmac.compare_digest(mac, parts["v1"]) else 1)
"#;
    let mut child = match Command::new("python3")
        .args(["-c", script, secret, signature])
        .stdin(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("this test checks signatures with python3, which could not run: {e}"),
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(body.as_bytes()).expect("body to python3");
    }
    child.wait().expect("python3 ran").success()
}

async fn endpoint(world: &World, url: &str, fact_types: &[&str]) -> (Webhooks, Uuid, String) {
    let webhooks = Webhooks::connect(&world.url, world.vault.clone())
        .await
        .expect("webhooks");
    let webhook_id = Uuid::now_v7();
    let (_, secret) = webhooks
        .create(
            NewEndpoint {
                webhook_id,
                organization_id: world.organization,
                url: url.to_owned(),
                fact_types: fact_types.iter().map(|t| (*t).to_owned()).collect(),
                after_position: world.log.head_position().await.expect("head"),
                created_by: None,
            },
            now(),
        )
        .await
        .expect("endpoint");
    (webhooks, webhook_id, secret)
}

#[tokio::test]
async fn a_webhook_delivery_carries_the_fact_and_a_signature_python_verifies() {
    let mut world = World::new().await;
    let receiver = HttpReceiver::start(&[]).await.expect("receiver");
    let (webhooks, webhook_id, secret) =
        endpoint(&world, &receiver.url(), &["RegistrationConfirmed"]).await;
    let registration = RegistrationId(Uuid::now_v7());
    world
        .event(&[
            confirmed(
                registration,
                world.free,
                person("Ada", "ada@example.org"),
                &["a-1"],
            ),
            EventFact::EventCapacityChanged { capacity: 90 },
        ])
        .await;
    let received = receiver.wait_for(|r| !r.is_empty()).await;
    world.settled(Channel::Webhook).await;
    assert_eq!(receiver.received().len(), 1, "only the fact type asked for");
    let delivery: &Received = &received[0];
    let body: Value = serde_json::from_str(&delivery.body).expect("JSON");
    assert_eq!(body["type"], "RegistrationConfirmed");
    assert_eq!(body["organization_id"], world.organization.to_string());
    assert_eq!(body["fact"]["stream"], world.event.stream());
    assert_eq!(
        body["fact"]["data"]["registration_id"],
        registration.0.to_string()
    );
    assert_eq!(body["fact"]["data"]["attendee"]["email"], "ada@example.org");
    assert_eq!(
        delivery.header("marquee-fact-type"),
        Some("RegistrationConfirmed")
    );
    assert_eq!(delivery.header("marquee-delivery"), body["id"].as_str());
    let signature = delivery.header("marquee-signature").expect("signed");
    assert!(
        python_verifies(&secret, signature, &delivery.body),
        "{signature}"
    );
    assert!(!python_verifies("whsec_wrong", signature, &delivery.body));
    assert!(!python_verifies(
        &secret,
        signature,
        &delivery.body.replace("Ada", "Eve")
    ));

    // A ping is signed the same way.
    let stored = webhooks
        .get(world.organization, webhook_id)
        .await
        .expect("read")
        .expect("endpoint");
    webhooks.ping(&stored, now()).await.expect("ping");
    let received = receiver.wait_for(|r| r.len() == 2).await;
    let ping: Value = serde_json::from_str(&received[1].body).expect("JSON");
    assert_eq!(ping["type"], "ping");
    let signature = received[1].header("marquee-signature").expect("signed");
    assert!(python_verifies(&secret, signature, &received[1].body));
    world.stop().await;
}

#[tokio::test]
async fn a_receiver_failing_three_times_then_answering_200_gets_the_delivery_once() {
    let mut world = World::new().await;
    let receiver = HttpReceiver::start(&[500, 500, 500])
        .await
        .expect("receiver");
    let (webhooks, webhook_id, _) = endpoint(&world, &receiver.url(), &["*"]).await;
    world
        .event(&[EventFact::EventCapacityChanged { capacity: 90 }])
        .await;
    world.settled(Channel::Webhook).await;
    let received = receiver.received();
    let statuses: Vec<u16> = received.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    let ids: Vec<Option<&str>> = received
        .iter()
        .map(|r| r.header("marquee-delivery"))
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one delivery, four attempts: {ids:?}"
    );
    let log = webhooks
        .deliveries(webhook_id, 10)
        .await
        .expect("delivery log");
    assert_eq!(log.len(), 1);
    let delivery = &log[0];
    assert_eq!((delivery.status.as_str(), delivery.attempts), ("sent", 4));
    assert_eq!(delivery.last_status, Some(200));
    let outcomes: Vec<(&str, Option<u16>)> = delivery
        .attempt_log
        .iter()
        .map(|a| (a.outcome.as_str(), a.status_code))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("failed", Some(500)),
            ("failed", Some(500)),
            ("failed", Some(500)),
            ("sent", Some(200))
        ]
    );
    assert!(
        delivery.attempt_log[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("500"))
    );
    world.stop().await;
}

#[tokio::test]
async fn a_receiver_answering_410_disables_the_endpoint() {
    let mut world = World::new().await;
    let receiver = HttpReceiver::start(&[410]).await.expect("receiver");
    let (webhooks, webhook_id, _) = endpoint(&world, &receiver.url(), &["*"]).await;
    world
        .event(&[EventFact::EventCapacityChanged { capacity: 90 }])
        .await;
    world.settled(Channel::Webhook).await;
    let stored = webhooks
        .get(world.organization, webhook_id)
        .await
        .expect("read")
        .expect("endpoint");
    assert_eq!(stored.status, "disabled");
    assert!(stored.disabled_reason.is_some_and(|r| r.contains("410")));
    world
        .event(&[EventFact::EventCapacityChanged { capacity: 80 }])
        .await;
    world.settled(Channel::Webhook).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing more goes to a disabled endpoint"
    );
    let log = webhooks
        .deliveries(webhook_id, 10)
        .await
        .expect("delivery log");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, "failed");
    world.stop().await;
}

#[tokio::test]
async fn erased_people_get_no_mail_and_webhooks_carry_no_data_of_theirs() {
    let mut world = World::new().await;
    let receiver = HttpReceiver::start(&[]).await.expect("receiver");
    endpoint(&world, &receiver.url(), &["RegistrationConfirmed"]).await;
    // Frank's hold warning is planned, then Frank is erased before it is due.
    let frank = person("Frank", "frank@example.org");
    let frank_id = world.vault.person_id(&frank.email);
    let sealed = |text: &str| {
        let (vault, frank_id, text) = (world.vault.clone(), frank_id.clone(), text.to_owned());
        async move { vault.seal(&frank_id, &text).await.expect("sealed") }
    };
    let sealed_frank = person(&sealed("Frank").await, &sealed("frank@example.org").await);
    world
        .event(&[held(
            RegistrationId(Uuid::now_v7()),
            world.paid,
            sealed_frank.clone(),
            "f-1",
            TimeDelta::seconds(6),
        )])
        .await;
    world.caught_up().await;
    world.vault.erase(&frank_id).await.expect("erased");
    world
        .append(
            &UserId(Uuid::now_v7()).stream(),
            &[UserFact::UserErased {
                erased_at: now(),
                person_id: frank_id.clone(),
            }],
        )
        .await;
    // After the erasure his registration is still a fact; it names no one any more.
    world
        .event(&[
            confirmed(
                RegistrationId(Uuid::now_v7()),
                world.free,
                sealed_frank,
                &["f-2"],
            ),
            confirmed(
                RegistrationId(Uuid::now_v7()),
                world.free,
                person("Ada", "ada@example.org"),
                &["a-1"],
            ),
        ])
        .await;
    world.sink.wait_for(|mails| !mails.is_empty()).await;
    let rows = world.settled(Channel::Email).await;
    let statuses: Vec<(&str, &str)> = rows
        .iter()
        .map(|(_, kind, _, s)| (kind.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("hold_expiring", "dropped"),
            ("registration_confirmed", "sent")
        ]
    );
    let mails = world.sink.messages();
    assert_eq!(mails.len(), 1);
    assert!(to(&mails, "ada@example.org").len() == 1);
    world.settled(Channel::Webhook).await;
    let bodies: Vec<String> = receiver.received().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies.len(),
        2,
        "Frank's registration and Ada's are delivered"
    );
    for body in &bodies[..1] {
        assert!(
            !body.contains("Frank") && !body.contains("frank@"),
            "{body}"
        );
        assert!(body.contains("[erased]"), "{body}");
    }
    assert!(bodies[1].contains("ada@example.org"));
    world.stop().await;
}
