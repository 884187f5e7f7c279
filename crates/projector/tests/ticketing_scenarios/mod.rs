//! Holds, payments, the waitlist, check-ins and timers in the read models, shared by
//! `ticketing.rs` (in-memory and one SQLite file) and `ticketing_postgres.rs`, so every engine is
//! held to the same assertions. Steps are projected one by one where it matters, so that a
//! later step reads what an earlier batch wrote.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use marquee_domain::event::{
    AnswerValue, Answers, Attendee, EventFact, PaymentStatus, RefundReason, RegistrationStatus,
    WaitlistStatus,
};
use marquee_domain::{
    EventId, Money, PaymentId, RegistrationId, TicketCode, TicketTypeId, VenueId, WaitlistEntryId,
};
use marquee_projector::queries::{EventDetails, GuestListEntry, GuestListFilter};
use marquee_projector::{ReadModels, Timer, TimerKind};
use marquee_store::EventStore;
use uuid::Uuid;

use crate::common::{
    Backend, Redelivering, append, cancelled, confirmed, details, drafted, project_until,
    published, published_event, ticket_type, venue_created,
};

pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("timestamp")
}

pub fn attendee(name: &str) -> Attendee {
    Attendee {
        name: name.to_owned(),
        email: format!("{}@example.org", name.to_lowercase()),
    }
}

pub fn codes(quantity: u32) -> Vec<TicketCode> {
    (0..quantity)
        .map(|_| TicketCode(Uuid::new_v4().simple().to_string()))
        .collect()
}

pub fn eur(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: "EUR".to_owned(),
    }
}

/// `quantity` seats at 25 EUR each held until `expires_at`, with these codes.
pub fn held_with(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    name: &str,
    ticket_codes: Vec<TicketCode>,
    expires_at: &str,
) -> EventFact {
    let quantity = u32::try_from(ticket_codes.len()).expect("few codes");
    EventFact::SeatsHeld {
        registration_id: registration,
        ticket_type_id: ticket_type,
        attendee: attendee(name),
        quantity,
        ticket_codes,
        price: eur(2500 * i64::from(quantity)),
        expires_at: at(expires_at),
        held_at: at("2026-02-02T10:00:00Z"),
    }
}

pub fn held(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    quantity: u32,
    expires_at: &str,
) -> EventFact {
    held_with(
        registration,
        ticket_type,
        "Hal",
        codes(quantity),
        expires_at,
    )
}

pub fn confirmed_with(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    name: &str,
    ticket_codes: Vec<TicketCode>,
) -> EventFact {
    EventFact::RegistrationConfirmed {
        registration_id: registration,
        ticket_type_id: ticket_type,
        attendee: attendee(name),
        quantity: u32::try_from(ticket_codes.len()).expect("few codes"),
        ticket_codes,
        confirmed_at: at("2026-02-02T09:00:00Z"),
    }
}

pub fn payment_pending(registration: RegistrationId, payment: &str) -> EventFact {
    EventFact::PaymentPending {
        registration_id: registration,
        payment_id: PaymentId(payment.to_owned()),
        reported_at: at("2026-02-02T10:01:00Z"),
    }
}

pub fn payment_received(registration: RegistrationId, payment: &str, amount: i64) -> EventFact {
    EventFact::PaymentReceived {
        registration_id: registration,
        payment_id: PaymentId(payment.to_owned()),
        amount: eur(amount),
        received_at: at("2026-02-02T10:02:00Z"),
    }
}

pub fn hold_confirmed(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    quantity: u32,
    payment: &str,
    late: bool,
) -> EventFact {
    EventFact::HoldConfirmed {
        registration_id: registration,
        ticket_type_id: ticket_type,
        quantity,
        payment_id: PaymentId(payment.to_owned()),
        late,
        confirmed_at: at("2026-02-02T10:03:00Z"),
    }
}

pub fn hold_expired(
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    quantity: u32,
) -> EventFact {
    EventFact::HoldExpired {
        registration_id: registration,
        ticket_type_id: ticket_type,
        quantity,
        expired_at: at("2026-02-02T10:15:00Z"),
    }
}

pub fn refund_due(registration: RegistrationId, payment: &str, due_at: &str) -> EventFact {
    EventFact::RefundDue {
        registration_id: registration,
        payment_id: PaymentId(payment.to_owned()),
        amount: eur(2500),
        reason: RefundReason::AttendeeCancelled,
        due_at: at(due_at),
    }
}

pub fn refund_completed(registration: RegistrationId, payment: &str) -> EventFact {
    EventFact::RefundCompleted {
        registration_id: registration,
        payment_id: PaymentId(payment.to_owned()),
        refund_id: format!("re_{payment}"),
        completed_at: at("2026-02-04T09:00:00Z"),
    }
}

pub fn joined(
    entry: WaitlistEntryId,
    ticket_type: TicketTypeId,
    name: &str,
    quantity: u32,
) -> EventFact {
    EventFact::WaitlistJoined {
        entry_id: entry,
        ticket_type_id: ticket_type,
        attendee: attendee(name),
        quantity,
        answers: Answers::new(),
        joined_at: at("2026-02-02T11:00:00Z"),
    }
}

pub fn offer_made(
    entry: WaitlistEntryId,
    ticket_type: TicketTypeId,
    quantity: u32,
    expires_at: &str,
) -> EventFact {
    EventFact::WaitlistOfferMade {
        entry_id: entry,
        ticket_type_id: ticket_type,
        quantity,
        expires_at: at(expires_at),
        offered_at: at("2026-02-02T12:00:00Z"),
    }
}

pub fn offer_expired(
    entry: WaitlistEntryId,
    ticket_type: TicketTypeId,
    quantity: u32,
) -> EventFact {
    EventFact::WaitlistOfferExpired {
        entry_id: entry,
        ticket_type_id: ticket_type,
        quantity,
        expired_at: at("2026-02-03T12:00:00Z"),
    }
}

pub fn offer_claimed(
    entry: WaitlistEntryId,
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    quantity: u32,
) -> EventFact {
    EventFact::WaitlistOfferClaimed {
        entry_id: entry,
        registration_id: registration,
        ticket_type_id: ticket_type,
        quantity,
        claimed_at: at("2026-02-02T13:00:00Z"),
    }
}

pub fn left(
    entry: WaitlistEntryId,
    ticket_type: TicketTypeId,
    quantity: u32,
    had_offer: bool,
) -> EventFact {
    EventFact::WaitlistLeft {
        entry_id: entry,
        ticket_type_id: ticket_type,
        quantity,
        had_offer,
        left_at: at("2026-02-02T14:00:00Z"),
    }
}

pub fn checked_in(
    code: &TicketCode,
    registration: RegistrationId,
    ticket_type: TicketTypeId,
    nonce: &str,
    scanned_at: &str,
) -> EventFact {
    EventFact::TicketCheckedIn {
        ticket_code: code.clone(),
        registration_id: registration,
        ticket_type_id: ticket_type,
        nonce: nonce.to_owned(),
        scanned_at: at(scanned_at),
        recorded_at: at("2026-06-01T18:30:00Z"),
    }
}

pub fn check_in_reverted(code: &TicketCode, registration: RegistrationId) -> EventFact {
    EventFact::CheckInReverted {
        ticket_code: code.clone(),
        registration_id: registration,
        reverted_at: at("2026-06-01T18:40:00Z"),
    }
}

fn new_registration() -> RegistrationId {
    RegistrationId(Uuid::now_v7())
}

fn new_entry() -> WaitlistEntryId {
    WaitlistEntryId(Uuid::now_v7())
}

/// `(confirmed, held, offered, available, waitlist)` of one ticket type.
pub fn counts(details: &EventDetails, ticket_type: TicketTypeId) -> (u64, u64, u64, u64, u64) {
    let t = details
        .ticket_types
        .iter()
        .find(|t| t.ticket_type_id == ticket_type.0)
        .expect("ticket type");
    (t.confirmed, t.held, t.offered, t.available, t.waitlist)
}

/// `(confirmed, held, offered, available, waitlist)` of the event.
pub fn totals(details: &EventDetails) -> (u64, u64, u64, u64, u64) {
    let e = &details.event;
    (e.confirmed, e.held, e.offered, e.available, e.waitlist)
}

async fn guests(read: &ReadModels, event: EventId, filter: GuestListFilter) -> Vec<GuestListEntry> {
    read.guest_list(
        event.0,
        &GuestListFilter {
            limit: if filter.limit == 0 { 100 } else { filter.limit },
            ..filter
        },
    )
    .await
    .expect("guest list")
    .expect("event known")
}

async fn guest(read: &ReadModels, event: EventId, registration: RegistrationId) -> GuestListEntry {
    guests(read, event, GuestListFilter::default())
        .await
        .into_iter()
        .find(|g| g.registration_id == registration.0)
        .expect("registration on the guest list")
}

/// Every pending timer, as `(kind, target)`, oldest first.
async fn timers(read: &ReadModels) -> Vec<(TimerKind, String)> {
    read.due_timers(at("2100-01-01T00:00:00Z"), 1000)
        .await
        .expect("timers")
        .into_iter()
        .map(|t| (t.kind, t.target_id))
        .collect()
}

/// Appends facts to the event and projects them: one batch (or more) of their own.
async fn step(
    store: &Arc<dyn EventStore>,
    read: &ReadModels,
    event: EventId,
    facts: &[EventFact],
) -> u64 {
    let position = append(store, &event.stream(), facts).await;
    project_until(store.clone(), read, position).await;
    position
}

/// A published event of capacity 10 with one paid ticket type A of 4 seats (25 EUR) and one
/// free type B of 10 seats.
struct Small {
    event: EventId,
    a: TicketTypeId,
    b: TicketTypeId,
}

async fn small_event(store: &Arc<dyn EventStore>) -> Small {
    let venue = VenueId(Uuid::now_v7());
    let event = EventId(Uuid::now_v7());
    let (a, b) = (TicketTypeId(Uuid::now_v7()), TicketTypeId(Uuid::now_v7()));
    append(
        store,
        &venue.stream(),
        &[venue_created(venue, "Club", "Oslo", 100)],
    )
    .await;
    append(
        store,
        &event.stream(),
        &[
            drafted(event, venue, "Small Night", "2026-06-01T18:00:00Z", 10),
            ticket_type(a, "Paid", 2500, 4),
            ticket_type(b, "Free", 0, 10),
            published(),
        ],
    )
    .await;
    Small { event, a, b }
}

// ---- scenarios -------------------------------------------------------------------------------

pub async fn a_paid_hold_counts_as_held_until_paid_then_as_confirmed(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let r = new_registration();

    step(
        &store,
        &read,
        f.event,
        &[held(r, f.a, 3, "2026-02-02T10:15:00Z")],
    )
    .await;
    let d = details(&read, f.event).await;
    assert_eq!(counts(&d, f.a), (0, 3, 0, 27, 0), "held seats are taken");
    assert_eq!(counts(&d, f.b), (0, 0, 0, 30, 0));
    assert_eq!(
        totals(&d),
        (0, 3, 0, 47, 0),
        "the event counts held seats too"
    );
    let g = guest(&read, f.event, r).await;
    assert_eq!(g.status, RegistrationStatus::Held);
    assert_eq!(g.price.as_ref().map(|p| p.amount_minor), Some(7500));
    assert_eq!(g.hold_expires_at, Some(at("2026-02-02T10:15:00Z")));
    assert_eq!(g.payment, None);

    step(&store, &read, f.event, &[payment_pending(r, "pay_1")]).await;
    let g = guest(&read, f.event, r).await;
    assert_eq!(
        g.payment.map(|p| (p.payment_id, p.status)),
        Some(("pay_1".to_owned(), PaymentStatus::Pending))
    );
    assert_eq!(
        counts(&details(&read, f.event).await, f.a),
        (0, 3, 0, 27, 0)
    );

    step(
        &store,
        &read,
        f.event,
        &[
            payment_received(r, "pay_1", 7500),
            hold_confirmed(r, f.a, 3, "pay_1", false),
        ],
    )
    .await;
    let d = details(&read, f.event).await;
    assert_eq!(counts(&d, f.a), (3, 0, 0, 27, 0), "held moved to confirmed");
    assert_eq!(totals(&d), (3, 0, 0, 47, 0));
    let g = guest(&read, f.event, r).await;
    assert_eq!(g.status, RegistrationStatus::Confirmed);
    assert_eq!(g.confirmed_at, Some(at("2026-02-02T10:03:00Z")));
    assert_eq!(
        g.payment.map(|p| (p.payment_id, p.status)),
        Some(("pay_1".to_owned(), PaymentStatus::Received))
    );
    assert_eq!(g.tickets.len(), 3, "the codes issued with the hold");
}

pub async fn an_expired_hold_gives_its_seats_back(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let (r1, r2) = (new_registration(), new_registration());
    step(
        &store,
        &read,
        f.event,
        &[
            held(r1, f.a, 2, "2026-02-02T10:15:00Z"),
            held(r2, f.a, 4, "2026-02-02T10:15:00Z"),
            payment_pending(r1, "pay_1"),
            EventFact::PaymentDeclined {
                registration_id: r1,
                payment_id: PaymentId("pay_1".to_owned()),
                reason: "card declined".to_owned(),
                declined_at: at("2026-02-02T10:05:00Z"),
            },
        ],
    )
    .await;
    assert_eq!(
        counts(&details(&read, f.event).await, f.a),
        (0, 6, 0, 24, 0)
    );
    step(&store, &read, f.event, &[hold_expired(r1, f.a, 2)]).await;
    let d = details(&read, f.event).await;
    assert_eq!(
        counts(&d, f.a),
        (0, 4, 0, 26, 0),
        "only the expired hold's seats"
    );
    assert_eq!(totals(&d), (0, 4, 0, 46, 0));
    let g = guest(&read, f.event, r1).await;
    assert_eq!(g.status, RegistrationStatus::Expired);
    assert_eq!(g.expired_at, Some(at("2026-02-02T10:15:00Z")));
    assert_eq!(
        g.payment.map(|p| p.status),
        Some(PaymentStatus::Declined),
        "the declined payment stays on record"
    );
}

pub async fn a_late_payment_confirms_an_expired_hold_again(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let (late, refunded) = (new_registration(), new_registration());
    step(
        &store,
        &read,
        f.event,
        &[
            held(late, f.a, 2, "2026-02-02T10:15:00Z"),
            held(refunded, f.a, 1, "2026-02-02T10:15:00Z"),
            hold_expired(late, f.a, 2),
            hold_expired(refunded, f.a, 1),
        ],
    )
    .await;
    assert_eq!(
        counts(&details(&read, f.event).await, f.a),
        (0, 0, 0, 30, 0)
    );

    // The seats were still free: confirmed again. The other's seats were gone: refunded.
    step(
        &store,
        &read,
        f.event,
        &[
            payment_received(late, "pay_late", 5000),
            hold_confirmed(late, f.a, 2, "pay_late", true),
            payment_received(refunded, "pay_gone", 2500),
            refund_due(refunded, "pay_gone", "2026-02-02T10:20:00Z"),
        ],
    )
    .await;
    let d = details(&read, f.event).await;
    assert_eq!(
        counts(&d, f.a),
        (2, 0, 0, 28, 0),
        "a late confirmation adds confirmed seats"
    );
    let g = guest(&read, f.event, late).await;
    assert_eq!(g.status, RegistrationStatus::Confirmed);
    assert_eq!(g.expired_at, Some(at("2026-02-02T10:15:00Z")));
    let g = guest(&read, f.event, refunded).await;
    assert_eq!(g.status, RegistrationStatus::Expired);
    assert_eq!(
        g.payment.map(|p| (p.payment_id, p.status)),
        Some(("pay_gone".to_owned(), PaymentStatus::RefundDue))
    );
    assert_eq!(
        timers(&read).await,
        [(TimerKind::Refund, "pay_gone".to_owned())]
    );
}

pub async fn cancelling_a_hold_or_a_confirmed_registration_frees_what_it_took(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let (hold, paid, free) = (new_registration(), new_registration(), new_registration());
    step(
        &store,
        &read,
        f.event,
        &[
            held(hold, f.a, 2, "2026-02-02T10:15:00Z"),
            held(paid, f.a, 1, "2026-02-02T10:15:00Z"),
            payment_received(paid, "pay_1", 2500),
            hold_confirmed(paid, f.a, 1, "pay_1", false),
            confirmed(free, f.b, 4),
        ],
    )
    .await;
    let d = details(&read, f.event).await;
    assert_eq!(counts(&d, f.a), (1, 2, 0, 27, 0));
    assert_eq!(totals(&d), (5, 2, 0, 43, 0));

    step(&store, &read, f.event, &[cancelled(hold, f.a, 2)]).await;
    let d = details(&read, f.event).await;
    assert_eq!(
        counts(&d, f.a),
        (1, 0, 0, 29, 0),
        "a cancelled hold frees held seats"
    );
    step(
        &store,
        &read,
        f.event,
        &[
            cancelled(paid, f.a, 1),
            refund_due(paid, "pay_1", "2026-02-03T09:00:00Z"),
            cancelled(free, f.b, 4),
        ],
    )
    .await;
    let d = details(&read, f.event).await;
    assert_eq!(
        counts(&d, f.a),
        (0, 0, 0, 30, 0),
        "and a confirmed one confirmed seats"
    );
    assert_eq!(counts(&d, f.b), (0, 0, 0, 30, 0));
    assert_eq!(totals(&d), (0, 0, 0, 50, 0));
    assert_eq!(
        guest(&read, f.event, hold).await.status,
        RegistrationStatus::Cancelled
    );
    let g = guest(&read, f.event, paid).await;
    assert_eq!(g.status, RegistrationStatus::Cancelled);
    assert_eq!(g.cancelled_at, Some(at("2026-02-03T09:00:00Z")));
    assert_eq!(g.payment.map(|p| p.status), Some(PaymentStatus::RefundDue));

    // Cancelling again, or cancelling the expired, frees nothing more.
    step(&store, &read, f.event, &[cancelled(paid, f.a, 1)]).await;
    assert_eq!(totals(&details(&read, f.event).await), (0, 0, 0, 50, 0));
}

pub async fn a_waitlist_offer_keeps_seats_until_claimed_expired_or_left(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let s = small_event(&store).await;
    let (hold, sold) = (new_registration(), new_registration());
    // A is sold out: 2 confirmed and 2 held.
    step(
        &store,
        &read,
        s.event,
        &[
            confirmed(sold, s.a, 2),
            held(hold, s.a, 2, "2026-02-02T10:15:00Z"),
        ],
    )
    .await;
    let (e1, e2, e3) = (new_entry(), new_entry(), new_entry());
    step(
        &store,
        &read,
        s.event,
        &[
            joined(e1, s.a, "Una", 2),
            joined(e2, s.a, "Vic", 1),
            joined(e3, s.a, "Wes", 1),
        ],
    )
    .await;
    let d = details(&read, s.event).await;
    assert_eq!(counts(&d, s.a), (2, 2, 0, 0, 3), "three entries in line");
    assert_eq!(totals(&d), (2, 2, 0, 6, 3));

    // The hold expires and its two seats are offered to the head of the line.
    step(
        &store,
        &read,
        s.event,
        &[
            hold_expired(hold, s.a, 2),
            offer_made(e1, s.a, 2, "2026-02-03T12:00:00Z"),
        ],
    )
    .await;
    let d = details(&read, s.event).await;
    assert_eq!(
        counts(&d, s.a),
        (2, 0, 2, 0, 2),
        "offered seats are kept, the line is shorter"
    );
    assert_eq!(totals(&d), (2, 0, 2, 6, 2));

    // Claimed: the offer becomes a hold of the same seats.
    let claim = new_registration();
    step(
        &store,
        &read,
        s.event,
        &[
            offer_claimed(e1, claim, s.a, 2),
            held(claim, s.a, 2, "2026-02-02T13:15:00Z"),
        ],
    )
    .await;
    assert_eq!(counts(&details(&read, s.event).await, s.a), (2, 2, 0, 0, 2));

    // A cancellation frees a seat for the next in line, whose offer then expires; the seat
    // goes to the one after, who leaves with the offer open.
    step(
        &store,
        &read,
        s.event,
        &[
            cancelled(sold, s.a, 2),
            offer_made(e2, s.a, 1, "2026-02-03T12:00:00Z"),
            offer_made(e3, s.a, 1, "2026-02-03T12:00:00Z"),
        ],
    )
    .await;
    assert_eq!(counts(&details(&read, s.event).await, s.a), (0, 2, 2, 0, 0));
    step(&store, &read, s.event, &[offer_expired(e2, s.a, 1)]).await;
    assert_eq!(
        counts(&details(&read, s.event).await, s.a),
        (0, 2, 1, 1, 0),
        "an expired offer gives its seat back"
    );
    step(&store, &read, s.event, &[left(e3, s.a, 1, true)]).await;
    let d = details(&read, s.event).await;
    assert_eq!(
        counts(&d, s.a),
        (0, 2, 0, 2, 0),
        "so does leaving with an offer"
    );

    // Leaving while still waiting only shortens the line.
    let e4 = new_entry();
    step(&store, &read, s.event, &[joined(e4, s.a, "Xan", 3)]).await;
    assert_eq!(counts(&details(&read, s.event).await, s.a), (0, 2, 0, 2, 1));
    step(&store, &read, s.event, &[left(e4, s.a, 3, false)]).await;
    assert_eq!(counts(&details(&read, s.event).await, s.a), (0, 2, 0, 2, 0));

    let line = read.waitlist(s.event.0).await.expect("waitlist");
    let summary: Vec<_> = line
        .iter()
        .map(|e| (e.entry_id, e.seq, e.status, e.quantity))
        .collect();
    assert_eq!(
        summary,
        [
            (e1.0, 0, WaitlistStatus::Claimed, 2),
            (e2.0, 1, WaitlistStatus::Expired, 1),
            (e3.0, 2, WaitlistStatus::Left, 1),
            (e4.0, 3, WaitlistStatus::Left, 3),
        ]
    );
    assert_eq!(line[0].registration_id, Some(claim.0));
    assert_eq!(line[0].attendee.name, "Una");
    assert!(line.iter().all(|e| e.offer_expires_at.is_none()));
    assert_eq!(
        timers(&read).await,
        [(TimerKind::ExpireHold, claim.0.to_string())],
        "only the claimed hold still waits for its expiry"
    );
}

pub async fn cancelling_the_event_closes_the_waitlist_and_its_offers(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let s = small_event(&store).await;
    let (hold, paid) = (new_registration(), new_registration());
    let (offered, waiting) = (new_entry(), new_entry());
    step(
        &store,
        &read,
        s.event,
        &[
            held(paid, s.a, 1, "2026-02-02T10:15:00Z"),
            payment_received(paid, "pay_1", 2500),
            hold_confirmed(paid, s.a, 1, "pay_1", false),
            held(hold, s.a, 2, "2026-02-02T10:15:00Z"),
            joined(offered, s.a, "Una", 1),
            joined(waiting, s.a, "Vic", 2),
            offer_made(offered, s.a, 1, "2026-02-03T12:00:00Z"),
        ],
    )
    .await;
    assert_eq!(counts(&details(&read, s.event).await, s.a), (1, 2, 1, 0, 1));
    // The entries are stored; the cancellation reads them back in its own batch.
    step(
        &store,
        &read,
        s.event,
        &[
            EventFact::EventCancelled {
                reason: Some("storm".to_owned()),
                cancelled_at: at("2026-03-01T00:00:00Z"),
            },
            cancelled(paid, s.a, 1),
            refund_due(paid, "pay_1", "2026-03-01T00:00:00Z"),
            cancelled(hold, s.a, 2),
        ],
    )
    .await;
    let d = details(&read, s.event).await;
    assert_eq!(
        counts(&d, s.a),
        (0, 0, 0, 4, 0),
        "nothing held, offered nor waiting"
    );
    assert_eq!(totals(&d), (0, 0, 0, 10, 0));
    let line = read.waitlist(s.event.0).await.expect("waitlist");
    assert!(
        line.iter()
            .all(|e| e.status == WaitlistStatus::Closed && e.offer_expires_at.is_none()),
        "{line:?}"
    );
    assert_eq!(
        timers(&read).await,
        [(TimerKind::Refund, "pay_1".to_owned())],
        "offers and holds need no timer any more; the refund does"
    );
}

pub async fn the_guest_list_shows_attendees_answers_payments_and_check_ins(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let (ada, bob, cy, dee) = (
        new_registration(),
        new_registration(),
        new_registration(),
        new_registration(),
    );
    let ada_codes = codes(2);
    let answers: Answers = [
        ("country".to_owned(), AnswerValue::One("DE".to_owned())),
        (
            "interests".to_owned(),
            AnswerValue::Many(vec!["jazz".to_owned(), "rock".to_owned()]),
        ),
    ]
    .into_iter()
    .collect();
    step(
        &store,
        &read,
        f.event,
        &[
            confirmed_with(ada, f.b, "Ada", ada_codes.clone()),
            EventFact::AnswersGiven {
                registration_id: ada,
                answers: answers.clone(),
            },
            held_with(bob, f.a, "Bob", codes(1), "2026-02-02T10:15:00Z"),
            payment_received(bob, "pay_bob", 2500),
            hold_confirmed(bob, f.a, 1, "pay_bob", false),
            held_with(cy, f.a, "Cy", codes(1), "2026-02-02T10:15:00Z"),
            confirmed_with(dee, f.b, "Dee", codes(1)),
            cancelled(dee, f.b, 1),
        ],
    )
    .await;
    // An offline scan uploaded later keeps the scanner's time.
    step(
        &store,
        &read,
        f.event,
        &[checked_in(
            &ada_codes[0],
            ada,
            f.b,
            "door-1-0001",
            "2026-06-01T18:05:00Z",
        )],
    )
    .await;

    let list = guests(&read, f.event, GuestListFilter::default()).await;
    let ids: Vec<Uuid> = list.iter().map(|g| g.registration_id).collect();
    assert_eq!(
        ids,
        [ada.0, bob.0, cy.0, dee.0],
        "in the order they registered"
    );
    let a = &list[0];
    assert_eq!(a.status, RegistrationStatus::Confirmed);
    assert_eq!(
        (a.attendee.name.as_str(), a.attendee.email.as_str()),
        ("Ada", "ada@example.org")
    );
    assert_eq!(a.ticket_type_id, f.b.0);
    assert_eq!(a.ticket_type_name.as_deref(), Some("Free"));
    assert_eq!(a.quantity, 2);
    assert_eq!(a.answers, answers);
    assert_eq!(a.price, None);
    assert_eq!(a.registered_at, at("2026-02-02T09:00:00Z"));
    let tickets: Vec<_> = a
        .tickets
        .iter()
        .map(|t| (t.code.clone(), t.checked_in_at))
        .collect();
    assert_eq!(
        tickets,
        [
            (ada_codes[0].0.clone(), Some(at("2026-06-01T18:05:00Z"))),
            (ada_codes[1].0.clone(), None),
        ],
        "tickets in issue order, each with its check-in"
    );
    let b = &list[1];
    assert_eq!(b.status, RegistrationStatus::Confirmed);
    assert_eq!(b.ticket_type_name.as_deref(), Some("Standard"));
    assert_eq!(
        b.price
            .as_ref()
            .map(|p| (p.amount_minor, p.currency.as_str())),
        Some((2500, "EUR"))
    );
    assert_eq!(
        b.payment.as_ref().map(|p| p.status),
        Some(PaymentStatus::Received)
    );
    assert!(b.answers.is_empty());
    assert_eq!(list[2].status, RegistrationStatus::Held);
    assert_eq!(list[3].status, RegistrationStatus::Cancelled);
    assert_eq!(list[3].cancelled_at, Some(at("2026-02-03T09:00:00Z")));

    let only = |filter: GuestListFilter| {
        let read = read.clone();
        async move {
            guests(&read, f.event, filter)
                .await
                .into_iter()
                .map(|g| g.registration_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        only(GuestListFilter {
            status: Some(RegistrationStatus::Confirmed),
            ..Default::default()
        })
        .await,
        [ada.0, bob.0]
    );
    assert_eq!(
        only(GuestListFilter {
            ticket_type_id: Some(f.a.0),
            ..Default::default()
        })
        .await,
        [bob.0, cy.0]
    );
    assert_eq!(
        only(GuestListFilter {
            checked_in: Some(true),
            ..Default::default()
        })
        .await,
        [ada.0]
    );
    assert_eq!(
        only(GuestListFilter {
            checked_in: Some(false),
            ..Default::default()
        })
        .await,
        [ada.0, bob.0, cy.0, dee.0],
        "Ada still has a ticket to scan"
    );
    let first = guests(
        &read,
        f.event,
        GuestListFilter {
            limit: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(first.len(), 2);
    assert_eq!(
        only(GuestListFilter {
            after: Some(first[1].key),
            limit: 2,
            ..Default::default()
        })
        .await,
        [cy.0, dee.0],
        "the next page starts after the last one shown"
    );
    assert_eq!(
        read.guest_list(Uuid::now_v7(), &GuestListFilter::default())
            .await
            .expect("guest list"),
        None,
        "an unknown event has no guest list"
    );
}

pub async fn a_reverted_check_in_clears_the_check_in_time_until_the_next_scan(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let r = new_registration();
    let code = codes(1);
    step(
        &store,
        &read,
        f.event,
        &[
            confirmed_with(r, f.b, "Ada", code.clone()),
            checked_in(&code[0], r, f.b, "n-1", "2026-06-01T18:05:00Z"),
        ],
    )
    .await;
    step(&store, &read, f.event, &[check_in_reverted(&code[0], r)]).await;
    let g = guest(&read, f.event, r).await;
    assert_eq!(g.tickets[0].checked_in_at, None);
    let filter = GuestListFilter {
        checked_in: Some(true),
        ..Default::default()
    };
    assert!(guests(&read, f.event, filter.clone()).await.is_empty());

    step(
        &store,
        &read,
        f.event,
        &[checked_in(&code[0], r, f.b, "n-2", "2026-06-01T19:00:00Z")],
    )
    .await;
    let g = guest(&read, f.event, r).await;
    assert_eq!(g.tickets[0].checked_in_at, Some(at("2026-06-01T19:00:00Z")));
    assert_eq!(guests(&read, f.event, filter).await.len(), 1);
}

pub async fn timers_come_and_go_with_their_facts_and_fall_due_oldest_first(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let s = small_event(&store).await;
    assert_eq!(read.next_timer_due().await.expect("next"), None);
    let (late, early, free) = (new_registration(), new_registration(), new_registration());
    let entry = new_entry();
    step(
        &store,
        &read,
        s.event,
        &[
            held(late, s.a, 1, "2026-02-02T10:15:00Z"),
            held(early, s.a, 1, "2026-02-02T10:05:00Z"),
            confirmed(free, s.b, 1),
            joined(entry, s.a, "Una", 1),
            offer_made(entry, s.a, 1, "2026-02-03T12:00:00Z"),
            refund_due(free, "pay_9", "2026-02-02T10:10:00Z"),
        ],
    )
    .await;
    assert_eq!(
        read.next_timer_due().await.expect("next"),
        Some(at("2026-02-02T10:05:00Z"))
    );
    let due = read
        .due_timers(at("2026-02-02T10:12:00Z"), 10)
        .await
        .expect("due");
    assert_eq!(
        due,
        [
            Timer {
                kind: TimerKind::ExpireHold,
                event_id: s.event.0,
                target_id: early.0.to_string(),
                due_at: at("2026-02-02T10:05:00Z"),
            },
            Timer {
                kind: TimerKind::Refund,
                event_id: s.event.0,
                target_id: "pay_9".to_owned(),
                due_at: at("2026-02-02T10:10:00Z"),
            },
        ],
        "due at or before now, oldest first"
    );
    assert_eq!(due[0].id(), format!("expire_hold:{}", early.0));
    let first = read
        .due_timers(at("2026-02-02T10:12:00Z"), 1)
        .await
        .expect("due");
    assert_eq!(first, due[..1], "at most `limit`");
    assert_eq!(
        read.due_timers(at("2026-02-02T10:05:00Z"), 10)
            .await
            .expect("due")
            .len(),
        1,
        "a timer due exactly now is due"
    );
    assert_eq!(
        timers(&read).await,
        [
            (TimerKind::ExpireHold, early.0.to_string()),
            (TimerKind::Refund, "pay_9".to_owned()),
            (TimerKind::ExpireHold, late.0.to_string()),
            (TimerKind::ExpireOffer, entry.0.to_string()),
        ]
    );

    step(
        &store,
        &read,
        s.event,
        &[
            payment_received(early, "pay_e", 2500),
            hold_confirmed(early, s.a, 1, "pay_e", false),
            hold_expired(late, s.a, 1),
        ],
    )
    .await;
    assert_eq!(
        timers(&read).await,
        [
            (TimerKind::Refund, "pay_9".to_owned()),
            (TimerKind::ExpireOffer, entry.0.to_string()),
        ],
        "a paid and an expired hold need no timer"
    );
    let claim = new_registration();
    step(
        &store,
        &read,
        s.event,
        &[
            refund_completed(free, "pay_9"),
            offer_claimed(entry, claim, s.a, 1),
            held(claim, s.a, 1, "2026-02-03T13:15:00Z"),
        ],
    )
    .await;
    assert_eq!(
        timers(&read).await,
        [(TimerKind::ExpireHold, claim.0.to_string())],
        "a completed refund and a claimed offer need none either; the claim's hold does"
    );
    step(&store, &read, s.event, &[cancelled(claim, s.a, 1)]).await;
    assert!(
        timers(&read).await.is_empty(),
        "a cancelled hold needs none"
    );
    assert_eq!(read.next_timer_due().await.expect("next"), None);
    let g = guest(&read, s.event, free).await;
    assert_eq!(
        g.payment.map(|p| (p.payment_id, p.status)),
        Some(("pay_9".to_owned(), PaymentStatus::Refunded))
    );
}

/// The same facts in the log twice (a client retry that got through, a bug upstream), each in
/// a batch of its own: counted once, as the domain's `evolve` counts them.
pub async fn ticketing_facts_repeated_in_the_log_count_once(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let s = small_event(&store).await;
    let (r, sold) = (new_registration(), new_registration());
    let code = codes(2);
    let e1 = new_entry();
    let hold = held_with(r, s.a, "Ada", code.clone(), "2026-02-02T10:15:00Z");
    let twice = [
        vec![confirmed(sold, s.a, 1)],
        vec![hold.clone()],
        vec![hold],
        vec![joined(e1, s.a, "Una", 1)],
        vec![joined(e1, s.a, "Una", 1)],
        vec![
            payment_received(r, "pay_1", 5000),
            hold_confirmed(r, s.a, 2, "pay_1", false),
        ],
        vec![hold_confirmed(r, s.a, 2, "pay_1", false)],
        vec![hold_expired(r, s.a, 2)],
        vec![
            cancelled(sold, s.a, 1),
            offer_made(e1, s.a, 1, "2026-02-03T12:00:00Z"),
        ],
        vec![offer_made(e1, s.a, 1, "2026-02-03T12:00:00Z")],
        vec![checked_in(&code[0], r, s.a, "n-1", "2026-06-01T18:05:00Z")],
        vec![checked_in(&code[0], r, s.a, "n-2", "2026-06-01T18:09:00Z")],
    ];
    for facts in &twice {
        step(&store, &read, s.event, facts).await;
    }
    let d = details(&read, s.event).await;
    assert_eq!(counts(&d, s.a), (2, 0, 1, 1, 0));
    assert_eq!(totals(&d), (2, 0, 1, 7, 0));
    let g = guest(&read, s.event, r).await;
    assert_eq!(
        g.status,
        RegistrationStatus::Confirmed,
        "an expiry after payment changes nothing"
    );
    assert_eq!(g.tickets.len(), 2);
    assert_eq!(
        g.tickets[0].checked_in_at,
        Some(at("2026-06-01T18:05:00Z")),
        "the first scan stands"
    );
    let line = read.waitlist(s.event.0).await.expect("waitlist");
    assert_eq!(line.len(), 1);
    assert_eq!((line[0].seq, line[0].status), (0, WaitlistStatus::Offered));
}

/// Everything before the checkpoint arrives again (an at-least-once transport): nothing moves.
pub async fn redelivered_ticketing_facts_count_nothing_twice(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let s = small_event(&store).await;
    let (r, hold, sold) = (new_registration(), new_registration(), new_registration());
    let code = codes(1);
    let e1 = new_entry();
    step(
        &store,
        &read,
        s.event,
        &[
            confirmed_with(r, s.b, "Ada", code.clone()),
            checked_in(&code[0], r, s.b, "n-1", "2026-06-01T18:05:00Z"),
            check_in_reverted(&code[0], r),
            confirmed(sold, s.a, 2),
            held(hold, s.a, 2, "2026-02-02T10:15:00Z"),
            joined(e1, s.a, "Una", 2),
            hold_expired(hold, s.a, 2),
            offer_made(e1, s.a, 2, "2026-02-03T12:00:00Z"),
        ],
    )
    .await;
    let before = details(&read, s.event).await;
    assert_eq!(counts(&before, s.a), (2, 0, 2, 0, 0));
    let guests_before = guests(&read, s.event, GuestListFilter::default()).await;
    let timers_before = timers(&read).await;

    let last = append(
        &store,
        &s.event.stream(),
        &[EventFact::EventCapacityChanged { capacity: 12 }],
    )
    .await;
    let redelivering: Arc<dyn EventStore> = Arc::new(Redelivering(store.clone()));
    project_until(redelivering, &read, last).await;

    let after = details(&read, s.event).await;
    assert_eq!(counts(&after, s.a), counts(&before, s.a));
    assert_eq!(counts(&after, s.b), (1, 0, 0, 7, 0));
    assert_eq!(totals(&after), (3, 0, 2, 7, 0));
    assert_eq!(
        guests(&read, s.event, GuestListFilter::default()).await,
        guests_before
    );
    assert_eq!(timers(&read).await, timers_before);
    assert_eq!(read.waitlist(s.event.0).await.expect("waitlist").len(), 1);
}
