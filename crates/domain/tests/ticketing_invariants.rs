//! Whatever interleaving of reservations (free and paid), payments on time and late, hold
//! expiries, cancellations, waitlist joins, claims, offer expiries, departures and capacity
//! changes arrives, while the clock moves on:
//!
//! - confirmed + held + offered seats never exceed a ticket type's quantity, nor the event's
//!   capacity;
//! - the tallies agree with what the registrations and waitlist entries say;
//! - a freed seat reaches the head of the waitlist before anyone new: a reservation or a late
//!   confirmation is only accepted for a ticket type nobody waits for, an offer only ever goes to
//!   the head of its line, and after every step no head of a line fits in the seats available
//!   (it would have been offered them);
//! - no attendee ends up with more seats than the per-attendee limit;
//! - no money is kept without seats: every payment kept pays for a confirmed registration, and
//!   every confirmed paid registration has its payment; a payment reported twice counts once;
//! - replaying the log gives the same state, and cancelling the event afterwards frees every seat
//!   and owes every payment back.
//!
//! Refused commands are part of the game: they must change nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta};
use marquee_domain::event::{
    self, Attendee, Event, EventCommand, EventFact, EventStatus, PaymentStatus, PolicyChange,
    RefundReason, RegistrationStatus, VenueInfo, WaitlistStatus,
};
use marquee_domain::{
    EventId, Money, PaymentId, RegistrationId, TicketCode, TicketTypeId, Timestamp, VenueId,
    WaitlistEntryId,
};
use proptest::prelude::*;
use uuid::Uuid;

const VENUE_SEATS: u32 = 40;
/// Price of one paid seat, in cents.
const PRICE: i64 = 2_500;
const HOLD_SECONDS: u32 = 300;
const OFFER_SECONDS: u32 = 600;
/// How many different people take part; few enough that they meet the per-attendee limit and
/// the once-per-line rule.
const PEOPLE: usize = 4;

/// One step of a random session against a published event with a free and a paid ticket type.
#[derive(Debug, Clone)]
enum Step {
    /// `person` (its address in capitals when `shout`) reserves `quantity` seats.
    Reserve {
        paid: bool,
        quantity: u32,
        person: usize,
        shout: bool,
    },
    /// Pays a held registration (some registration when none is held) its price in full.
    Pay { pick: usize },
    /// Pays an expired registration (some registration when none expired) its price in full.
    PayLate { pick: usize },
    /// The provider reports an earlier payment again.
    RepeatPayment { pick: usize },
    /// The scheduler's timer for a hold fires (due or not).
    ExpireHold { pick: usize },
    /// The attendee cancels a registration.
    Cancel { pick: usize },
    /// `person` joins a line.
    Join {
        paid: bool,
        quantity: u32,
        person: usize,
        shout: bool,
    },
    /// An entry claims its offer (some entry when none has one).
    Claim { pick: usize },
    /// The scheduler's timer for an offer fires (due or not).
    ExpireOffer { pick: usize },
    /// An entry leaves the waitlist.
    Leave { pick: usize },
    /// The organizer sets the event's capacity.
    ChangeCapacity { capacity: u32 },
    /// The clock moves on.
    Wait { seconds: u32 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<bool>(), 0..=5u32, 0..PEOPLE, prop::bool::weighted(0.2)).prop_map(
            |(paid, quantity, person, shout)| Step::Reserve { paid, quantity, person, shout }
        ),
        2 => any::<usize>().prop_map(|pick| Step::Pay { pick }),
        3 => any::<usize>().prop_map(|pick| Step::PayLate { pick }),
        1 => any::<usize>().prop_map(|pick| Step::RepeatPayment { pick }),
        3 => any::<usize>().prop_map(|pick| Step::ExpireHold { pick }),
        2 => any::<usize>().prop_map(|pick| Step::Cancel { pick }),
        4 => (any::<bool>(), 1..=4u32, 0..PEOPLE, prop::bool::weighted(0.2)).prop_map(
            |(paid, quantity, person, shout)| Step::Join { paid, quantity, person, shout }
        ),
        2 => any::<usize>().prop_map(|pick| Step::Claim { pick }),
        3 => any::<usize>().prop_map(|pick| Step::ExpireOffer { pick }),
        1 => any::<usize>().prop_map(|pick| Step::Leave { pick }),
        1 => (1..=VENUE_SEATS).prop_map(|capacity| Step::ChangeCapacity { capacity }),
        4 => (0..=OFFER_SECONDS).prop_map(|seconds| Step::Wait { seconds }),
    ]
}

fn start() -> Timestamp {
    DateTime::UNIX_EPOCH + TimeDelta::seconds(1_906_545_600)
}

fn venue() -> VenueInfo {
    VenueInfo {
        venue_id: VenueId(Uuid::from_u128(0xA)),
        capacity: VENUE_SEATS,
    }
}

fn free_type() -> TicketTypeId {
    TicketTypeId(Uuid::from_u128(0x61))
}

fn paid_type() -> TicketTypeId {
    TicketTypeId(Uuid::from_u128(0x62))
}

fn euros(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: "EUR".into(),
    }
}

fn person(n: usize, shout: bool) -> Attendee {
    let email = format!("person{n}@example.org");
    Attendee {
        name: format!("Person {n}"),
        email: if shout { email.to_uppercase() } else { email },
    }
}

/// A registration id that never exists, for picks among nothing.
fn nobody() -> RegistrationId {
    RegistrationId(Uuid::from_u128(0xDEAD))
}

/// One random session: the event, its log, the clock, and what the session made so far.
struct Session {
    state: Event,
    log: Vec<EventFact>,
    now: Timestamp,
    registrations: Vec<RegistrationId>,
    entries: Vec<WaitlistEntryId>,
    /// Every payment reported and accepted: registration, id, amount.
    payments: Vec<(RegistrationId, PaymentId, Money)>,
    next_code: u128,
    next_id: u128,
}

impl Session {
    /// Drafts, equips and publishes the event; every command must be accepted.
    fn open(
        capacity: u32,
        free_seats: u32,
        paid_seats: u32,
        limit: Option<u32>,
    ) -> Result<Self, TestCaseError> {
        let mut session = Session {
            state: Event::default(),
            log: Vec::new(),
            now: start(),
            registrations: Vec::new(),
            entries: Vec::new(),
            payments: Vec::new(),
            next_code: 0,
            next_id: 0,
        };
        let setup = [
            EventCommand::DraftEvent {
                event_id: EventId(Uuid::from_u128(0xE)),
                venue: Some(venue()),
                title: "Proptest Live".into(),
                description: String::new(),
                category: "Testing".into(),
                starts_at: start() + TimeDelta::days(30),
                ends_at: start() + TimeDelta::days(31),
                timezone: "UTC".into(),
                capacity: Some(capacity),
                max_per_order: None,
            },
            EventCommand::AddTicketType {
                ticket_type_id: free_type(),
                name: "Free".into(),
                price: euros(0),
                quantity: free_seats,
                sales_start: None,
                sales_end: None,
            },
            EventCommand::AddTicketType {
                ticket_type_id: paid_type(),
                name: "Paid".into(),
                price: euros(PRICE),
                quantity: paid_seats,
                sales_start: None,
                sales_end: None,
            },
            EventCommand::ChangePolicy(PolicyChange {
                hold_seconds: Some(HOLD_SECONDS),
                offer_seconds: Some(OFFER_SECONDS),
                cancellation_deadline: None,
                max_per_attendee: Some(limit.unwrap_or(0)),
                reminder_offsets_seconds: None,
            }),
            EventCommand::Publish,
        ];
        for command in setup {
            let facts = event::decide(&session.state, command.clone(), session.now);
            prop_assert!(
                facts.is_ok(),
                "setting up: {command:?} was refused: {facts:?}"
            );
            session.fold(facts.unwrap_or_default())?;
        }
        prop_assert_eq!(session.state.status, EventStatus::Published);
        Ok(session)
    }

    fn fresh_codes(&mut self, quantity: u32) -> Vec<TicketCode> {
        (0..quantity)
            .map(|_| {
                self.next_code += 1;
                TicketCode(format!("{:032x}", self.next_code))
            })
            .collect()
    }

    fn fresh_id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(0x1_0000 + self.next_id)
    }

    /// The `pick`th registration in `status`, or among all when none is; [`nobody`] when the
    /// session has none.
    fn registration(&self, pick: usize, status: RegistrationStatus) -> RegistrationId {
        let matching: Vec<RegistrationId> = self
            .registrations
            .iter()
            .filter(|id| {
                self.state
                    .registrations
                    .get(id)
                    .is_some_and(|r| r.status == status)
            })
            .copied()
            .collect();
        let pool = if matching.is_empty() {
            &self.registrations
        } else {
            &matching
        };
        if pool.is_empty() {
            nobody()
        } else {
            pool[pick % pool.len()]
        }
    }

    /// The `pick`th entry in `status`, or among all when none is.
    fn entry(&self, pick: usize, status: WaitlistStatus) -> WaitlistEntryId {
        let matching: Vec<WaitlistEntryId> = self
            .entries
            .iter()
            .filter(|id| {
                self.state
                    .waitlist
                    .get(id)
                    .is_some_and(|e| e.status == status)
            })
            .copied()
            .collect();
        let pool = if matching.is_empty() {
            &self.entries
        } else {
            &matching
        };
        if pool.is_empty() {
            WaitlistEntryId(Uuid::from_u128(0xDEAD))
        } else {
            pool[pick % pool.len()]
        }
    }

    /// What the registration costs, or a price it does not have when it is free.
    fn price_of(&self, id: RegistrationId) -> Money {
        self.state
            .registrations
            .get(&id)
            .and_then(|r| r.price.clone())
            .unwrap_or_else(|| euros(PRICE))
    }

    fn pay(&mut self, registration_id: RegistrationId) -> EventCommand {
        let payment_id = PaymentId(format!("pay_{}", self.fresh_id()));
        EventCommand::RecordPayment {
            registration_id,
            amount: self.price_of(registration_id),
            payment_id,
        }
    }

    /// The command a step stands for; `None` for steps that only move the clock.
    fn command(&mut self, step: &Step) -> Option<EventCommand> {
        let ticket_type = |paid: bool| if paid { paid_type() } else { free_type() };
        Some(match *step {
            Step::Reserve {
                paid,
                quantity,
                person: n,
                shout,
            } => EventCommand::Reserve {
                registration_id: RegistrationId(self.fresh_id()),
                ticket_type_id: ticket_type(paid),
                attendee: person(n, shout),
                quantity,
                ticket_codes: self.fresh_codes(quantity),
                answers: Default::default(),
            },
            Step::Pay { pick } => {
                let id = self.registration(pick, RegistrationStatus::Held);
                self.pay(id)
            }
            Step::PayLate { pick } => {
                let id = self.registration(pick, RegistrationStatus::Expired);
                self.pay(id)
            }
            Step::RepeatPayment { pick } => {
                if self.payments.is_empty() {
                    return None;
                }
                let (registration_id, payment_id, amount) =
                    self.payments[pick % self.payments.len()].clone();
                EventCommand::RecordPayment {
                    registration_id,
                    payment_id,
                    amount,
                }
            }
            Step::ExpireHold { pick } => EventCommand::ExpireHold {
                registration_id: self.registration(pick, RegistrationStatus::Held),
            },
            Step::Cancel { pick } => EventCommand::CancelRegistration {
                registration_id: self.registration(pick, RegistrationStatus::Confirmed),
            },
            Step::Join {
                paid,
                quantity,
                person: n,
                shout,
            } => EventCommand::JoinWaitlist {
                entry_id: WaitlistEntryId(self.fresh_id()),
                ticket_type_id: ticket_type(paid),
                attendee: person(n, shout),
                quantity,
                answers: Default::default(),
            },
            Step::Claim { pick } => {
                let entry_id = self.entry(pick, WaitlistStatus::Offered);
                let quantity = self.state.waitlist.get(&entry_id).map_or(1, |e| e.quantity);
                EventCommand::ClaimOffer {
                    entry_id,
                    registration_id: RegistrationId(self.fresh_id()),
                    ticket_codes: self.fresh_codes(quantity),
                }
            }
            Step::ExpireOffer { pick } => EventCommand::ExpireOffer {
                entry_id: self.entry(pick, WaitlistStatus::Offered),
            },
            Step::Leave { pick } => EventCommand::LeaveWaitlist {
                entry_id: self.entry(pick, WaitlistStatus::Waiting),
            },
            Step::ChangeCapacity { capacity } => EventCommand::ChangeCapacity {
                capacity,
                venue: venue(),
            },
            Step::Wait { seconds } => {
                self.now += TimeDelta::seconds(i64::from(seconds));
                return None;
            }
        })
    }

    /// Runs one step, checks what its facts mean as they are folded, then checks the state.
    fn run(&mut self, step: &Step) -> Result<(), TestCaseError> {
        let Some(command) = self.command(step) else {
            return Ok(());
        };
        let before = self.state.clone();
        let Ok(facts) = event::decide(&self.state, command.clone(), self.now) else {
            // A refused command changes nothing: there is nothing to fold.
            return Ok(());
        };
        match &command {
            EventCommand::Reserve {
                registration_id,
                ticket_type_id,
                ..
            } => {
                prop_assert!(
                    before.waiting(*ticket_type_id) == 0,
                    "a reservation of {ticket_type_id} was accepted while someone waited for it"
                );
                self.registrations.push(*registration_id);
            }
            EventCommand::ClaimOffer {
                registration_id, ..
            } => self.registrations.push(*registration_id),
            EventCommand::JoinWaitlist { entry_id, .. } => self.entries.push(*entry_id),
            EventCommand::RecordPayment {
                registration_id,
                payment_id,
                amount,
            } => {
                let repeated = self.payments.iter().any(|(_, id, _)| id == payment_id);
                if repeated {
                    prop_assert!(facts.is_empty(), "a payment reported twice counted twice");
                } else {
                    prop_assert!(
                        matches!(
                            facts.as_slice(),
                            [
                                EventFact::PaymentReceived { .. },
                                EventFact::HoldConfirmed { .. } | EventFact::RefundDue { .. }
                            ]
                        ),
                        "money must either confirm seats or go back: {facts:?}"
                    );
                    self.payments
                        .push((*registration_id, payment_id.clone(), amount.clone()));
                }
            }
            _ => {}
        }
        self.fold(facts)?;
        check(&self.state)
    }

    /// Folds `facts` one by one, checking each against the state just before it.
    fn fold(&mut self, facts: Vec<EventFact>) -> Result<(), TestCaseError> {
        for fact in facts {
            let state = &self.state;
            match &fact {
                EventFact::WaitlistOfferMade {
                    entry_id,
                    ticket_type_id,
                    quantity,
                    expires_at,
                    ..
                } => {
                    let line = state.ticket_types.get(ticket_type_id).map(|t| &t.waiting);
                    prop_assert_eq!(
                        line.and_then(|l| l.front()),
                        Some(entry_id),
                        "an offer went to someone not at the head of the line"
                    );
                    prop_assert!(state.available(*ticket_type_id) >= *quantity);
                    prop_assert_eq!(
                        *expires_at,
                        self.now + TimeDelta::seconds(i64::from(OFFER_SECONDS))
                    );
                }
                EventFact::HoldConfirmed {
                    late: true,
                    ticket_type_id,
                    ..
                } => {
                    prop_assert!(
                        state.waiting(*ticket_type_id) == 0,
                        "a late payment took seats someone waited for"
                    );
                }
                EventFact::SeatsHeld {
                    quantity,
                    price,
                    expires_at,
                    ..
                } => {
                    prop_assert_eq!(price, &euros(PRICE * i64::from(*quantity)));
                    prop_assert_eq!(
                        *expires_at,
                        self.now + TimeDelta::seconds(i64::from(HOLD_SECONDS))
                    );
                }
                EventFact::RefundDue {
                    reason: RefundReason::LatePayment,
                    registration_id,
                    ..
                } => {
                    prop_assert_eq!(
                        state.registrations.get(registration_id).map(|r| r.status),
                        Some(RegistrationStatus::Expired)
                    );
                }
                _ => {}
            }
            self.state = event::evolve(std::mem::take(&mut self.state), &fact);
            self.log.push(fact);
        }
        Ok(())
    }
}

/// What must hold after every step.
fn check(state: &Event) -> Result<(), TestCaseError> {
    let mut confirmed: BTreeMap<TicketTypeId, u32> = BTreeMap::new();
    let mut held: BTreeMap<TicketTypeId, u32> = BTreeMap::new();
    let mut offered: BTreeMap<TicketTypeId, u32> = BTreeMap::new();
    let mut seats: BTreeMap<String, u32> = BTreeMap::new();
    for registration in state.registrations.values() {
        let tally = match registration.status {
            RegistrationStatus::Confirmed => &mut confirmed,
            RegistrationStatus::Held => &mut held,
            RegistrationStatus::Cancelled | RegistrationStatus::Expired => continue,
        };
        *tally.entry(registration.ticket_type_id).or_default() += registration.quantity;
        *seats
            .entry(registration.attendee.email.to_lowercase())
            .or_default() += registration.quantity;
    }
    for entry in state.waitlist.values() {
        if entry.status == WaitlistStatus::Offered {
            *offered.entry(entry.ticket_type_id).or_default() += entry.quantity;
        }
    }

    for (id, ticket_type) in &state.ticket_types {
        let recount = |tally: &BTreeMap<TicketTypeId, u32>| tally.get(id).copied().unwrap_or(0);
        prop_assert_eq!(
            ticket_type.confirmed,
            recount(&confirmed),
            "{} confirmed",
            id
        );
        prop_assert_eq!(ticket_type.held, recount(&held), "{} held", id);
        prop_assert_eq!(ticket_type.offered, recount(&offered), "{} offered", id);
        prop_assert!(
            ticket_type.used() <= ticket_type.quantity,
            "ticket type {id}: {} confirmed + {} held + {} offered of {}",
            ticket_type.confirmed,
            ticket_type.held,
            ticket_type.offered,
            ticket_type.quantity
        );

        let mut waiting: Vec<_> = state
            .waitlist
            .values()
            .filter(|e| e.ticket_type_id == *id && e.status == WaitlistStatus::Waiting)
            .collect();
        waiting.sort_by_key(|e| e.seq);
        let waiting: Vec<WaitlistEntryId> = waiting.into_iter().map(|e| e.id).collect();
        prop_assert_eq!(
            ticket_type.waiting.iter().copied().collect::<Vec<_>>(),
            waiting,
            "ticket type {}'s line is not its waiting entries in join order",
            id
        );
        if let Some(head) = ticket_type.waiting.front() {
            let wanted = state.waitlist.get(head).map_or(0, |e| e.quantity);
            prop_assert!(
                state.available(*id) < wanted,
                "the head of {id}'s line waits for {wanted} seats while {} are available",
                state.available(*id)
            );
        }
    }
    prop_assert!(
        state.used() <= state.capacity,
        "{} seats used, capacity {}",
        state.used(),
        state.capacity
    );

    let tallied: BTreeMap<String, u32> = state
        .seats_by_attendee
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(email, n)| (email.clone(), *n))
        .collect();
    prop_assert_eq!(&tallied, &seats, "the per-attendee tally disagrees");
    if let Some(max) = state.policy.max_per_attendee {
        for (email, n) in &seats {
            prop_assert!(*n <= max, "{email} has {n} seats, the limit is {max}");
        }
    }

    for (payment_id, record) in &state.payments {
        if record.status == PaymentStatus::Received {
            prop_assert!(
                state
                    .registrations
                    .get(&record.registration_id)
                    .is_some_and(|r| r.status == RegistrationStatus::Confirmed
                        && r.payment_id.as_ref() == Some(payment_id)),
                "payment {payment_id} is kept without confirming its registration"
            );
        }
    }
    for registration in state.registrations.values() {
        if registration.status == RegistrationStatus::Confirmed && registration.price.is_some() {
            let payment = registration
                .payment_id
                .as_ref()
                .and_then(|id| state.payments.get(id));
            prop_assert!(
                payment.is_some_and(|p| p.status == PaymentStatus::Received),
                "registration {} is confirmed without its payment",
                registration.id
            );
        }
    }
    Ok(())
}

fn run(
    capacity: u32,
    free_seats: u32,
    paid_seats: u32,
    limit: Option<u32>,
    steps: &[Step],
) -> Result<Session, TestCaseError> {
    let mut session = Session::open(capacity, free_seats, paid_seats, limit)?;
    check(&session.state)?;
    for step in steps {
        session.run(step)?;
    }

    // Replaying the whole log from scratch gives the same state as folding step by step.
    let replayed = session.log.iter().fold(Event::default(), event::evolve);
    prop_assert_eq!(&replayed, &session.state);

    // The organizer calls it off: nothing is left taken, nobody waits, no money is kept.
    let cancelled = event::decide(
        &session.state,
        EventCommand::Cancel { reason: None },
        session.now,
    );
    prop_assert!(cancelled.is_ok(), "cancelling: {cancelled:?}");
    let state = cancelled
        .unwrap_or_default()
        .iter()
        .fold(session.state.clone(), event::evolve);
    prop_assert_eq!(state.used(), 0);
    prop_assert!(state.seats_by_attendee.values().all(|n| *n == 0));
    prop_assert!(
        state
            .waitlist
            .values()
            .all(|e| !matches!(e.status, WaitlistStatus::Waiting | WaitlistStatus::Offered))
    );
    prop_assert!(
        state
            .payments
            .values()
            .all(|p| p.status != PaymentStatus::Received),
        "a payment is kept for a cancelled event"
    );
    Ok(session)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_interleaving_oversells_skips_the_waitlist_or_keeps_money_without_seats(
        capacity in 1..=30u32,
        free_seats in 1..=12u32,
        paid_seats in 1..=12u32,
        limit in prop::option::of(2..=6u32),
        steps in prop::collection::vec(step(), 0..=150),
    ) {
        run(capacity, free_seats, paid_seats, limit, &steps)?;
    }
}

/// The harness reaches the interesting places: a hold that expires while someone waits makes an
/// offer, a late payment for seats since offered is refunded, and the offer is claimed.
#[test]
fn a_scripted_session_offers_a_freed_seat_and_refunds_the_late_payer() {
    let steps = [
        Step::Reserve {
            paid: true,
            quantity: 2,
            person: 0,
            shout: false,
        },
        Step::Reserve {
            paid: false,
            quantity: 1,
            person: 1,
            shout: false,
        },
        Step::Join {
            paid: false,
            quantity: 1,
            person: 2,
            shout: true,
        },
        Step::Wait {
            seconds: HOLD_SECONDS,
        },
        Step::ExpireHold { pick: 0 },
        Step::PayLate { pick: 0 },
        Step::Claim { pick: 0 },
    ];
    let session = run(3, 2, 2, None, &steps).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = session
        .log
        .iter()
        .filter_map(|fact| match fact {
            EventFact::SeatsHeld { .. } => Some("held"),
            EventFact::RegistrationConfirmed { .. } => Some("confirmed"),
            EventFact::WaitlistJoined { .. } => Some("joined"),
            EventFact::HoldExpired { .. } => Some("expired"),
            EventFact::WaitlistOfferMade { .. } => Some("offered"),
            EventFact::PaymentReceived { .. } => Some("paid"),
            EventFact::RefundDue {
                reason: RefundReason::LatePayment,
                ..
            } => Some("refunded late"),
            EventFact::WaitlistOfferClaimed { .. } => Some("claimed"),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "held",
            "confirmed",
            "joined",
            "expired",
            "offered",
            "paid",
            "refunded late",
            "claimed",
            "confirmed"
        ]
    );
    assert_eq!(session.state.confirmed(), 2);
}
