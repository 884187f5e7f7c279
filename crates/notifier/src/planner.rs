//! From facts to notifications: which e-mails and webhook deliveries a fact calls for, written
//! (e-mails rendered and sealed) before anything is sent.
//!
//! | fact | e-mail (template) | to |
//! |---|---|---|
//! | `RegistrationConfirmed`, `HoldConfirmed` | `registration_confirmed`, with the ticket codes | the attendee |
//! | `SeatsHeld` | `hold_expiring`, sent shortly before the hold expires, only if still unpaid | the attendee |
//! | `WaitlistOfferMade` | `waitlist_offer`, with the deadline | the waiting attendee |
//! | `RegistrationCancelled` (not as part of an event's cancellation) | `registration_cancelled` | the attendee |
//! | `RefundCompleted` | `refund_completed` | the attendee |
//! | `EventRescheduled` | `event_rescheduled` | every attendee holding or confirmed |
//! | `EventCancelled` | `event_cancelled` | every attendee holding or confirmed until then |
//! | `ReminderDue` | `reminder`, with the attendee's codes | every confirmed attendee |
//!
//! Attendees are told apart by e-mail address (several registrations of one address get one
//! message). Erased attendees (whose data reads `[erased]`) get nothing, nor do addresses that
//! are not addresses. Every fact of an organization that an active webhook endpoint asks for
//! becomes one delivery to it (facts from before the endpoint existed excepted).
//!
//! A message is rendered in the recipient's locale (the locale of the account signed in with
//! that address, else English) and sealed under the recipient's key as the notification's
//! payload: the notifier's table holds no readable personal data, and an erasure shreds what is
//! still pending.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use marquee_auth::{AuthError, Vault};
use marquee_domain::event::{Event, EventFact, RegistrationStatus};
use marquee_domain::organization::webhook_receives;
use marquee_domain::user::UserFact;
use marquee_domain::{ERASED, FactCodec, Money, TicketCode};
use marquee_store::RecordedFact;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::NotifierError;
use crate::mail::Email;
use crate::state::{World, open_facts};
use crate::store::{Channel, Endpoint, NewNotification, NotifierStore};
use crate::templates::{Templates, format_lead, format_money, format_time};

/// Longest a hold warning comes before the hold expires (half the hold at most).
pub const HOLD_WARNING: TimeDelta = TimeDelta::minutes(5);

/// When the `hold_expiring` message of a hold held at `held_at` until `expires_at` goes out:
/// five minutes before the expiry, or halfway through a shorter hold.
pub fn hold_warning_at(held_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
    let half = (expires_at - held_at) / 2;
    expires_at - HOLD_WARNING.min(half).max(TimeDelta::zero())
}

/// One e-mail to write.
struct Mail {
    kind: &'static str,
    name: String,
    email: String,
    /// Fields that read the same in every locale.
    fields: Map<String, Value>,
    /// Times, written in the event's zone and the recipient's locale.
    times: Vec<(&'static str, DateTime<Utc>)>,
    /// An amount of money.
    amount: Option<Money>,
    /// A reminder's lead, in seconds.
    lead: Option<u32>,
    not_before: DateTime<Utc>,
    requires: Option<String>,
}

impl Mail {
    fn new(kind: &'static str, name: &str, email: &str, now: DateTime<Utc>) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            email: email.to_owned(),
            fields: Map::new(),
            times: Vec::new(),
            amount: None,
            lead: None,
            not_before: now,
            requires: None,
        }
    }

    fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    fn time(mut self, key: &'static str, at: DateTime<Utc>) -> Self {
        self.times.push((key, at));
        self
    }
}

/// What the planner needs of an event for its messages.
struct EventInfo {
    title: String,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    timezone: String,
    venue: String,
    city: String,
}

/// Turns facts into notifications.
pub(crate) struct Planner {
    world: World,
    vault: Vault,
    store: NotifierStore,
    templates: Templates,
}

impl Planner {
    pub(crate) fn new(
        world: World,
        vault: Vault,
        store: NotifierStore,
        templates: Templates,
    ) -> Self {
        Self {
            world,
            vault,
            store,
            templates,
        }
    }

    /// The notifications `facts` (in position order, as the log holds them) call for.
    pub(crate) async fn plan(
        &mut self,
        facts: &[RecordedFact],
        now: DateTime<Utc>,
    ) -> Result<Vec<NewNotification>, NotifierError> {
        let mut opened = facts.to_vec();
        open_facts(&self.vault, &mut opened).await?;
        let mut endpoints: HashMap<Uuid, Vec<Endpoint>> = HashMap::new();
        let mut planned = Vec::new();
        for fact in &opened {
            self.webhooks(fact, &mut endpoints, now, &mut planned)
                .await?;
            let (aggregate, _) = fact.stream.split_once('-').unwrap_or_default();
            if aggregate == UserFact::AGGREGATE && fact.fact_type == "UserErased" {
                if let Ok(UserFact::UserErased { person_id, .. }) =
                    UserFact::decode(&fact.fact_type, fact.schema_version, fact.data.clone())
                {
                    self.world.forget();
                    let dropped = self.store.drop_for_person(&person_id, now).await?;
                    tracing::info!(
                        dropped,
                        "notifier: an erased person's pending e-mails dropped"
                    );
                }
                continue;
            }
            if aggregate != EventFact::AGGREGATE {
                continue;
            }
            let Ok(event_fact) =
                EventFact::decode(&fact.fact_type, fact.schema_version, fact.data.clone())
            else {
                tracing::warn!(position = fact.position, fact_type = %fact.fact_type, "notifier: fact not understood, skipped");
                continue;
            };
            let before = self.world.event_before(&fact.stream, fact.revision).await?;
            // Copied only for the facts whose mails read the state before them; the others
            // evolve it in place (copying a large event per fact made a rush quadratic).
            let kept = mailed_from_state_before(&event_fact).then(|| before.clone());
            let after = marquee_domain::event::evolve(before, &event_fact);
            let mails = mails_for(fact, &event_fact, kept.as_ref(), &after, now);
            if !mails.is_empty() {
                let info = self.event_info(&after).await?;
                for mail in mails {
                    if let Some(notification) = self.write(fact, &info, mail).await? {
                        planned.push(notification);
                    }
                }
            }
            self.world.remember(&fact.stream, fact.revision, after);
        }
        Ok(planned)
    }

    /// One delivery per active endpoint of the fact's organization that asks for its type.
    async fn webhooks(
        &self,
        fact: &RecordedFact,
        endpoints: &mut HashMap<Uuid, Vec<Endpoint>>,
        now: DateTime<Utc>,
        planned: &mut Vec<NewNotification>,
    ) -> Result<(), NotifierError> {
        let Some(organization_id) = fact
            .metadata
            .organization
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
        else {
            return Ok(());
        };
        if let std::collections::hash_map::Entry::Vacant(slot) = endpoints.entry(organization_id) {
            slot.insert(self.store.endpoints_of(organization_id).await?);
        }
        for endpoint in endpoints.get(&organization_id).into_iter().flatten() {
            let fact_types = endpoint.fact_types.iter().cloned().collect();
            if endpoint.status == "active"
                && fact.position > endpoint.after_position
                && webhook_receives(&fact_types, &fact.fact_type)
            {
                planned.push(NewNotification {
                    fact_id: fact.fact_id,
                    channel: Channel::Webhook,
                    recipient: endpoint.webhook_id.to_string(),
                    kind: fact.fact_type.clone(),
                    organization_id: Some(organization_id),
                    position: Some(fact.position),
                    payload: None,
                    requires: None,
                    not_before: now,
                });
            }
        }
        Ok(())
    }

    async fn event_info(&mut self, event: &Event) -> Result<EventInfo, NotifierError> {
        let (venue, city) = match event.venue_id {
            Some(venue_id) => {
                let venue = self.world.venue(venue_id).await?;
                (venue.name, venue.city)
            }
            None => (String::new(), String::new()),
        };
        Ok(EventInfo {
            title: event.title.clone(),
            starts_at: event.starts_at,
            ends_at: event.ends_at,
            timezone: event.timezone.clone(),
            venue,
            city,
        })
    }

    /// Renders `mail` in its recipient's locale and seals it under their key; `None` for a
    /// recipient who cannot or must not get mail (erased, not an address).
    async fn write(
        &self,
        fact: &RecordedFact,
        info: &EventInfo,
        mail: Mail,
    ) -> Result<Option<NewNotification>, NotifierError> {
        if mail.email == ERASED || !marquee_domain::event::looks_like_email(&mail.email) {
            return Ok(None);
        }
        let locale = self.world.locale_of(&mail.email).await?;
        let mut context = mail.fields.clone();
        context.insert("name".to_owned(), mail.name.clone().into());
        let at = |t: Option<DateTime<Utc>>| {
            t.map(|t| format_time(t, &info.timezone, &locale))
                .unwrap_or_default()
        };
        context.insert(
            "event".to_owned(),
            json!({
                "title": info.title,
                "starts": at(info.starts_at),
                "ends": at(info.ends_at),
                "timezone": info.timezone,
                "venue": info.venue,
                "city": info.city,
            }),
        );
        for (key, time) in &mail.times {
            context.insert((*key).to_owned(), at(Some(*time)).into());
        }
        if let Some(amount) = &mail.amount {
            context.insert(
                "amount".to_owned(),
                format_money(amount.amount_minor, &amount.currency, &locale).into(),
            );
        }
        if let Some(lead) = mail.lead {
            context.insert("lead".to_owned(), format_lead(lead, &locale).into());
        }
        let rendered = self
            .templates
            .render(mail.kind, &locale, &Value::Object(context))?;
        let email = Email {
            to_name: mail.name,
            to_email: mail.email.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            locale: rendered.locale,
        };
        let person = self.vault.person_id(&mail.email);
        let plain = serde_json::to_string(&email)
            .map_err(|e| NotifierError::Corrupt(format!("an e-mail: {e}")))?;
        let sealed = match self.vault.seal(&person, &plain).await {
            Ok(sealed) => sealed,
            Err(AuthError::PersonErased) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(NewNotification {
            fact_id: fact.fact_id,
            channel: Channel::Email,
            recipient: person,
            kind: mail.kind.to_owned(),
            organization_id: None,
            position: Some(fact.position),
            payload: Some(sealed),
            requires: mail.requires,
            not_before: mail.not_before,
        }))
    }
}

/// Whether [`mails_for`] reads the event as it was before `fact`: it is given that state only
/// for these facts.
fn mailed_from_state_before(fact: &EventFact) -> bool {
    matches!(
        fact,
        EventFact::RegistrationCancelled { .. }
            | EventFact::EventRescheduled { .. }
            | EventFact::EventCancelled { .. }
    )
}

/// The e-mails one event fact calls for; see the [module docs](self). `after` is the event
/// just after the fact; `before` the event just before it, given only when
/// [`mailed_from_state_before`] says so.
fn mails_for(
    recorded: &RecordedFact,
    fact: &EventFact,
    before: Option<&Event>,
    after: &Event,
    now: DateTime<Utc>,
) -> Vec<Mail> {
    let ticket_type = |id| {
        after
            .ticket_types
            .get(id)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    };
    let codes =
        |codes: &[TicketCode]| -> Vec<String> { codes.iter().map(|c| c.0.clone()).collect() };
    match fact {
        EventFact::RegistrationConfirmed {
            attendee,
            ticket_type_id,
            quantity,
            ticket_codes,
            ..
        } => vec![
            Mail::new(
                "registration_confirmed",
                &attendee.name,
                &attendee.email,
                now,
            )
            .field("quantity", *quantity)
            .field("ticket_type", ticket_type(ticket_type_id))
            .field("ticket_codes", codes(ticket_codes)),
        ],
        EventFact::HoldConfirmed {
            registration_id, ..
        } => after
            .registrations
            .get(registration_id)
            .map(|r| {
                let mut mail = Mail::new(
                    "registration_confirmed",
                    &r.attendee.name,
                    &r.attendee.email,
                    now,
                )
                .field("quantity", r.quantity)
                .field("ticket_type", ticket_type(&r.ticket_type_id))
                .field("ticket_codes", codes(&r.ticket_codes));
                mail.amount = r.price.clone();
                mail
            })
            .into_iter()
            .collect(),
        EventFact::SeatsHeld {
            registration_id,
            attendee,
            ticket_type_id,
            quantity,
            price,
            expires_at,
            held_at,
            ..
        } if now < *expires_at => {
            let mut mail = Mail::new("hold_expiring", &attendee.name, &attendee.email, now)
                .field("quantity", *quantity)
                .field("ticket_type", ticket_type(ticket_type_id))
                .time("expires", *expires_at);
            mail.amount = Some(price.clone());
            mail.not_before = hold_warning_at(*held_at, *expires_at);
            mail.requires = Some(format!(
                "hold:{}:{}:{}",
                recorded.stream, recorded.revision, registration_id.0
            ));
            vec![mail]
        }
        EventFact::WaitlistOfferMade {
            entry_id,
            expires_at,
            quantity,
            ticket_type_id,
            ..
        } if now < *expires_at => after
            .waitlist
            .get(entry_id)
            .map(|entry| {
                Mail::new(
                    "waitlist_offer",
                    &entry.attendee.name,
                    &entry.attendee.email,
                    now,
                )
                .field("quantity", *quantity)
                .field("ticket_type", ticket_type(ticket_type_id))
                .time("deadline", *expires_at)
            })
            .into_iter()
            .collect(),
        EventFact::RegistrationCancelled {
            registration_id, ..
        } => before
            .filter(|before| before.status != marquee_domain::event::EventStatus::Cancelled)
            .and_then(|before| before.registrations.get(registration_id))
            .map(|r| {
                let mut mail = Mail::new(
                    "registration_cancelled",
                    &r.attendee.name,
                    &r.attendee.email,
                    now,
                )
                .field("quantity", r.quantity)
                .field("ticket_type", ticket_type(&r.ticket_type_id));
                if r.status == RegistrationStatus::Confirmed && r.payment_id.is_some() {
                    mail.amount = r.price.clone();
                }
                mail
            })
            .into_iter()
            .collect(),
        EventFact::RefundCompleted {
            registration_id,
            refund_id,
            ..
        } => after
            .registrations
            .get(registration_id)
            .map(|r| {
                let mut mail =
                    Mail::new("refund_completed", &r.attendee.name, &r.attendee.email, now)
                        .field("refund_id", refund_id.clone());
                mail.amount = r.price.clone();
                mail
            })
            .into_iter()
            .collect(),
        EventFact::EventRescheduled {
            previous_starts_at, ..
        } => before
            .map(|before| attendees(before, |s| s.is_active()))
            .unwrap_or_default()
            .into_iter()
            .map(|(name, email, _)| {
                Mail::new("event_rescheduled", &name, &email, now)
                    .time("previous_starts", *previous_starts_at)
            })
            .collect(),
        EventFact::EventCancelled { reason, .. } => before
            .map(|before| attendees(before, |s| s.is_active()))
            .unwrap_or_default()
            .into_iter()
            .map(|(name, email, _)| {
                Mail::new("event_cancelled", &name, &email, now)
                    .field("reason", reason.clone().unwrap_or_default())
            })
            .collect(),
        EventFact::ReminderDue {
            offset_seconds,
            starts_at,
            ..
        } if now < *starts_at => attendees(after, |s| s == RegistrationStatus::Confirmed)
            .into_iter()
            .map(|(name, email, codes)| {
                let mut mail =
                    Mail::new("reminder", &name, &email, now).field("ticket_codes", codes);
                mail.lead = Some(*offset_seconds);
                mail
            })
            .collect(),
        _ => vec![],
    }
}

/// The event's attendees with a registration whose status passes `status`, one per address
/// (the first name given), with all their ticket codes.
fn attendees(
    event: &Event,
    status: impl Fn(RegistrationStatus) -> bool,
) -> Vec<(String, String, Vec<String>)> {
    let mut by_address: BTreeMap<String, (String, String, Vec<String>)> = BTreeMap::new();
    for registration in event.registrations.values() {
        if !status(registration.status) {
            continue;
        }
        let entry = by_address
            .entry(registration.attendee.email.to_lowercase())
            .or_insert_with(|| {
                (
                    registration.attendee.name.clone(),
                    registration.attendee.email.clone(),
                    Vec::new(),
                )
            });
        entry
            .2
            .extend(registration.ticket_codes.iter().map(|c| c.0.clone()));
    }
    by_address.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_hold_is_warned_five_minutes_before_it_expires_or_halfway_through_a_short_one() {
        let held = at("2030-06-01T12:00:00Z");
        assert_eq!(
            hold_warning_at(held, at("2030-06-01T12:15:00Z")),
            at("2030-06-01T12:10:00Z")
        );
        assert_eq!(
            hold_warning_at(held, at("2030-06-01T12:00:06Z")),
            at("2030-06-01T12:00:03Z")
        );
    }
}
