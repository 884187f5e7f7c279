//! The scheduler against a real engine on the in-memory log, with the timers given by hand:
//! a due hold is expired once even when two schedulers fire it, a hold not yet due is left
//! alone, and a due refund goes to the provider and is recorded once.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use marquee_command_api::engine::{Answer, CommandContext, Engine, EventAggregate};
use marquee_domain::event::{Attendee, EventCommand, EventFact, RegistrationStatus, VenueInfo};
use marquee_domain::{
    EventId, Money, PaymentId, RegistrationId, TicketCode, TicketTypeId, VenueId,
};
use marquee_payments::{ChargeOutcome, ChargeRequest, PaymentGateway, TestGateway};
use marquee_scheduler::{DueTimer, Scheduler, SchedulerConfig, TimerKind, TimerSource};
use marquee_store::connect;
use serde_json::json;
use uuid::Uuid;

/// A clock the test moves by hand.
#[derive(Clone)]
struct Clock(Arc<Mutex<DateTime<Utc>>>);

impl Clock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(
            Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0)
                .single()
                .expect("time"),
        )))
    }
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
    fn advance(&self, by: TimeDelta) {
        *self.0.lock().expect("clock") += by;
    }
}

/// Timers given by the test, due or not by the clock, as the read model would list them.
struct Given(Vec<DueTimer>);

#[async_trait::async_trait]
impl TimerSource for Given {
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueTimer>, String> {
        Ok(self
            .0
            .iter()
            .filter(|t| t.due_at <= now)
            .take(limit)
            .cloned()
            .collect())
    }
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

/// An event with a paid ticket type and one hold of 900 s; returns the event and the hold.
async fn held(engine: &Engine) -> (EventId, RegistrationId) {
    let event_id = EventId(Uuid::now_v7());
    let venue_id = VenueId(Uuid::now_v7());
    let ticket_type_id = TicketTypeId(Uuid::now_v7());
    let registration_id = RegistrationId(Uuid::now_v7());
    let starts = engine.now() + TimeDelta::days(10);
    let commands = vec![
        EventCommand::DraftEvent {
            event_id,
            venue: Some(VenueInfo {
                venue_id,
                capacity: 10,
            }),
            title: "Timed".into(),
            description: String::new(),
            category: "x".into(),
            starts_at: starts,
            ends_at: starts + TimeDelta::hours(2),
            timezone: "UTC".into(),
            capacity: None,
            max_per_order: None,
        },
        EventCommand::AddTicketType {
            ticket_type_id,
            name: "Paid".into(),
            price: Money {
                amount_minor: 1000,
                currency: "EUR".into(),
            },
            quantity: 10,
            sales_start: None,
            sales_end: None,
        },
        EventCommand::Publish,
        EventCommand::Reserve {
            registration_id,
            ticket_type_id,
            attendee: Attendee {
                name: "Ada".into(),
                email: "ada@example.com".into(),
            },
            quantity: 1,
            ticket_codes: vec![TicketCode("a".repeat(32))],
            answers: Default::default(),
        },
    ];
    engine
        .execute::<EventAggregate>(&event_id.stream(), commands, &context(), ok)
        .await
        .expect("set up");
    (event_id, registration_id)
}

async fn facts(engine: &Engine, event_id: EventId) -> Vec<String> {
    engine
        .store()
        .read_stream(&event_id.stream(), 0, 1000)
        .await
        .expect("read")
        .into_iter()
        .map(|f| f.fact_type)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_hold_is_expired_once_even_when_two_schedulers_fire_it() {
    let clock = Clock::new();
    let store = connect("memory:").await.expect("store");
    let now = clock.clone();
    let engine = Arc::new(Engine::new(store, Arc::new(move || now.now())));
    let (event_id, registration_id) = held(&engine).await;
    let timer = DueTimer {
        kind: TimerKind::ExpireHold,
        event_id: event_id.0,
        target_id: registration_id.0.to_string(),
        due_at: clock.now() + TimeDelta::seconds(900),
    };
    let timers: Arc<dyn TimerSource> = Arc::new(Given(vec![timer]));
    let gateway: Arc<dyn PaymentGateway> = Arc::new(TestGateway::new());
    let mut first = Scheduler::new(
        engine.clone(),
        timers.clone(),
        gateway.clone(),
        SchedulerConfig::default(),
    );
    let mut second = Scheduler::new(engine.clone(), timers, gateway, SchedulerConfig::default());

    // Not due yet: nothing happens.
    first.round().await;
    assert!(
        !facts(&engine, event_id)
            .await
            .contains(&"HoldExpired".to_owned())
    );

    clock.advance(TimeDelta::seconds(901));
    tokio::join!(first.round(), second.round());
    let expired = facts(&engine, event_id)
        .await
        .into_iter()
        .filter(|t| t == "HoldExpired")
        .count();
    assert_eq!(expired, 1, "fired twice, expired once");
    let state = engine
        .load::<EventAggregate>(&event_id.stream())
        .await
        .expect("load")
        .state;
    assert_eq!(
        state.registrations[&registration_id].status,
        RegistrationStatus::Expired
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_refund_is_asked_of_the_provider_and_recorded_once() {
    let clock = Clock::new();
    let store = connect("memory:").await.expect("store");
    let now = clock.clone();
    let engine = Arc::new(Engine::new(store, Arc::new(move || now.now())));
    let (event_id, registration_id) = held(&engine).await;
    let gateway = Arc::new(TestGateway::new());
    let charged = gateway
        .charge(ChargeRequest {
            idempotency_key: "pay-1".into(),
            amount: Money {
                amount_minor: 1000,
                currency: "EUR".into(),
            },
            card_number: TestGateway::CARD_SUCCEEDS.into(),
            description: "Timed".into(),
        })
        .await
        .expect("charge");
    let ChargeOutcome::Succeeded { payment_id } = charged else {
        panic!("the test card succeeds: {charged:?}")
    };
    let payment_id = PaymentId(payment_id);
    let paid_and_cancelled = vec![
        EventCommand::RecordPayment {
            registration_id,
            payment_id: payment_id.clone(),
            amount: Money {
                amount_minor: 1000,
                currency: "EUR".into(),
            },
        },
        EventCommand::CancelRegistration { registration_id },
    ];
    engine
        .execute::<EventAggregate>(&event_id.stream(), paid_and_cancelled, &context(), ok)
        .await
        .expect("paid, then cancelled");
    let timer = DueTimer {
        kind: TimerKind::Refund,
        event_id: event_id.0,
        target_id: payment_id.0.clone(),
        due_at: clock.now(),
    };
    let mut scheduler = Scheduler::new(
        engine.clone(),
        Arc::new(Given(vec![timer])),
        gateway.clone(),
        SchedulerConfig {
            refire_after: std::time::Duration::ZERO,
            ..SchedulerConfig::default()
        },
    );
    scheduler.round().await;
    scheduler.round().await;
    assert_eq!(gateway.refunds().len(), 1, "one refund at the provider");
    let completed: Vec<EventFact> = engine
        .store()
        .read_stream(&event_id.stream(), 0, 1000)
        .await
        .expect("read")
        .into_iter()
        .filter(|f| f.fact_type == "RefundCompleted")
        .map(|f| {
            marquee_domain::FactCodec::decode(&f.fact_type, f.schema_version, f.data)
                .expect("decode")
        })
        .collect();
    assert_eq!(completed.len(), 1, "recorded once");
    let EventFact::RefundCompleted { refund_id, .. } = &completed[0] else {
        unreachable!("filtered")
    };
    assert_eq!(*refund_id, gateway.refunds()[0].refund_id);
}
