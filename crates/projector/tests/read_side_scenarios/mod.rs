//! The read side's tables — full-text search and listing orders, guest-list search, the holder
//! of each registration ("my tickets"), and the analytics tables — shared by `read_side.rs`
//! (in-memory and one SQLite file) and `read_side_postgres.rs`, so every engine is held to the
//! same assertions.

use std::collections::HashSet;
use std::sync::Arc;

use marquee_domain::event::{
    AnswerValue, Answers, DetailsChange, EventFact, Question, QuestionKind, RegistrationStatus,
};
use marquee_domain::{EventId, Money, RegistrationId, TicketTypeId, UserId, VenueId};
use marquee_projector::analytics::{EventAnalytics, SalesCounts};
use marquee_projector::holdings::HoldingsFilter;
use marquee_projector::queries::{GuestListFilter, ListingFilter, ListingSort};
use marquee_projector::{PROJECTION, ReadModels, RebuildOptions};
use marquee_store::EventStore;
use uuid::Uuid;

use crate::common::{
    Backend, Fixture, append, cancelled, drafted, project_until, published, published_event,
    venue_created,
};
use crate::ticketing_scenarios::{
    at, check_in_reverted, checked_in, codes, confirmed_with, held, held_with, hold_confirmed,
    hold_expired, payment_received, refund_completed, refund_due,
};

/// Appends facts to a stream and projects them.
async fn step(
    store: &Arc<dyn EventStore>,
    read: &ReadModels,
    stream: &str,
    facts: &[EventFact],
) -> u64 {
    let position = append(store, stream, facts).await;
    project_until(store.clone(), read, position).await;
    position
}

fn money(amount_minor: i64, currency: &str) -> Money {
    Money {
        amount_minor,
        currency: currency.to_owned(),
    }
}

fn priced(id: TicketTypeId, name: &str, price: Money, quantity: u32) -> EventFact {
    EventFact::TicketTypeAdded {
        ticket_type_id: id,
        name: name.to_owned(),
        price,
        quantity,
        sales_start: None,
        sales_end: None,
    }
}

fn described(title: &str, description: &str) -> EventFact {
    EventFact::EventDetailsUpdated(DetailsChange {
        title: Some(title.to_owned()),
        description: Some(description.to_owned()),
        ..DetailsChange::default()
    })
}

/// A venue in `city`.
async fn venue(store: &Arc<dyn EventStore>, city: &str) -> VenueId {
    let venue = VenueId(Uuid::now_v7());
    append(
        store,
        &venue.stream(),
        &[venue_created(venue, "Hall", city, 1000)],
    )
    .await;
    venue
}

/// An event at `venue` starting at `starts_at`, drafted with `then` appended.
async fn event(
    store: &Arc<dyn EventStore>,
    venue: VenueId,
    title: &str,
    starts_at: &str,
    then: Vec<EventFact>,
) -> EventId {
    let event = EventId(Uuid::now_v7());
    let mut facts = vec![drafted(event, venue, title, starts_at, 100)];
    facts.extend(then);
    append(store, &event.stream(), &facts).await;
    event
}

/// Every event the listing shows for `filter`, read `page` at a time.
async fn list_all(read: &ReadModels, filter: ListingFilter, page: u32) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let records = read
            .list_events(&ListingFilter {
                after: after.clone(),
                limit: page,
                ..filter.clone()
            })
            .await
            .expect("list");
        seen.extend(records.iter().map(|r| r.event_id));
        match records.last() {
            Some(last) if records.len() == page as usize => {
                after = Some(last.listing_key(filter.sort));
            }
            _ => return seen,
        }
    }
}

fn ids(events: &[EventId]) -> Vec<Uuid> {
    events.iter().map(|e| e.0).collect()
}

pub async fn search_finds_events_by_every_word_of_their_title_or_description(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let hall = venue(&store, "Berlin").await;
    let jazz = event(
        &store,
        hall,
        "Jazz Night",
        "2026-06-01T18:00:00Z",
        vec![
            described("Jazz Night", "Smooth saxophones by the river"),
            published(),
        ],
    )
    .await;
    let rock = event(
        &store,
        hall,
        "Rock Night",
        "2026-06-02T18:00:00Z",
        vec![described("Rock Night", "Loud guitars"), published()],
    )
    .await;
    let poetry = event(
        &store,
        hall,
        "Poetry Reading",
        "2026-06-03T18:00:00Z",
        vec![
            described("Poetry Reading", "Jazz-inspired verses, café included"),
            published(),
        ],
    )
    .await;
    let draft = event(&store, hall, "Jazz Draft", "2026-06-04T18:00:00Z", vec![]).await;
    let last = append(&store, &draft.stream(), &[described("Jazz Draft", "Jazz")]).await;
    project_until(store.clone(), &read, last).await;

    let search = |text: &str| {
        let read = read.clone();
        let filter = ListingFilter {
            search: Some(text.to_owned()),
            ..ListingFilter::default()
        };
        async move { list_all(&read, filter, 50).await }
    };
    assert_eq!(
        search("jazz").await,
        ids(&[jazz, poetry]),
        "title or description, drafts never"
    );
    assert_eq!(
        search("JAZZ night").await,
        ids(&[jazz]),
        "every word, any case"
    );
    assert_eq!(search("sax riv").await, ids(&[jazz]), "words as prefixes");
    assert_eq!(search("guitars, loud!").await, ids(&[rock]));
    assert_eq!(search("jazz-inspired").await, ids(&[poetry]));
    assert_eq!(search("café").await, ids(&[poetry]), "letters beyond ASCII");
    assert_eq!(search("opera").await, Vec::<Uuid>::new());

    let last = step(
        &store,
        &read,
        &rock.stream(),
        &[EventFact::EventDetailsUpdated(DetailsChange {
            title: Some("Metal Night".to_owned()),
            ..DetailsChange::default()
        })],
    )
    .await;
    assert!(last > 0);
    assert_eq!(
        search("rock").await,
        Vec::<Uuid>::new(),
        "the old title is forgotten"
    );
    assert_eq!(search("metal").await, ids(&[rock]));
    assert_eq!(
        search("loud").await,
        ids(&[rock]),
        "the description stays searchable"
    );
    assert_eq!(
        list_all(
            &read,
            ListingFilter {
                search: Some("night".to_owned()),
                city: Some("berlin".to_owned()),
                ..ListingFilter::default()
            },
            1
        )
        .await,
        ids(&[jazz, rock]),
        "search combines with filters and pages"
    );
}

pub async fn the_listing_filters_by_venue_price_currency_and_seats_left(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let (berlin, tokyo) = (venue(&store, "Berlin").await, venue(&store, "Tokyo").await);
    let types = || (TicketTypeId(Uuid::now_v7()), TicketTypeId(Uuid::now_v7()));
    let (cheap_type, _) = types();
    let cheap = event(
        &store,
        berlin,
        "Cheap",
        "2026-06-01T18:00:00Z",
        vec![
            priced(cheap_type, "Standard", money(500, "EUR"), 10),
            published(),
        ],
    )
    .await;
    let (pricey_a, pricey_b) = types();
    let pricey = event(
        &store,
        berlin,
        "Pricey",
        "2026-06-02T18:00:00Z",
        vec![
            priced(pricey_a, "VIP", money(9000, "EUR"), 10),
            priced(pricey_b, "Standard", money(5000, "EUR"), 10),
            published(),
        ],
    )
    .await;
    let (yen_type, _) = types();
    let yen = event(
        &store,
        tokyo,
        "Yen",
        "2026-06-03T18:00:00Z",
        vec![priced(yen_type, "Seat", money(900, "JPY"), 10), published()],
    )
    .await;
    let (free_type, _) = types();
    let sold_out = event(
        &store,
        tokyo,
        "Sold out",
        "2026-06-04T18:00:00Z",
        vec![
            priced(free_type, "Free", money(0, "EUR"), 1),
            published(),
            confirmed_with(RegistrationId(Uuid::now_v7()), free_type, "Ada", codes(1)),
        ],
    )
    .await;
    let no_types = event(
        &store,
        tokyo,
        "No tickets",
        "2026-06-05T18:00:00Z",
        vec![published()],
    )
    .await;
    let (off_type, _) = types();
    let called_off = event(
        &store,
        berlin,
        "Called off",
        "2026-06-06T18:00:00Z",
        vec![
            priced(off_type, "Standard", money(500, "EUR"), 10),
            published(),
            EventFact::EventCancelled {
                reason: None,
                cancelled_at: at("2026-03-01T00:00:00Z"),
            },
        ],
    )
    .await;
    let head = store.head_position().await.expect("head");
    project_until(store.clone(), &read, head).await;

    let list = |filter: ListingFilter| {
        let read = read.clone();
        async move { list_all(&read, filter, 2).await }
    };
    assert_eq!(
        list(ListingFilter {
            venue_id: Some(berlin.0),
            ..ListingFilter::default()
        })
        .await,
        ids(&[cheap, pricey, called_off])
    );
    assert_eq!(
        list(ListingFilter {
            price_min: Some(500),
            ..ListingFilter::default()
        })
        .await,
        ids(&[cheap, pricey, yen, called_off]),
        "the cheapest ticket type counts; events without one never match a price"
    );
    assert_eq!(
        list(ListingFilter {
            price_max: Some(900),
            ..ListingFilter::default()
        })
        .await,
        ids(&[cheap, yen, sold_out, called_off]),
        "amounts compare across currencies as numbers"
    );
    assert_eq!(
        list(ListingFilter {
            price_min: Some(400),
            price_max: Some(1000),
            currency: Some("eur".to_owned()),
            ..ListingFilter::default()
        })
        .await,
        ids(&[cheap, called_off]),
        "currency keeps amounts comparable"
    );
    assert_eq!(
        list(ListingFilter {
            available: Some(true),
            ..ListingFilter::default()
        })
        .await,
        ids(&[cheap, pricey, yen]),
        "published with a ticket type that has seats left"
    );
    assert_eq!(
        list(ListingFilter {
            available: Some(false),
            ..ListingFilter::default()
        })
        .await,
        ids(&[sold_out, no_types, called_off])
    );
}

pub async fn every_listing_order_pages_through_every_event_exactly_once(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let hall = venue(&store, "Berlin").await;
    // (title, start, cheapest price): ties on every order, broken by the event id.
    let specs: [(&str, &str, Option<i64>); 8] = [
        ("beta", "2026-06-01T18:00:00Z", Some(1500)),
        ("Alpha", "2026-06-01T18:00:00Z", Some(500)),
        ("alpha", "2026-06-03T18:00:00Z", Some(500)),
        ("Gamma", "2026-06-02T18:00:00Z", None),
        ("delta", "2026-06-02T18:00:00Z", Some(0)),
        ("Épée", "2026-06-05T18:00:00Z", Some(1500)),
        ("zeta", "2026-06-04T18:00:00Z", None),
        ("Beta", "2026-06-04T18:00:00Z", Some(2500)),
    ];
    let mut events = Vec::new();
    for (title, starts_at, price) in specs {
        let then = match price {
            Some(amount) => vec![
                priced(
                    TicketTypeId(Uuid::now_v7()),
                    "Seat",
                    money(amount, "EUR"),
                    10,
                ),
                published(),
            ],
            None => vec![published()],
        };
        let id = event(&store, hall, title, starts_at, then).await;
        events.push((id.0, title.to_lowercase(), at(starts_at), price));
    }
    let head = store.head_position().await.expect("head");
    project_until(store.clone(), &read, head).await;

    let expected = |sort: ListingSort| {
        let mut sorted = events.clone();
        match sort {
            ListingSort::StartsAt => sorted.sort_by_key(|(id, _, starts, _)| (*starts, *id)),
            ListingSort::StartsAtDesc => {
                sorted.sort_by_key(|(id, _, starts, _)| std::cmp::Reverse((*starts, *id)));
            }
            ListingSort::Title => {
                sorted.sort_by(|(a_id, a, ..), (b_id, b, ..)| (a, a_id).cmp(&(b, b_id)));
            }
            ListingSort::Price => {
                sorted.sort_by_key(|(id, _, _, price)| (price.unwrap_or(i64::MAX), *id));
            }
        }
        sorted.into_iter().map(|(id, ..)| id).collect::<Vec<_>>()
    };
    for sort in [
        ListingSort::StartsAt,
        ListingSort::StartsAtDesc,
        ListingSort::Title,
        ListingSort::Price,
    ] {
        for page in [1, 3, 50] {
            let seen = list_all(
                &read,
                ListingFilter {
                    sort,
                    ..ListingFilter::default()
                },
                page,
            )
            .await;
            assert_eq!(seen, expected(sort), "{sort:?}, pages of {page}");
            assert_eq!(seen.iter().collect::<HashSet<_>>().len(), specs.len());
        }
    }
    let title_key = read
        .list_events(&ListingFilter {
            limit: 1,
            ..ListingFilter::default()
        })
        .await
        .expect("list")[0]
        .listing_key(ListingSort::Title);
    let refused = read
        .list_events(&ListingFilter {
            sort: ListingSort::Price,
            after: Some(title_key),
            limit: 5,
            ..ListingFilter::default()
        })
        .await;
    assert!(refused.is_err(), "a key of another order is refused");
}

pub async fn the_guest_list_finds_attendees_by_part_of_their_name_or_address_ignoring_case(
    backend: Backend,
) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let guests = [
        ("Ada Lovelace", "ada@example.org"),
        ("Grace Hopper", "grace@navy.example"),
        ("Émile Zola", "emile@example.fr"),
        ("Percy 100%", "percy@example.org"),
        ("Under_Score", "under@example.org"),
    ];
    let mut ids = Vec::new();
    let mut facts = Vec::new();
    for (name, email) in guests {
        let id = RegistrationId(Uuid::now_v7());
        ids.push(id.0);
        facts.push(EventFact::RegistrationConfirmed {
            registration_id: id,
            ticket_type_id: f.b,
            attendee: marquee_domain::event::Attendee {
                name: name.to_owned(),
                email: email.to_owned(),
            },
            quantity: 1,
            ticket_codes: codes(1),
            confirmed_at: at("2026-02-02T09:00:00Z"),
        });
    }
    step(&store, &read, &f.event.stream(), &facts).await;
    let search = |text: &str| {
        let read = read.clone();
        let text = text.to_owned();
        let event = f.event;
        async move {
            read.guest_list(
                event.0,
                &GuestListFilter {
                    search: Some(text),
                    limit: 100,
                    ..GuestListFilter::default()
                },
            )
            .await
            .expect("guest list")
            .expect("known event")
            .into_iter()
            .map(|g| g.registration_id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("LOVE").await, [ids[0]], "part of a name, any case");
    assert_eq!(search("navy.EX").await, [ids[1]], "part of an address");
    assert_eq!(search("émile").await, [ids[2]], "beyond ASCII");
    assert_eq!(
        search("%").await,
        [ids[3]],
        "% is a character, not a wildcard"
    );
    assert_eq!(
        search("_").await,
        [ids[4]],
        "_ is a character, not a wildcard"
    );
    assert_eq!(
        search("example.org").await,
        [ids[0], ids[3], ids[4]],
        "in guest-list order"
    );
    assert_eq!(search("nobody").await, Vec::<Uuid>::new());
}

pub async fn an_account_holds_the_registrations_recorded_for_it_across_events(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let first = published_event(&store).await;
    let second = published_event(&store).await;
    let (ann, ben) = (UserId(Uuid::now_v7()), UserId(Uuid::now_v7()));
    let (r1, r2, r3) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let holder = |registration_id, holder| EventFact::RegistrationHolderRecorded {
        registration_id,
        holder,
    };
    let r1_codes = codes(2);
    step(
        &store,
        &read,
        &first.event.stream(),
        &[
            confirmed_with(r1, first.b, "Ann", r1_codes.clone()),
            holder(r1, ann),
            confirmed_with(r2, first.b, "Ben", codes(1)),
        ],
    )
    .await;
    // Ben's holder in a later batch than his registration.
    step(&store, &read, &first.event.stream(), &[holder(r2, ben)]).await;
    step(
        &store,
        &read,
        &second.event.stream(),
        &[
            held(r3, second.a, 1, "2026-02-02T10:15:00Z"),
            holder(r3, ann),
        ],
    )
    .await;
    step(
        &store,
        &read,
        &first.event.stream(),
        &[checked_in(
            &r1_codes[0],
            r1,
            first.b,
            "n-1",
            "2026-06-01T18:05:00Z",
        )],
    )
    .await;

    let held_by = |user: UserId, filter: HoldingsFilter| {
        let read = read.clone();
        async move {
            read.holdings(
                user.0,
                &HoldingsFilter {
                    limit: if filter.limit == 0 { 10 } else { filter.limit },
                    ..filter
                },
            )
            .await
            .expect("holdings")
        }
    };
    let anns = held_by(ann, HoldingsFilter::default()).await;
    assert_eq!(
        anns.iter().map(|h| h.registration_id).collect::<Vec<_>>(),
        [r3.0, r1.0],
        "newest first, across events"
    );
    let (hold, free) = (&anns[0], &anns[1]);
    assert_eq!(hold.status, RegistrationStatus::Held);
    assert_eq!(hold.event.event_id, second.event.0);
    assert_eq!(hold.event.title, "Rush Night");
    assert_eq!(hold.ticket_type_name.as_deref(), Some("Standard"));
    assert_eq!(hold.price.as_ref().map(|p| p.amount_minor), Some(2500));
    assert_eq!(free.status, RegistrationStatus::Confirmed);
    assert_eq!(free.event.starts_at, Some(at("2026-06-01T18:00:00Z")));
    assert_eq!(free.event.city, "Berlin");
    assert_eq!(free.quantity, 2);
    assert_eq!(
        free.tickets
            .iter()
            .map(|t| (t.code.clone(), t.checked_in_at))
            .collect::<Vec<_>>(),
        [
            (r1_codes[0].0.clone(), Some(at("2026-06-01T18:05:00Z"))),
            (r1_codes[1].0.clone(), None),
        ]
    );
    let bens = held_by(ben, HoldingsFilter::default()).await;
    assert_eq!(
        bens.iter().map(|h| h.registration_id).collect::<Vec<_>>(),
        [r2.0],
        "only what is recorded for the account"
    );

    let page = held_by(
        ann,
        HoldingsFilter {
            limit: 1,
            ..HoldingsFilter::default()
        },
    )
    .await;
    let rest = held_by(
        ann,
        HoldingsFilter {
            before: Some(page[0].key),
            ..HoldingsFilter::default()
        },
    )
    .await;
    assert_eq!(
        (page[0].registration_id, rest[0].registration_id),
        (r3.0, r1.0)
    );
    let confirmed = held_by(
        ann,
        HoldingsFilter {
            status: Some(RegistrationStatus::Confirmed),
            ..HoldingsFilter::default()
        },
    )
    .await;
    assert_eq!(confirmed.len(), 1);
    assert!(
        held_by(UserId(Uuid::now_v7()), HoldingsFilter::default())
            .await
            .is_empty()
    );
}

fn question(id: &str, kind: QuestionKind, options: &[&str]) -> Question {
    Question {
        id: id.to_owned(),
        label: format!("What {id}?"),
        kind,
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        required: false,
    }
}

fn answers(list: &[(&str, &[&str])]) -> Answers {
    list.iter()
        .map(|(id, values)| {
            let value = match values {
                [one] if *id != "talks" => AnswerValue::One((*one).to_owned()),
                many => AnswerValue::Many(many.iter().map(|v| (*v).to_owned()).collect()),
            };
            ((*id).to_owned(), value)
        })
        .collect()
}

fn answered(registration_id: RegistrationId, list: &[(&str, &[&str])]) -> EventFact {
    EventFact::AnswersGiven {
        registration_id,
        answers: answers(list),
    }
}

/// The registrations of [`scripted_sales`], by name.
pub struct Script {
    f: Fixture,
}

/// Questions, then: Ada's two free seats with answers; Bo's paid hold, answered while held,
/// paid and confirmed; Hal's hold that expires and Ida's that is cancelled; Bo cancelling,
/// refunded and the refund completed; Cy's free seat answered, then answered again; and three
/// scans at the door, one of them reverted. Several batches.
async fn scripted_sales(store: &Arc<dyn EventStore>, read: &ReadModels) -> Script {
    let f = published_event(store).await;
    let stream = f.event.stream();
    let (ada, bo, hal, ida, cy) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let (ada_codes, cy_codes) = (codes(2), codes(1));
    step(
        store,
        read,
        &stream,
        &[
            EventFact::RegistrationQuestionsSet {
                questions: vec![
                    question("country", QuestionKind::Country, &[]),
                    question("age", QuestionKind::AgeRange, &[]),
                    question("talks", QuestionKind::MultipleChoice, &["rust", "sql"]),
                    question("note", QuestionKind::Text, &[]),
                ],
            },
            confirmed_with(ada, f.b, "Ada", ada_codes.clone()),
            answered(
                ada,
                &[
                    ("country", &["DE"]),
                    ("age", &["25_34"]),
                    ("talks", &["rust", "sql"]),
                    ("note", &["a window seat, please"]),
                ],
            ),
            held_with(bo, f.a, "Bo", codes(1), "2026-02-02T10:15:00Z"),
            answered(bo, &[("country", &["FR"]), ("note", &["none"])]),
        ],
    )
    .await;
    step(
        store,
        read,
        &stream,
        &[
            payment_received(bo, "pay_bo", 2500),
            hold_confirmed(bo, f.a, 1, "pay_bo", false),
            held(hal, f.a, 2, "2026-02-02T10:15:00Z"),
            hold_expired(hal, f.a, 2),
            held(ida, f.a, 1, "2026-02-02T10:15:00Z"),
        ],
    )
    .await;
    step(
        store,
        read,
        &stream,
        &[
            cancelled(ida, f.a, 1),
            cancelled(bo, f.a, 1),
            refund_due(bo, "pay_bo", "2026-02-03T09:00:00Z"),
        ],
    )
    .await;
    step(
        store,
        read,
        &stream,
        &[
            refund_completed(bo, "pay_bo"),
            confirmed_with(cy, f.b, "Cy", cy_codes.clone()),
            answered(cy, &[("country", &["DE"]), ("age", &["65_plus"])]),
            checked_in(&ada_codes[0], ada, f.b, "n-1", "2026-06-01T18:05:00Z"),
            checked_in(&ada_codes[1], ada, f.b, "n-2", "2026-06-01T18:40:00Z"),
        ],
    )
    .await;
    step(
        store,
        read,
        &stream,
        &[
            checked_in(&cy_codes[0], cy, f.b, "n-3", "2026-06-01T19:10:00Z"),
            check_in_reverted(&ada_codes[1], ada),
            answered(cy, &[("country", &["PT"])]),
        ],
    )
    .await;
    Script { f }
}

async fn analytics_of(read: &ReadModels, event: EventId) -> EventAnalytics {
    read.event_analytics(event.0)
        .await
        .expect("analytics")
        .expect("known event")
}

pub async fn analytics_count_a_scripted_sequence_exactly(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let Script { f } = scripted_sales(&store, &read).await;
    let a = analytics_of(&read, f.event).await;

    assert_eq!(a.event.title, "Rush Night");
    assert_eq!(
        (
            a.event.capacity,
            a.event.seats_confirmed,
            a.event.seats_held
        ),
        (50, 3, 0)
    );
    assert_eq!(
        a.ticket_types
            .iter()
            .map(|t| (
                t.name.as_str(),
                t.quantity,
                t.seats_confirmed,
                t.seats_held,
                t.seats_available
            ))
            .collect::<Vec<_>>(),
        [("Standard", 30, 0, 0, 30), ("Free", 30, 3, 0, 30 - 3)]
    );

    let day = |d: &str, t: TicketTypeId| {
        a.sales
            .iter()
            .find(|s| s.day.to_string() == d && s.ticket_type_id == t.0)
            .map(|s| (s.currency.clone(), s.counts))
            .unwrap_or_else(|| panic!("no sales on {d}: {:?}", a.sales))
    };
    assert_eq!(a.sales.len(), 4, "{:?}", a.sales);
    assert_eq!(
        day("2026-02-02", f.a),
        (
            "EUR".to_owned(),
            SalesCounts {
                orders_confirmed: 1,
                seats_confirmed: 1,
                revenue_minor: 2500,
                holds_placed: 3,
                seats_held: 4,
                holds_expired: 1,
                seats_expired: 2,
                payments_received: 1,
                received_minor: 2500,
                ..SalesCounts::default()
            }
        )
    );
    assert_eq!(
        day("2026-02-02", f.b),
        (
            "EUR".to_owned(),
            SalesCounts {
                orders_confirmed: 2,
                seats_confirmed: 3,
                ..SalesCounts::default()
            }
        ),
        "free seats count in their ticket type's currency, at no revenue"
    );
    assert_eq!(
        day("2026-02-03", f.a).1,
        SalesCounts {
            holds_cancelled: 1,
            orders_cancelled: 1,
            seats_cancelled: 1,
            cancelled_revenue_minor: 2500,
            refunds_due: 1,
            refund_due_minor: 2500,
            ..SalesCounts::default()
        }
    );
    assert_eq!(
        day("2026-02-04", f.a).1,
        SalesCounts {
            refunds_completed: 1,
            refunded_minor: 2500,
            ..SalesCounts::default()
        }
    );
    assert_eq!(a.refunds.len(), 1);
    let refund = &a.refunds[0];
    assert_eq!(
        (
            refund.reason.as_str(),
            refund.currency.as_str(),
            refund.due,
            refund.due_minor,
            refund.completed,
            refund.completed_minor
        ),
        ("attendee_cancelled", "EUR", 1, 2500, 1, 2500)
    );

    assert_eq!(
        a.check_ins
            .iter()
            .map(|c| (c.hour, c.ticket_type_id, c.check_ins, c.reverted))
            .collect::<Vec<_>>(),
        [
            (at("2026-06-01T18:00:00Z"), f.b.0, 2, 1),
            (at("2026-06-01T19:00:00Z"), f.b.0, 1, 0),
        ]
    );

    let questions: Vec<_> = a
        .questions
        .iter()
        .map(|q| {
            (
                q.question_id.as_str(),
                q.kind.as_str(),
                q.asked,
                q.answered,
                q.answers
                    .iter()
                    .map(|c| (c.answer.as_str(), c.registrations))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        questions,
        [
            // Ada (DE) and Cy (DE, then PT); Bo's FR stopped counting when he cancelled.
            ("country", "country", true, 2, vec![("DE", 1), ("PT", 1)]),
            // Cy's second answers left the age out.
            ("age", "age_range", true, 1, vec![("25_34", 1)]),
            (
                "talks",
                "multiple_choice",
                true,
                1,
                vec![("rust", 1), ("sql", 1)]
            ),
            // Free text: counted as answered, never stored.
            ("note", "text", true, 1, vec![]),
        ]
    );
}

pub async fn analytics_after_a_rebuild_equal_the_live_ones(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let Script { f } = scripted_sales(&store, &read).await;
    // Questions change: one is no longer asked; its counts stay.
    step(
        &store,
        &read,
        &f.event.stream(),
        &[EventFact::RegistrationQuestionsSet {
            questions: vec![question("country", QuestionKind::Country, &[])],
        }],
    )
    .await;
    let live = analytics_of(&read, f.event).await;
    assert_eq!(
        live.questions
            .iter()
            .map(|q| (q.question_id.as_str(), q.asked))
            .collect::<Vec<_>>(),
        [
            ("country", true),
            ("age", false),
            ("talks", false),
            ("note", false)
        ]
    );
    read.rebuild(
        store.as_ref(),
        PROJECTION,
        &RebuildOptions {
            batch_size: 3,
            ..RebuildOptions::default()
        },
        &mut |_| {},
    )
    .await
    .expect("rebuild");
    assert_eq!(analytics_of(&read, f.event).await, live);
}

pub async fn analytics_facts_repeated_in_the_log_count_once(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let (bo, ada) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );
    let ada_codes = codes(1);
    let twice = |facts: Vec<EventFact>| {
        facts
            .iter()
            .flat_map(|fact| [fact.clone(), fact.clone()])
            .collect::<Vec<_>>()
    };
    step(
        &store,
        &read,
        &f.event.stream(),
        &twice(vec![
            held_with(bo, f.a, "Bo", codes(1), "2026-02-02T10:15:00Z"),
            payment_received(bo, "pay_bo", 2500),
            hold_confirmed(bo, f.a, 1, "pay_bo", false),
            confirmed_with(ada, f.b, "Ada", ada_codes.clone()),
        ]),
    )
    .await;
    // And again in later batches.
    step(
        &store,
        &read,
        &f.event.stream(),
        &twice(vec![
            payment_received(bo, "pay_bo", 2500),
            checked_in(&ada_codes[0], ada, f.b, "n-1", "2026-06-01T18:05:00Z"),
            cancelled(bo, f.a, 1),
            refund_due(bo, "pay_bo", "2026-02-03T09:00:00Z"),
        ]),
    )
    .await;
    step(
        &store,
        &read,
        &f.event.stream(),
        &twice(vec![refund_completed(bo, "pay_bo")]),
    )
    .await;
    let a = analytics_of(&read, f.event).await;
    let mut total = SalesCounts::default();
    for day in &a.sales {
        let c = day.counts;
        total.orders_confirmed += c.orders_confirmed;
        total.holds_placed += c.holds_placed;
        total.payments_received += c.payments_received;
        total.received_minor += c.received_minor;
        total.orders_cancelled += c.orders_cancelled;
        total.refunds_due += c.refunds_due;
        total.refunds_completed += c.refunds_completed;
        total.refunded_minor += c.refunded_minor;
    }
    assert_eq!(
        total,
        SalesCounts {
            orders_confirmed: 2,
            holds_placed: 1,
            payments_received: 1,
            received_minor: 2500,
            orders_cancelled: 1,
            refunds_due: 1,
            refunds_completed: 1,
            refunded_minor: 2500,
            ..SalesCounts::default()
        }
    );
    assert_eq!(
        a.check_ins.iter().map(|c| c.check_ins).sum::<u64>(),
        1,
        "one scan"
    );
}
