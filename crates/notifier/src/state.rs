//! What the notifier knows of the world when a fact arrives: the facts' personal data opened
//! with the vault, and the event (and venue, and account) folded with the domain's `evolve`
//! up to the fact, so a message says what was true when the fact happened.
//!
//! The notifier reads every fact in position order, so an event's state follows its stream
//! fact by fact in a small cache; a stream not in the cache (first seen, evicted, or after a
//! restart) is folded from the log up to the fact. Personal data in the cache is plaintext: on
//! `UserErased` the cache is dropped whole, and the vault reads keys without a cache, so nothing
//! of an erased person is read or sealed again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use marquee_auth::{AuthStore, Opened, Vault};
use marquee_domain::event::{self, Event, EventFact};
use marquee_domain::user::{self, DEFAULT_LOCALE, User, UserFact};
use marquee_domain::venue::{self, Venue, VenueFact};
use marquee_domain::{ERASED, FactCodec, VenueId};
use marquee_store::{EventStore, RecordedFact};
use serde_json::Value;

use crate::NotifierError;

/// Facts read per page while folding a stream.
const PAGE: usize = 1000;

/// Opens every sealed string of `facts` in place, with one key query: the plaintext, or
/// [`ERASED`] for an erased person (and, with a warning, for a value that cannot be opened).
pub(crate) async fn open_facts(
    vault: &Vault,
    facts: &mut [RecordedFact],
) -> Result<(), NotifierError> {
    let mut sealed: Vec<&mut String> = Vec::new();
    for fact in facts.iter_mut() {
        sealed_strings(&mut fact.data, &mut sealed);
    }
    if sealed.is_empty() {
        return Ok(());
    }
    let opened = vault.open_many(&sealed).await?;
    for (value, opened) in sealed.into_iter().zip(opened) {
        *value = match opened {
            Ok(Opened::Plain(text)) => text,
            Ok(Opened::Erased) => ERASED.to_owned(),
            Err(e) => {
                tracing::warn!(error = %e, "a sealed value cannot be opened; it reads as erased");
                ERASED.to_owned()
            }
        };
    }
    Ok(())
}

fn sealed_strings<'a>(doc: &'a mut Value, found: &mut Vec<&'a mut String>) {
    match doc {
        Value::String(text) if Vault::is_sealed(text) => found.push(text),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| sealed_strings(item, found)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|value| sealed_strings(value, found)),
        _ => {}
    }
}

/// Folds streams for the planner.
pub(crate) struct World {
    log: Arc<dyn EventStore>,
    vault: Vault,
    auth: AuthStore,
    /// Events by stream, with the revision of the last fact folded in.
    events: HashMap<String, (u64, Event)>,
    /// Least recently touched first.
    order: VecDeque<String>,
    /// How many events the cache keeps.
    capacity: usize,
    /// Venues by id (no personal data; they change rarely).
    venues: HashMap<VenueId, Venue>,
}

impl World {
    pub(crate) fn new(
        log: Arc<dyn EventStore>,
        vault: Vault,
        auth: AuthStore,
        capacity: usize,
    ) -> Self {
        Self {
            log,
            vault,
            auth,
            events: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            venues: HashMap::new(),
        }
    }

    /// Forgets every folded state (an erasure happened).
    pub(crate) fn forget(&mut self) {
        self.events.clear();
        self.order.clear();
        self.venues.clear();
    }

    /// The event of `stream` with every fact before `revision` folded in.
    pub(crate) async fn event_before(
        &mut self,
        stream: &str,
        revision: u64,
    ) -> Result<Event, NotifierError> {
        // Taken out of the cache, not copied: an event's state grows with its registrations,
        // and the caller gives the state after the fact back (`remember`). If it never does
        // (an error in between), the next call folds the stream from the log.
        if let Some((at, state)) = self.events.remove(stream)
            && at + 1 == revision
        {
            return Ok(state);
        }
        let mut state = Event::default();
        let mut from = 0;
        while from < revision {
            let mut page = self.log.read_stream(stream, from, PAGE).await?;
            page.retain(|fact| fact.revision < revision);
            let Some(last) = page.last().map(|fact| fact.revision) else {
                break;
            };
            open_facts(&self.vault, &mut page).await?;
            for recorded in page {
                if let Ok(fact) =
                    EventFact::decode(&recorded.fact_type, recorded.schema_version, recorded.data)
                {
                    state = event::evolve(state, &fact);
                }
            }
            from = last + 1;
        }
        Ok(state)
    }

    /// Remembers the event of `stream` as of `revision`.
    pub(crate) fn remember(&mut self, stream: &str, revision: u64, state: Event) {
        self.order.retain(|s| s != stream);
        self.order.push_back(stream.to_owned());
        self.events.insert(stream.to_owned(), (revision, state));
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.events.remove(&oldest);
            }
        }
    }

    /// The venue `venue_id` as the log has it now.
    pub(crate) async fn venue(&mut self, venue_id: VenueId) -> Result<Venue, NotifierError> {
        if let Some(venue) = self.venues.get(&venue_id) {
            return Ok(venue.clone());
        }
        let mut state = Venue::default();
        let mut from = 0;
        loop {
            let page = self.log.read_stream(&venue_id.stream(), from, PAGE).await?;
            let full = page.len() == PAGE;
            for recorded in page {
                from = recorded.revision + 1;
                if let Ok(fact) =
                    VenueFact::decode(&recorded.fact_type, recorded.schema_version, recorded.data)
                {
                    state = venue::evolve(state, &fact);
                }
            }
            if !full {
                break;
            }
        }
        if self.venues.len() > 1024 {
            self.venues.clear();
        }
        self.venues.insert(venue_id, state.clone());
        Ok(state)
    }

    /// The locale of the account signed in with `email`, if there is one (and it is not
    /// erased); else [`DEFAULT_LOCALE`].
    pub(crate) async fn locale_of(&self, email: &str) -> Result<String, NotifierError> {
        let Some((user_id, _)) = self.auth.credentials_by_email(email).await? else {
            return Ok(DEFAULT_LOCALE.to_owned());
        };
        let stream = marquee_domain::UserId(user_id).stream();
        let mut state = User::default();
        let mut from = 0;
        loop {
            let mut page = self.log.read_stream(&stream, from, PAGE).await?;
            let full = page.len() == PAGE;
            open_facts(&self.vault, &mut page).await?;
            for recorded in page {
                from = recorded.revision + 1;
                if let Ok(fact) =
                    UserFact::decode(&recorded.fact_type, recorded.schema_version, recorded.data)
                {
                    state = user::evolve(state, &fact);
                }
            }
            if !full {
                break;
            }
        }
        Ok(
            if state.exists() && !state.erased && !state.locale.is_empty() {
                state.locale
            } else {
                DEFAULT_LOCALE.to_owned()
            },
        )
    }
}
