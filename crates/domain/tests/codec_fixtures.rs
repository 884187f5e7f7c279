//! Every fact ever written stays readable: each fixture in `tests/fixtures/` decodes, and each
//! fact type at its current schema version has a fixture that re-encodes byte for byte.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta};
use marquee_domain::event::{
    AnswerValue, Attendee, DetailsChange, EventFact, PolicyChange, Question, QuestionKind,
    RefundReason, ScheduledReminder,
};
use marquee_domain::organization::{OrganizationFact, Role};
use marquee_domain::user::UserFact;
use marquee_domain::venue::VenueFact;
use marquee_domain::{
    ApiTokenId, DecodeError, EventId, FactCodec, Money, OrganizationId, PaymentId, RegistrationId,
    TicketCode, TicketTypeId, Timestamp, UserId, VenueId, WaitlistEntryId, WebhookId,
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// One fixture file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    fact_type: String,
    schema_version: u32,
    data: Value,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every fixture of one aggregate, with the file it came from.
fn fixtures(aggregate: &str) -> Vec<(PathBuf, Fixture)> {
    let dir = fixtures_dir().join(aggregate);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).expect("readable fixture");
            let fixture: Fixture = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not a fixture: {e}", path.display()));
            let expected_name = format!("{}.v{}.json", fixture.fact_type, fixture.schema_version);
            assert_eq!(
                path.file_name().and_then(|n| n.to_str()),
                Some(expected_name.as_str()),
                "{}: the file name must say the fact type and version it holds",
                path.display()
            );
            (path, fixture)
        })
        .collect()
}

/// Decodes every fixture of `F`'s aggregate and re-encodes it: at the current version the
/// result must be the fixture itself, at older versions it must decode to the same fact again.
fn every_fixture_round_trips<F: FactCodec + PartialEq + Debug>() -> usize {
    let fixtures = fixtures(F::AGGREGATE);
    assert!(!fixtures.is_empty(), "no fixtures for {}", F::AGGREGATE);
    for (path, fixture) in &fixtures {
        let fact = F::decode(
            &fixture.fact_type,
            fixture.schema_version,
            fixture.data.clone(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (fact_type, version, data) = fact.encode();
        assert_eq!(fact_type, fixture.fact_type, "{}", path.display());
        if fixture.schema_version == F::schema_version(&fixture.fact_type) {
            assert_eq!(version, fixture.schema_version, "{}", path.display());
            assert_eq!(
                data,
                fixture.data,
                "{}: re-encoding changed it",
                path.display()
            );
        }
        let again = F::decode(&fact_type, version, data)
            .unwrap_or_else(|e| panic!("{}: re-encoded fact: {e}", path.display()));
        assert_eq!(again, fact, "{}", path.display());
    }
    fixtures.len()
}

/// Fails when a fact type at its current version has no fixture, and checks the sample itself
/// survives a round trip.
fn every_sample_has_a_fixture<F: FactCodec + PartialEq + Debug>(samples: &[F]) {
    let present: BTreeSet<(String, u32)> = fixtures(F::AGGREGATE)
        .into_iter()
        .map(|(_, f)| (f.fact_type, f.schema_version))
        .collect();
    for sample in samples {
        let (fact_type, version, data) = sample.encode();
        assert!(
            present.contains(&(fact_type.clone(), version)),
            "no fixture tests/fixtures/{}/{fact_type}.v{version}.json",
            F::AGGREGATE
        );
        assert_eq!(
            F::decode(&fact_type, version, data).as_ref(),
            Ok(sample),
            "{fact_type} does not survive a round trip"
        );
    }
}

fn at(seconds: i64) -> Timestamp {
    DateTime::UNIX_EPOCH + TimeDelta::seconds(1_906_545_600 + seconds)
}

/// One of each venue fact. The match makes a new variant a compile error here until it gets a
/// sample (and so a fixture).
fn venue_samples() -> Vec<VenueFact> {
    let samples = vec![
        VenueFact::VenueCreated {
            venue_id: VenueId(Uuid::from_u128(1)),
            name: "Hall".into(),
            city: "Berlin".into(),
            address: None,
            capacity: 10,
            timezone: "UTC".into(),
            created_at: at(0),
        },
        VenueFact::VenueRenamed {
            name: "Hall 2".into(),
        },
        VenueFact::VenueCapacityChanged { capacity: 20 },
        VenueFact::EventBooked {
            event_id: EventId(Uuid::from_u128(4)),
            starts_at: at(3_600),
            ends_at: at(7_200),
        },
        VenueFact::EventReleased {
            event_id: EventId(Uuid::from_u128(4)),
        },
    ];
    for sample in &samples {
        match sample {
            VenueFact::VenueCreated { .. }
            | VenueFact::VenueRenamed { .. }
            | VenueFact::VenueCapacityChanged { .. }
            | VenueFact::EventBooked { .. }
            | VenueFact::EventReleased { .. } => {}
        }
    }
    samples
}

/// One of each event fact; see [`venue_samples`] for why the match is there.
fn event_samples() -> Vec<EventFact> {
    let ticket_type_id = TicketTypeId(Uuid::from_u128(2));
    let registration_id = RegistrationId(Uuid::from_u128(3));
    let entry_id = WaitlistEntryId(Uuid::from_u128(5));
    let pat = || Attendee {
        name: "Pat".into(),
        email: "pat@example.org".into(),
    };
    let euros = |amount_minor| Money {
        amount_minor,
        currency: "EUR".into(),
    };
    let payment = || PaymentId("pay_0123456789abcdef01234567".into());
    let samples = vec![
        EventFact::EventDrafted {
            event_id: EventId(Uuid::from_u128(4)),
            venue_id: VenueId(Uuid::from_u128(1)),
            title: "Title".into(),
            description: String::new(),
            category: "Category".into(),
            starts_at: at(3_600),
            ends_at: at(7_200),
            timezone: "UTC".into(),
            capacity: 10,
            max_per_order: 2,
        },
        EventFact::EventDetailsUpdated(DetailsChange {
            category: Some("Other".into()),
            ..DetailsChange::default()
        }),
        EventFact::TicketTypeAdded {
            ticket_type_id,
            name: "Standard".into(),
            price: Money {
                amount_minor: 1_250,
                currency: "EUR".into(),
            },
            quantity: 5,
            sales_start: None,
            sales_end: Some(at(60)),
        },
        EventFact::EventPublished {
            published_at: at(1),
        },
        EventFact::EventCancelled {
            reason: None,
            cancelled_at: at(2),
        },
        EventFact::EventCapacityChanged { capacity: 8 },
        EventFact::RegistrationConfirmed {
            registration_id,
            ticket_type_id,
            attendee: Attendee {
                name: "Pat".into(),
                email: "pat@example.org".into(),
            },
            quantity: 1,
            ticket_codes: vec![TicketCode("a".repeat(32))],
            confirmed_at: at(3),
        },
        EventFact::RegistrationCancelled {
            registration_id,
            ticket_type_id,
            quantity: 1,
            cancelled_at: at(4),
        },
        EventFact::EventPolicyChanged(PolicyChange {
            hold_seconds: Some(600),
            max_per_attendee: Some(4),
            reminder_offsets_seconds: Some(vec![86_400, 7_200]),
            ..PolicyChange::default()
        }),
        EventFact::RegistrationQuestionsSet {
            questions: vec![
                Question {
                    id: "diet".into(),
                    label: "Diet".into(),
                    kind: QuestionKind::SingleChoice,
                    options: vec!["none".into(), "vegan".into()],
                    required: true,
                },
                Question {
                    id: "country".into(),
                    label: "Country".into(),
                    kind: QuestionKind::Country,
                    options: vec![],
                    required: false,
                },
            ],
        },
        EventFact::EventRescheduled {
            starts_at: at(7_200),
            ends_at: at(10_800),
            previous_starts_at: at(3_600),
            previous_ends_at: at(7_200),
            rescheduled_at: at(5),
        },
        EventFact::SeatsHeld {
            registration_id,
            ticket_type_id,
            attendee: pat(),
            quantity: 2,
            ticket_codes: vec![TicketCode("b".repeat(32)), TicketCode("c".repeat(32))],
            price: euros(2_500),
            expires_at: at(906),
            held_at: at(6),
        },
        EventFact::AnswersGiven {
            registration_id,
            answers: [
                ("diet".to_owned(), AnswerValue::One("vegan".into())),
                (
                    "topics".to_owned(),
                    AnswerValue::Many(vec!["rust".into(), "sql".into()]),
                ),
            ]
            .into_iter()
            .collect(),
        },
        EventFact::PaymentPending {
            registration_id,
            payment_id: payment(),
            reported_at: at(7),
        },
        EventFact::PaymentDeclined {
            registration_id,
            payment_id: payment(),
            reason: "card_declined".into(),
            declined_at: at(8),
        },
        EventFact::PaymentReceived {
            registration_id,
            payment_id: payment(),
            amount: euros(2_500),
            received_at: at(9),
        },
        EventFact::HoldConfirmed {
            registration_id,
            ticket_type_id,
            quantity: 2,
            payment_id: payment(),
            late: false,
            confirmed_at: at(10),
        },
        EventFact::HoldExpired {
            registration_id,
            ticket_type_id,
            quantity: 2,
            expired_at: at(11),
        },
        EventFact::RefundDue {
            registration_id,
            payment_id: payment(),
            amount: euros(2_500),
            reason: RefundReason::LatePayment,
            due_at: at(12),
        },
        EventFact::RefundCompleted {
            registration_id,
            payment_id: payment(),
            refund_id: "re_1".into(),
            completed_at: at(13),
        },
        EventFact::WaitlistJoined {
            entry_id,
            ticket_type_id,
            attendee: pat(),
            quantity: 1,
            answers: Default::default(),
            joined_at: at(14),
        },
        EventFact::WaitlistOfferMade {
            entry_id,
            ticket_type_id,
            quantity: 1,
            expires_at: at(86_415),
            offered_at: at(15),
        },
        EventFact::WaitlistOfferExpired {
            entry_id,
            ticket_type_id,
            quantity: 1,
            expired_at: at(16),
        },
        EventFact::WaitlistOfferClaimed {
            entry_id,
            registration_id,
            ticket_type_id,
            quantity: 1,
            claimed_at: at(17),
        },
        EventFact::WaitlistLeft {
            entry_id,
            ticket_type_id,
            quantity: 1,
            had_offer: true,
            left_at: at(18),
        },
        EventFact::TicketCheckedIn {
            ticket_code: TicketCode("b".repeat(32)),
            registration_id,
            ticket_type_id,
            nonce: "door-1-0001".into(),
            scanned_at: at(19),
            recorded_at: at(20),
        },
        EventFact::CheckInReverted {
            ticket_code: TicketCode("b".repeat(32)),
            registration_id,
            reverted_at: at(21),
        },
        EventFact::RegistrationHolderRecorded {
            registration_id,
            holder: UserId(Uuid::from_u128(6)),
        },
        EventFact::WaitlistHolderRecorded {
            entry_id,
            holder: UserId(Uuid::from_u128(6)),
        },
        EventFact::ReminderScheduled {
            reminder: Some(ScheduledReminder {
                offset_seconds: 3_600,
                starts_at: at(7_200),
                due_at: at(3_600),
            }),
        },
        EventFact::ReminderDue {
            offset_seconds: 3_600,
            starts_at: at(7_200),
            due_at: at(3_600),
            reminded_at: at(3_601),
        },
    ];
    for sample in &samples {
        match sample {
            EventFact::EventDrafted { .. }
            | EventFact::EventDetailsUpdated(_)
            | EventFact::TicketTypeAdded { .. }
            | EventFact::EventPublished { .. }
            | EventFact::EventCancelled { .. }
            | EventFact::EventCapacityChanged { .. }
            | EventFact::RegistrationConfirmed { .. }
            | EventFact::RegistrationCancelled { .. }
            | EventFact::EventPolicyChanged(_)
            | EventFact::RegistrationQuestionsSet { .. }
            | EventFact::EventRescheduled { .. }
            | EventFact::SeatsHeld { .. }
            | EventFact::AnswersGiven { .. }
            | EventFact::PaymentPending { .. }
            | EventFact::PaymentDeclined { .. }
            | EventFact::PaymentReceived { .. }
            | EventFact::HoldConfirmed { .. }
            | EventFact::HoldExpired { .. }
            | EventFact::RefundDue { .. }
            | EventFact::RefundCompleted { .. }
            | EventFact::WaitlistJoined { .. }
            | EventFact::WaitlistOfferMade { .. }
            | EventFact::WaitlistOfferExpired { .. }
            | EventFact::WaitlistOfferClaimed { .. }
            | EventFact::WaitlistLeft { .. }
            | EventFact::TicketCheckedIn { .. }
            | EventFact::CheckInReverted { .. }
            | EventFact::RegistrationHolderRecorded { .. }
            | EventFact::WaitlistHolderRecorded { .. }
            | EventFact::ReminderScheduled { .. }
            | EventFact::ReminderDue { .. } => {}
        }
    }
    samples
}

/// One of each user fact; see [`venue_samples`] for why the match is there.
fn user_samples() -> Vec<UserFact> {
    let samples = vec![
        UserFact::UserRegistered {
            user_id: UserId(Uuid::from_u128(6)),
            name: "Pat".into(),
            email: "pat@example.org".into(),
            locale: "de-AT".into(),
            registered_at: at(0),
        },
        UserFact::UserProfileChanged {
            name: None,
            locale: Some("en".into()),
        },
        UserFact::UserPasswordChanged { changed_at: at(1) },
        UserFact::UserErased {
            erased_at: at(2),
            person_id: "5f0e4c2a9b1d4e6f8a7c3b2d1e0f9a8b".into(),
        },
        UserFact::MembershipRecorded {
            organization_id: OrganizationId(Uuid::from_u128(7)),
            role: Role::Organizer,
        },
        UserFact::DepartureRecorded {
            organization_id: OrganizationId(Uuid::from_u128(7)),
        },
    ];
    for sample in &samples {
        match sample {
            UserFact::UserRegistered { .. }
            | UserFact::UserProfileChanged { .. }
            | UserFact::UserPasswordChanged { .. }
            | UserFact::UserErased { .. }
            | UserFact::MembershipRecorded { .. }
            | UserFact::DepartureRecorded { .. } => {}
        }
    }
    samples
}

/// One of each organization fact; see [`venue_samples`] for why the match is there.
fn organization_samples() -> Vec<OrganizationFact> {
    let user = UserId(Uuid::from_u128(6));
    let token = ApiTokenId(Uuid::from_u128(8));
    let samples = vec![
        OrganizationFact::OrganizationCreated {
            organization_id: OrganizationId(Uuid::from_u128(7)),
            name: "Kulturverein".into(),
            owner: user,
            created_at: at(0),
        },
        OrganizationFact::OrganizationRenamed {
            name: "Kulturverein e.V.".into(),
        },
        OrganizationFact::MemberAdded {
            user_id: UserId(Uuid::from_u128(9)),
            role: Role::DoorStaff,
        },
        OrganizationFact::MemberRoleChanged {
            user_id: UserId(Uuid::from_u128(9)),
            role: Role::Analyst,
        },
        OrganizationFact::MemberRemoved {
            user_id: UserId(Uuid::from_u128(9)),
        },
        OrganizationFact::ApiTokenCreated {
            token_id: token,
            name: "Box office".into(),
            roles: [Role::DoorStaff, Role::Auditor].into_iter().collect(),
            created_by: Some(user),
            created_at: at(1),
        },
        OrganizationFact::ApiTokenRevoked {
            token_id: token,
            revoked_at: at(2),
        },
        OrganizationFact::WebhookEndpointAdded {
            webhook_id: WebhookId(Uuid::from_u128(10)),
            url: "https://hooks.example.org/marquee".into(),
            fact_types: [
                "RegistrationConfirmed".to_owned(),
                "EventCancelled".to_owned(),
            ]
            .into_iter()
            .collect(),
            created_by: Some(user),
            created_at: at(3),
        },
        OrganizationFact::WebhookEndpointRemoved {
            webhook_id: WebhookId(Uuid::from_u128(10)),
            removed_at: at(4),
        },
    ];
    for sample in &samples {
        match sample {
            OrganizationFact::OrganizationCreated { .. }
            | OrganizationFact::OrganizationRenamed { .. }
            | OrganizationFact::MemberAdded { .. }
            | OrganizationFact::MemberRoleChanged { .. }
            | OrganizationFact::MemberRemoved { .. }
            | OrganizationFact::ApiTokenCreated { .. }
            | OrganizationFact::ApiTokenRevoked { .. }
            | OrganizationFact::WebhookEndpointAdded { .. }
            | OrganizationFact::WebhookEndpointRemoved { .. } => {}
        }
    }
    samples
}

#[test]
fn every_user_fixture_decodes_and_re_encodes_unchanged() {
    assert_eq!(every_fixture_round_trips::<UserFact>(), 6);
}

#[test]
fn every_organization_fixture_decodes_and_re_encodes_unchanged() {
    assert_eq!(every_fixture_round_trips::<OrganizationFact>(), 9);
}

#[test]
fn every_user_and_organization_fact_type_has_a_fixture() {
    every_sample_has_a_fixture(&user_samples());
    every_sample_has_a_fixture(&organization_samples());
}

#[test]
fn every_venue_fixture_decodes_and_re_encodes_unchanged() {
    assert_eq!(every_fixture_round_trips::<VenueFact>(), 5);
}

#[test]
fn every_event_fixture_decodes_and_re_encodes_unchanged() {
    assert_eq!(every_fixture_round_trips::<EventFact>(), 31);
}

#[test]
fn every_venue_fact_type_has_a_fixture() {
    every_sample_has_a_fixture(&venue_samples());
}

#[test]
fn every_event_fact_type_has_a_fixture() {
    every_sample_has_a_fixture(&event_samples());
}

#[test]
fn every_fixture_is_a_fact_type_the_samples_know() {
    // A fixture for a type no sample covers means a sample is missing (or a fixture is stray).
    for (aggregate, known) in [
        (
            "venue",
            venue_samples()
                .iter()
                .map(FactCodec::fact_type)
                .collect::<BTreeSet<_>>(),
        ),
        (
            "event",
            event_samples()
                .iter()
                .map(FactCodec::fact_type)
                .collect::<BTreeSet<_>>(),
        ),
        (
            "user",
            user_samples()
                .iter()
                .map(FactCodec::fact_type)
                .collect::<BTreeSet<_>>(),
        ),
        (
            "organization",
            organization_samples()
                .iter()
                .map(FactCodec::fact_type)
                .collect::<BTreeSet<_>>(),
        ),
    ] {
        for (path, fixture) in fixtures(aggregate) {
            assert!(
                known.contains(&fixture.fact_type),
                "{}: no sample of {}",
                path.display(),
                fixture.fact_type
            );
        }
    }
}

#[test]
fn facts_are_stored_under_their_aggregate_and_type_names() {
    assert_eq!(VenueFact::AGGREGATE, "venue");
    assert_eq!(EventFact::AGGREGATE, "event");
    let (fact_type, version, data) = EventFact::EventCapacityChanged { capacity: 8 }.encode();
    assert_eq!(
        (fact_type.as_str(), version, data),
        ("EventCapacityChanged", 1, json!({ "capacity": 8 }))
    );
}

#[test]
fn decoding_an_unknown_fact_type_is_refused_as_unknown() {
    assert_eq!(
        EventFact::decode("EventTeleported", 1, json!({})),
        Err(DecodeError::UnknownType("EventTeleported".into()))
    );
    assert_eq!(
        VenueFact::decode(
            "EventPublished",
            1,
            json!({ "published_at": "2030-06-01T12:00:00Z" })
        ),
        Err(DecodeError::UnknownType("EventPublished".into()))
    );
}

#[test]
fn decoding_a_version_newer_than_this_build_is_refused_as_from_the_future() {
    assert_eq!(
        EventFact::decode("EventCapacityChanged", 2, json!({ "capacity": 8 })),
        Err(DecodeError::FutureVersion {
            fact_type: "EventCapacityChanged".into(),
            version: 2,
            current: 1,
        })
    );
    assert_eq!(
        VenueFact::decode("VenueRenamed", 7, json!({ "name": "Hall" })),
        Err(DecodeError::FutureVersion {
            fact_type: "VenueRenamed".into(),
            version: 7,
            current: 1,
        })
    );
}

#[test]
fn decoding_a_body_of_the_wrong_shape_is_refused_as_malformed() {
    for data in [
        json!({ "capacity": "eight" }),
        json!({}),
        json!([8]),
        json!("capacity"),
    ] {
        assert!(
            matches!(
                EventFact::decode("EventCapacityChanged", 1, data.clone()),
                Err(DecodeError::Malformed { ref fact_type, version: 1, .. })
                    if fact_type == "EventCapacityChanged"
            ),
            "{data} should be malformed"
        );
    }
}

#[test]
fn a_fixture_body_may_omit_optional_fields() {
    // Old writers may have left out fields that default to none; readers must cope.
    let fact = EventFact::decode(
        "TicketTypeAdded",
        1,
        json!({
            "ticket_type_id": "00000000-0000-0000-0000-000000000061",
            "name": "General admission",
            "price": { "amount_minor": 0, "currency": "EUR" },
            "quantity": 50
        }),
    );
    assert!(
        matches!(
            fact,
            Ok(EventFact::TicketTypeAdded {
                sales_start: None,
                sales_end: None,
                ..
            })
        ),
        "{fact:?}"
    );
}

#[test]
fn a_webhook_can_ask_for_exactly_the_fact_types_an_organization_owns() {
    let owned: BTreeSet<String> = ["venue", "event", "organization"]
        .into_iter()
        .flat_map(fixtures)
        .map(|(_, fixture)| fixture.fact_type)
        .collect();
    let offered: BTreeSet<String> = marquee_domain::organization::WEBHOOK_FACT_TYPES
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    assert_eq!(offered, owned);
}
