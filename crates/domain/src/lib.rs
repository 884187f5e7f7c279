//! Marquee's pure model: commands, facts, aggregates and the rules that connect them.
//!
//! Everything here is synchronous and deterministic: no IO, no tokio, no sqlx, no clock reads
//! and no randomness. Time (`now`) and anything random (ticket codes, ids) come in as arguments,
//! so a decision can be replayed and tested as a plain function call.
//!
//! Each aggregate lives in its own module with the same shape:
//! `decide(&State, Command, now) -> Result<Vec<Fact>, Error>` and `evolve(State, &Fact) -> State`.

pub mod codec;
pub mod event;
pub mod ids;
pub mod money;
pub mod organization;
pub mod testing;
pub mod user;
pub mod venue;

pub use codec::{DecodeError, FactCodec};
pub use ids::{
    ApiTokenId, EventId, OrganizationId, PaymentId, RegistrationId, TicketCode, TicketTypeId,
    UserId, VenueId, WaitlistEntryId, WebhookId,
};
pub use money::Money;

/// What personal data reads as once its person was erased (crypto-shredding: the key that
/// opened it is gone). Names, e-mail addresses and answers of an erased person all read as this
/// text, in aggregates and in read models alike. It is not an e-mail address, so no new
/// attendee can ever have it, and the rules that compare attendees by address (the per-attendee
/// limit, one waitlist place per attendee) leave erased ones out.
pub const ERASED: &str = "[erased]";

/// A point in time, always UTC. The domain never reads the clock: callers pass `now` in.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
