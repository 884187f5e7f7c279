//! Every route of both APIs × every kind of caller: each gets exactly the status the policy
//! says. The policy is the table in `crates/command-api/src/access.rs` (and
//! `crates/query-api/src/access.rs` for reads), restated below as [`POLICY`], one row per route,
//! and printed when the test runs.
//!
//! Every case sends a fresh, valid request (its own venue name, event, hold, ticket code,
//! member, token…), so that only authorization decides the answer. Whoever gets the
//! "allowed" status really did what the route does.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, MEMBER_PASSWORD, Reply, Session, TEST_WEBHOOK_SECRET, TestApp, event_body, next_slot,
    spawn_app,
};

/// Who calls, in the matrix's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// An owner of the organization that owns the venue and the event.
    Owner,
    /// An organizer of that organization.
    Organizer,
    /// Door staff of that organization.
    DoorStaff,
    /// An analyst of that organization.
    Analyst,
    /// An auditor of that organization.
    Auditor,
    /// A signed-up account in no organization.
    Attendee,
    /// The owner of another organization.
    OtherOwner,
    /// No credentials.
    Anonymous,
}

const EVERYONE: [Who; 8] = [
    Who::Owner,
    Who::Organizer,
    Who::DoorStaff,
    Who::Analyst,
    Who::Auditor,
    Who::Attendee,
    Who::OtherOwner,
    Who::Anonymous,
];

impl Who {
    fn column(self) -> &'static str {
        match self {
            Who::Owner => "owner",
            Who::Organizer => "organizer",
            Who::DoorStaff => "door_staff",
            Who::Analyst => "analyst",
            Who::Auditor => "auditor",
            Who::Attendee => "attendee",
            Who::OtherOwner => "other org's owner",
            Who::Anonymous => "anonymous",
        }
    }
}

/// A family of routes in the policy table, and what it means for each caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Sign-up, sign-in, refresh; the payment provider's routes (signed, no account); public
    /// reads: everyone.
    Anyone,
    /// The account's own routes, founding an organization, reserving, joining a waitlist, and
    /// paying for or cancelling one's own registration or waitlist place: any signed-in caller;
    /// anonymous `401`.
    SignedIn,
    /// Reading an organization: its members, whatever their role; outsiders `404`.
    Members,
    /// Members and API tokens of an organization: its owners; other members `403`; outsiders
    /// `404`.
    Owners,
    /// Venues, events, ticket types, publish, cancel, capacity, questions, reschedule: owners
    /// and organizers; other members `403`; outsiders `404`.
    Organizers,
    /// Drafting an event: as [`Family::Organizers`], but the venue is named in the body, and a
    /// venue an outsider cannot see is, for them, a venue id that names nothing: the draft's
    /// own `422 validation_failed`, exactly as for an unknown venue.
    OrganizersVenueInBody,
    /// Check-in and its revert, and the guest list: owners, organizers and door staff; other
    /// members `403`; outsiders `404`.
    Door,
    /// Paying for, cancelling, claiming or leaving someone else's registration or waitlist
    /// place: owners and organizers; to anyone else it does not exist (`404`, members with
    /// other roles included).
    HolderOrOrganizers,
    /// A stream's history and the log of an organization: owners and auditors; other members
    /// `403`; outsiders `404`.
    Auditors,
    /// An event as it was at a past point of the log: owners, organizers and auditors; other
    /// members `403`; outsiders `404`.
    History,
    /// Another account's own stream: nobody else's, owners of its organizations included
    /// (`404`).
    NobodyElse,
}

impl Family {
    /// The status `who` gets on a route of this family whose success is `ok`.
    fn expect(self, who: Who, ok: u16) -> u16 {
        use Who::*;
        let inside = matches!(who, Owner | Organizer | DoorStaff | Analyst | Auditor);
        let outsider = matches!(who, Attendee | OtherOwner);
        match self {
            Family::Anyone => ok,
            _ if who == Anonymous => 401,
            Family::SignedIn => ok,
            Family::Members if inside => ok,
            Family::Members => 404,
            Family::Owners if who == Owner => ok,
            Family::Organizers | Family::OrganizersVenueInBody
                if matches!(who, Owner | Organizer) =>
            {
                ok
            }
            Family::Door if matches!(who, Owner | Organizer | DoorStaff) => ok,
            Family::HolderOrOrganizers if matches!(who, Owner | Organizer) => ok,
            Family::HolderOrOrganizers | Family::NobodyElse => 404,
            Family::Auditors if matches!(who, Owner | Auditor) => ok,
            Family::History if matches!(who, Owner | Organizer | Auditor) => ok,
            Family::OrganizersVenueInBody if outsider => 422,
            _ if outsider => 404,
            _ => 403,
        }
    }
}

/// The policy, one row per route: the route (as the case names it), its family, and the
/// status of success.
const POLICY: &[(&str, Family, u16)] = &[
    ("POST /v1/auth/signup", Family::Anyone, 201),
    ("POST /v1/auth/login", Family::Anyone, 200),
    ("POST /v1/auth/refresh", Family::Anyone, 200),
    ("POST /v1/auth/logout", Family::SignedIn, 200),
    ("GET /v1/me", Family::SignedIn, 200),
    ("PATCH /v1/me", Family::SignedIn, 200),
    ("POST /v1/me/password", Family::SignedIn, 200),
    ("POST /v1/me/erase", Family::SignedIn, 200),
    ("POST /v1/organizations", Family::SignedIn, 201),
    ("GET /v1/organizations/{org}", Family::Members, 200),
    ("POST /v1/organizations/{org}/members", Family::Owners, 201),
    (
        "PUT /v1/organizations/{org}/members/{user}",
        Family::Owners,
        200,
    ),
    (
        "DELETE /v1/organizations/{org}/members/{user}",
        Family::Owners,
        200,
    ),
    ("POST /v1/organizations/{org}/tokens", Family::Owners, 201),
    ("GET /v1/organizations/{org}/tokens", Family::Owners, 200),
    (
        "DELETE /v1/organizations/{org}/tokens/{token}",
        Family::Owners,
        200,
    ),
    ("POST /v1/venues", Family::Organizers, 201),
    ("PATCH /v1/venues/{venue}", Family::Organizers, 200),
    ("POST /v1/events", Family::OrganizersVenueInBody, 201),
    ("PATCH /v1/events/{event}", Family::Organizers, 200),
    (
        "POST /v1/events/{event}/ticket-types",
        Family::Organizers,
        201,
    ),
    ("POST /v1/events/{event}/publish", Family::Organizers, 200),
    ("POST /v1/events/{event}/cancel", Family::Organizers, 200),
    ("PUT /v1/events/{event}/capacity", Family::Organizers, 200),
    (
        "POST /v1/events/{event}/reschedule",
        Family::Organizers,
        200,
    ),
    ("PUT /v1/events/{event}/questions", Family::Organizers, 200),
    (
        "POST /v1/events/{event}/reservations",
        Family::SignedIn,
        201,
    ),
    ("POST …/reservations/{own}/pay", Family::SignedIn, 200),
    (
        "POST …/reservations/{someone else's}/pay",
        Family::HolderOrOrganizers,
        200,
    ),
    ("POST …/reservations/{own}/cancel", Family::SignedIn, 200),
    (
        "POST …/reservations/{someone else's}/cancel",
        Family::HolderOrOrganizers,
        200,
    ),
    ("POST /v1/events/{event}/waitlist", Family::SignedIn, 201),
    ("POST …/waitlist/{own}/claim", Family::SignedIn, 201),
    (
        "POST …/waitlist/{someone else's}/claim",
        Family::HolderOrOrganizers,
        201,
    ),
    ("POST …/waitlist/{own}/leave", Family::SignedIn, 200),
    (
        "POST …/waitlist/{someone else's}/leave",
        Family::HolderOrOrganizers,
        200,
    ),
    ("POST /v1/events/{event}/check-ins", Family::Door, 200),
    ("POST …/check-ins/{code}/revert", Family::Door, 200),
    ("POST /v1/payments/webhook", Family::Anyone, 200),
    ("POST /v1/payments/test-gateway/settle", Family::Anyone, 200),
    ("GET /health (command API)", Family::Anyone, 200),
    ("GET /v1/events (query API)", Family::Anyone, 200),
    ("GET /v1/events/{event} (query API)", Family::Anyone, 200),
    (
        "GET /v1/events/{event}/capacity (query API)",
        Family::Anyone,
        200,
    ),
    (
        "GET /v1/events/{event}/attendees (query API)",
        Family::Door,
        200,
    ),
    ("GET /v1/projections (query API)", Family::Anyone, 200),
    ("GET /health (query API)", Family::Anyone, 200),
    (
        "GET /v1/events/{event}?as_of={position} (query API)",
        Family::History,
        200,
    ),
    (
        "GET /v1/streams/event-{event} (query API)",
        Family::Auditors,
        200,
    ),
    (
        "GET /v1/streams/organization-{org} (query API)",
        Family::Auditors,
        200,
    ),
    (
        "GET /v1/streams/user-{own} (query API)",
        Family::SignedIn,
        200,
    ),
    (
        "GET /v1/streams/user-{someone else's} (query API)",
        Family::NobodyElse,
        200,
    ),
    (
        "GET /v1/log?organization_id={org} (query API)",
        Family::Auditors,
        200,
    ),
    (
        "GET /v1/log/live?organization_id={org} (query API)",
        Family::Auditors,
        200,
    ),
];

/// The policy as a table, for the test's output and its failure messages.
fn policy_table() -> String {
    let mut table = String::from("| route | family |");
    for who in EVERYONE {
        let _ = write!(table, " {} |", who.column());
    }
    table.push_str("\n|---|---|");
    table.push_str(&"---|".repeat(EVERYONE.len()));
    for (route, family, ok) in POLICY {
        let _ = write!(table, "\n| {route} | {family:?} |");
        for who in EVERYONE {
            let _ = write!(table, " {} |", family.expect(who, *ok));
        }
    }
    table
}

/// A distinct attendee number per reservation, so that per-attendee limits never decide.
fn next_attendee() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn attendee(n: usize) -> Value {
    json!({ "name": format!("Matrix guest {n}"), "email": format!("matrix{n}@example.com") })
}

/// The app, one caller of each kind, and the resources the cases act on.
struct World {
    app: TestApp,
    /// Signed-in callers, by [`Who`] (none for `Anonymous`).
    callers: Vec<(Who, Session)>,
    other_organization: String,
    /// An account nobody else is: the holder of "someone else's" registrations and places.
    holder: Session,
    /// An account to sign in as.
    login_target: Session,
    venue: String,
    /// Published, with the ticket types below.
    event: String,
    published_at: u64,
    free: String,
    paid: String,
    /// One seat, taken: its waitlist is open.
    sold_out: String,
}

impl World {
    async fn new(backend: Backend) -> World {
        let app = spawn_app(backend).await;
        let mut callers = vec![(Who::Owner, app.owner.clone())];
        for (who, role) in [
            (Who::Organizer, "organizer"),
            (Who::DoorStaff, "door_staff"),
            (Who::Analyst, "analyst"),
            (Who::Auditor, "auditor"),
        ] {
            callers.push((who, app.member(role).await));
        }
        callers.push((Who::Attendee, app.account("attendee").await));
        let other_owner = app.account("other-owner").await;
        let other_organization = app
            .found_organization(&other_owner, "Another organization")
            .await;
        callers.push((Who::OtherOwner, other_owner));
        let holder = app.account("holder").await;
        let login_target = app.account("login-target").await;

        let venue = app.create_venue(100_000).await;
        let event = app.draft_event(&venue, "The matrix").await;
        let free = app.add_free_ticket_type(&event, "Free", 10_000).await;
        let paid = app.add_ticket_type(&event, "Paid", 2500, 10_000).await;
        let sold_out = app.add_free_ticket_type(&event, "One seat", 1).await;
        let published_at = app.publish(&event).await;
        let world = World {
            app,
            callers,
            other_organization,
            holder,
            login_target,
            venue,
            event,
            published_at,
            free,
            paid,
            sold_out,
        };
        let taken = world
            .reserve_as(world.holder.token(), &world.sold_out)
            .await;
        assert_eq!(taken.status, 201, "{}", taken.body);
        world
    }

    fn session(&self, who: Who) -> Option<&Session> {
        self.callers.iter().find(|(w, _)| *w == who).map(|(_, s)| s)
    }

    fn token(&self, who: Who) -> Option<&str> {
        self.session(who).map(|s| s.access_token.as_str())
    }

    fn owner(&self) -> Option<&str> {
        self.token(Who::Owner)
    }

    fn command(&self, path: &str) -> String {
        format!("{}{path}", self.app.command_url)
    }

    async fn send(&self, who: Who, method: Method, path: &str, body: Option<Value>) -> Reply {
        let request = self
            .app
            .request_as(self.token(who), method, &self.command(path));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        self.app.send(request).await
    }

    async fn query(&self, who: Who, path: &str) -> Reply {
        let url = format!("{}{path}", self.app.query_url);
        self.app
            .send(
                self.app
                    .request_as(self.token(who), Method::GET, &url)
                    .header("Marquee-Min-Position", self.published_at.to_string()),
            )
            .await
    }

    /// Reserves one seat of `ticket_type` on the event as `token`.
    async fn reserve_as(&self, token: Option<&str>, ticket_type: &str) -> Reply {
        self.app
            .post_as(
                token,
                &format!("/v1/events/{}/reservations", self.event),
                json!({ "ticket_type_id": ticket_type, "quantity": 1, "attendee": attendee(next_attendee()) }),
            )
            .await
    }

    /// A registration (held for `paid`, else confirmed) of `token`'s; its id.
    async fn registration_of(&self, token: Option<&str>, paid: bool) -> String {
        let ticket_type = if paid { &self.paid } else { &self.free };
        let reply = self.reserve_as(token, ticket_type).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.text("registration_id")
    }

    /// A place of `token`'s in the sold-out ticket type's line; its id.
    async fn waiting_entry_of(&self, token: Option<&str>) -> String {
        let reply = self
            .app
            .post_as(
                token,
                &format!("/v1/events/{}/waitlist", self.event),
                json!({ "ticket_type_id": self.sold_out, "attendee": attendee(next_attendee()) }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.text("entry_id")
    }

    /// A place of `token`'s with an open offer: a new one-seat ticket type, taken by the
    /// holder, `token` joins its line, the owner cancels the holder's registration, and the
    /// seat is offered to `token`.
    async fn offered_entry_of(&self, token: Option<&str>) -> String {
        let ticket_type = self
            .app
            .add_free_ticket_type(&self.event, &format!("Offered {}", next_attendee()), 1)
            .await;
        let taken = self.reserve_as(self.holder.token(), &ticket_type).await;
        assert_eq!(taken.status, 201, "{}", taken.body);
        let joined = self
            .app
            .post_as(
                token,
                &format!("/v1/events/{}/waitlist", self.event),
                json!({ "ticket_type_id": ticket_type, "attendee": attendee(next_attendee()) }),
            )
            .await;
        assert_eq!(joined.status, 201, "{}", joined.body);
        // The owner cancels (an organizer may): set-up steps never depend on what is tested.
        let cancelled = self
            .app
            .post_as(
                self.owner(),
                &format!(
                    "/v1/events/{}/reservations/{}/cancel",
                    self.event,
                    taken.text("registration_id")
                ),
                json!({}),
            )
            .await;
        assert_eq!(cancelled.status, 200, "{}", cancelled.body);
        joined.text("entry_id")
    }

    /// A ticket code of a fresh free registration, checked in when `scanned`.
    async fn ticket_code(&self, scanned: bool) -> String {
        let reply = self.reserve_as(self.owner(), &self.free).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let code = reply.body["ticket_codes"][0]
            .as_str()
            .expect("a code")
            .to_owned();
        if scanned {
            let scan = self
                .app
                .post(
                    &format!("/v1/events/{}/check-ins", self.event),
                    json!({ "ticket_code": code, "nonce": format!("setup-{code}") }),
                )
                .await;
            assert_eq!(scan.status, 200, "{}", scan.body);
        }
        code
    }

    /// A paid hold whose payment the provider has yet to settle: (registration, payment).
    async fn pending_payment(&self) -> (String, String) {
        let registration = self.registration_of(self.owner(), true).await;
        let pending = self
            .app
            .post(
                &format!("/v1/events/{}/reservations/{registration}/pay", self.event),
                json!({ "card_number": "4000000000000077" }),
            )
            .await;
        assert_eq!(pending.status, 202, "{}", pending.body);
        (registration, pending.text("payment_id"))
    }

    /// A draft event of its own (with a free ticket type), at its own time; its id.
    async fn fresh_event(&self) -> String {
        let event = self.app.draft_event(&self.venue, "Fresh").await;
        self.app.add_free_ticket_type(&event, "GA", 10).await;
        event
    }

    /// A new account added to the organization as door staff; its id.
    async fn fresh_member(&self) -> String {
        self.app.member("door_staff").await.user_id
    }

    /// An account standing where `who` stands (the same role in the same organization), to
    /// spend on a case that changes or ends the account.
    async fn stand_in(&self, who: Who) -> Option<Session> {
        let organization = match who {
            Who::Anonymous => return None,
            Who::Attendee => return Some(self.app.account("stand-in").await),
            Who::OtherOwner => {
                let session = self.app.account("stand-in").await;
                let added = self
                    .app
                    .add_member_as(
                        &self.session(Who::OtherOwner).expect("owner").access_token,
                        &self.other_organization,
                        &session.email,
                        "owner",
                    )
                    .await;
                assert_eq!(added.status, 201, "{}", added.body);
                return Some(session);
            }
            _ => &self.app.organization_id,
        };
        let role = match who {
            Who::Owner => "owner",
            Who::Organizer => "organizer",
            Who::DoorStaff => "door_staff",
            Who::Analyst => "analyst",
            _ => "auditor",
        };
        let session = self.app.account("stand-in").await;
        let added = self
            .app
            .add_member_as(
                &self.app.owner.access_token,
                organization,
                &session.email,
                role,
            )
            .await;
        assert_eq!(added.status, 201, "{}", added.body);
        Some(session)
    }

    /// Sends a fresh, valid request of `route` as `who`.
    async fn case(&self, route: &str, who: Who) -> Reply {
        let org = &self.app.organization_id;
        let event = &self.event;
        let n = next_attendee();
        match route {
            "POST /v1/auth/signup" => {
                let body = json!({
                    "email": format!("signup{n}@marquee.test"),
                    "password": MEMBER_PASSWORD,
                    "name": "New",
                });
                self.send(who, Method::POST, "/v1/auth/signup", Some(body))
                    .await
            }
            "POST /v1/auth/login" => {
                let body = json!({
                    "email": self.login_target.email,
                    "password": self.login_target.password,
                });
                self.send(who, Method::POST, "/v1/auth/login", Some(body))
                    .await
            }
            "POST /v1/auth/refresh" => {
                let session = self
                    .app
                    .sign_in(&self.login_target.email, &self.login_target.password)
                    .await;
                let body = json!({ "refresh_token": session.refresh_token });
                self.send(who, Method::POST, "/v1/auth/refresh", Some(body))
                    .await
            }
            "POST /v1/auth/logout" => {
                // A second session of the same account, so the caller's own stays usable.
                let token = match self.session(who) {
                    Some(s) => Some(self.app.sign_in(&s.email, &s.password).await.access_token),
                    None => None,
                };
                self.app
                    .send(self.app.request_as(
                        token.as_deref(),
                        Method::POST,
                        &self.command("/v1/auth/logout"),
                    ))
                    .await
            }
            "GET /v1/me" => self.send(who, Method::GET, "/v1/me", None).await,
            "PATCH /v1/me" => {
                let body = json!({ "name": format!("Renamed {n}"), "locale": "de-DE" });
                self.send(who, Method::PATCH, "/v1/me", Some(body)).await
            }
            "POST /v1/me/password" => {
                let stand_in = self.stand_in(who).await;
                let body = json!({
                    "current_password": MEMBER_PASSWORD,
                    "new_password": format!("{MEMBER_PASSWORD}-changed"),
                });
                self.app
                    .post_as(
                        stand_in.as_ref().and_then(Session::token),
                        "/v1/me/password",
                        body,
                    )
                    .await
            }
            "POST /v1/me/erase" => {
                let stand_in = self.stand_in(who).await;
                self.app
                    .post_as(
                        stand_in.as_ref().and_then(Session::token),
                        "/v1/me/erase",
                        json!({ "password": MEMBER_PASSWORD }),
                    )
                    .await
            }
            "POST /v1/organizations" => {
                let body = json!({ "name": format!("Organization {n}") });
                self.send(who, Method::POST, "/v1/organizations", Some(body))
                    .await
            }
            "GET /v1/organizations/{org}" => {
                self.send(who, Method::GET, &format!("/v1/organizations/{org}"), None)
                    .await
            }
            "POST /v1/organizations/{org}/members" => {
                let email = format!("joiner{n}@marquee.test");
                let signed_up = self.app.sign_up(&email, MEMBER_PASSWORD, "Joiner").await;
                assert_eq!(signed_up.status, 201, "{}", signed_up.body);
                let body = json!({ "email": email, "role": "analyst" });
                let path = format!("/v1/organizations/{org}/members");
                self.send(who, Method::POST, &path, Some(body)).await
            }
            "PUT /v1/organizations/{org}/members/{user}" => {
                let user = self.fresh_member().await;
                let path = format!("/v1/organizations/{org}/members/{user}");
                let body = json!({ "role": "analyst" });
                self.send(who, Method::PUT, &path, Some(body)).await
            }
            "DELETE /v1/organizations/{org}/members/{user}" => {
                let user = self.fresh_member().await;
                let path = format!("/v1/organizations/{org}/members/{user}");
                self.send(who, Method::DELETE, &path, None).await
            }
            "POST /v1/organizations/{org}/tokens" => {
                let path = format!("/v1/organizations/{org}/tokens");
                let body = json!({ "name": format!("token {n}"), "roles": ["organizer"] });
                self.send(who, Method::POST, &path, Some(body)).await
            }
            "GET /v1/organizations/{org}/tokens" => {
                let path = format!("/v1/organizations/{org}/tokens");
                self.send(who, Method::GET, &path, None).await
            }
            "DELETE /v1/organizations/{org}/tokens/{token}" => {
                let token = self
                    .app
                    .api_token(&self.app.owner.access_token, org, &["door_staff"])
                    .await;
                let path = format!("/v1/organizations/{org}/tokens/{}", token.token_id);
                self.send(who, Method::DELETE, &path, None).await
            }
            "POST /v1/venues" => {
                let body = json!({
                    "name": format!("Venue {n}"), "city": "Leipzig", "capacity": 100,
                    "organization_id": org,
                });
                self.send(who, Method::POST, "/v1/venues", Some(body)).await
            }
            "PATCH /v1/venues/{venue}" => {
                let path = format!("/v1/venues/{}", self.venue);
                let body = json!({ "name": format!("Renamed venue {n}") });
                self.send(who, Method::PATCH, &path, Some(body)).await
            }
            "POST /v1/events" => {
                let body = event_body(&self.venue, "Drafted", next_slot());
                self.send(who, Method::POST, "/v1/events", Some(body)).await
            }
            "PATCH /v1/events/{event}" => {
                let body = json!({ "title": format!("The matrix, take {n}") });
                let path = format!("/v1/events/{event}");
                self.send(who, Method::PATCH, &path, Some(body)).await
            }
            "POST /v1/events/{event}/ticket-types" => {
                let body = json!({
                    "name": format!("Type {n}"),
                    "price": { "amount_minor": 0, "currency": "EUR" },
                    "quantity": 5,
                });
                let path = format!("/v1/events/{event}/ticket-types");
                self.send(who, Method::POST, &path, Some(body)).await
            }
            "POST /v1/events/{event}/publish" => {
                let fresh = self.fresh_event().await;
                let path = format!("/v1/events/{fresh}/publish");
                self.send(who, Method::POST, &path, None).await
            }
            "POST /v1/events/{event}/cancel" => {
                let fresh = self.fresh_event().await;
                let path = format!("/v1/events/{fresh}/cancel");
                let body = json!({ "reason": "matrix" });
                self.send(who, Method::POST, &path, Some(body)).await
            }
            "PUT /v1/events/{event}/capacity" => {
                let path = format!("/v1/events/{event}/capacity");
                let body = json!({ "capacity": 50_000 + n });
                self.send(who, Method::PUT, &path, Some(body)).await
            }
            "POST /v1/events/{event}/reschedule" => {
                // A draft of its own moved by half an hour: still inside its own slot.
                let starts = next_slot();
                let drafted = self
                    .app
                    .post("/v1/events", event_body(&self.venue, "Moved", starts))
                    .await;
                assert_eq!(drafted.status, 201, "{}", drafted.body);
                let fresh = drafted.text("event_id");
                let later = starts + chrono::Duration::minutes(30);
                let body =
                    json!({ "starts_at": later, "ends_at": later + chrono::Duration::hours(3) });
                let path = format!("/v1/events/{fresh}/reschedule");
                self.send(who, Method::POST, &path, Some(body)).await
            }
            "PUT /v1/events/{event}/questions" => {
                let fresh = self.fresh_event().await;
                let body = json!({ "questions": [
                    { "id": "diet", "label": "Diet", "type": "single_choice", "options": ["none", "vegan"] },
                ] });
                let path = format!("/v1/events/{fresh}/questions");
                self.send(who, Method::PUT, &path, Some(body)).await
            }
            "POST /v1/events/{event}/reservations" => {
                self.reserve_as(self.token(who), &self.free).await
            }
            "POST …/reservations/{own}/pay" | "POST …/reservations/{someone else's}/pay" => {
                let own = route.contains("{own}") && who != Who::Anonymous;
                let holder = if own {
                    self.token(who)
                } else {
                    self.holder.token()
                };
                let registration = self.registration_of(holder, true).await;
                let path = format!("/v1/events/{event}/reservations/{registration}/pay");
                let body = json!({ "card_number": "4242424242424242" });
                self.send(who, Method::POST, &path, Some(body)).await
            }
            "POST …/reservations/{own}/cancel" | "POST …/reservations/{someone else's}/cancel" =>
            {
                let own = route.contains("{own}") && who != Who::Anonymous;
                let holder = if own {
                    self.token(who)
                } else {
                    self.holder.token()
                };
                let registration = self.registration_of(holder, false).await;
                let path = format!("/v1/events/{event}/reservations/{registration}/cancel");
                self.send(who, Method::POST, &path, None).await
            }
            "POST /v1/events/{event}/waitlist" => {
                let body = json!({ "ticket_type_id": self.sold_out, "attendee": attendee(n) });
                let path = format!("/v1/events/{event}/waitlist");
                self.send(who, Method::POST, &path, Some(body)).await
            }
            "POST …/waitlist/{own}/claim" | "POST …/waitlist/{someone else's}/claim" => {
                let own = route.contains("{own}") && who != Who::Anonymous;
                let holder = if own {
                    self.token(who)
                } else {
                    self.holder.token()
                };
                let entry = self.offered_entry_of(holder).await;
                let path = format!("/v1/events/{event}/waitlist/{entry}/claim");
                self.send(who, Method::POST, &path, None).await
            }
            "POST …/waitlist/{own}/leave" | "POST …/waitlist/{someone else's}/leave" => {
                let own = route.contains("{own}") && who != Who::Anonymous;
                let holder = if own {
                    self.token(who)
                } else {
                    self.holder.token()
                };
                let entry = self.waiting_entry_of(holder).await;
                let path = format!("/v1/events/{event}/waitlist/{entry}/leave");
                self.send(who, Method::POST, &path, None).await
            }
            "POST /v1/events/{event}/check-ins" => {
                let code = self.ticket_code(false).await;
                let body = json!({ "ticket_code": code, "nonce": format!("matrix-{n}") });
                let path = format!("/v1/events/{event}/check-ins");
                self.send(who, Method::POST, &path, Some(body)).await
            }
            "POST …/check-ins/{code}/revert" => {
                let code = self.ticket_code(true).await;
                let path = format!("/v1/events/{event}/check-ins/{code}/revert");
                self.send(who, Method::POST, &path, None).await
            }
            "POST /v1/payments/webhook" => {
                let (registration, payment) = self.pending_payment().await;
                let body = json!({
                    "payment_id": payment, "event_id": event, "registration_id": registration,
                    "status": "succeeded", "amount": { "amount_minor": 2500, "currency": "EUR" },
                })
                .to_string();
                let signature = marquee_payments::webhook::sign(
                    TEST_WEBHOOK_SECRET.as_bytes(),
                    chrono::Utc::now().timestamp(),
                    body.as_bytes(),
                );
                self.app
                    .send(
                        self.app
                            .request_as(
                                self.token(who),
                                Method::POST,
                                &self.command("/v1/payments/webhook"),
                            )
                            .header("content-type", "application/json")
                            .header("Marquee-Signature", signature)
                            .body(body),
                    )
                    .await
            }
            "POST /v1/payments/test-gateway/settle" => {
                let (registration, payment) = self.pending_payment().await;
                let body = json!({
                    "payment_id": payment, "event_id": event,
                    "registration_id": registration, "succeeded": true,
                });
                self.send(
                    who,
                    Method::POST,
                    "/v1/payments/test-gateway/settle",
                    Some(body),
                )
                .await
            }
            "GET /health (command API)" => self.send(who, Method::GET, "/health", None).await,
            "GET /v1/events (query API)" => self.query(who, "/v1/events").await,
            "GET /v1/events/{event} (query API)" => {
                self.query(who, &format!("/v1/events/{event}")).await
            }
            "GET /v1/events/{event}/capacity (query API)" => {
                self.query(who, &format!("/v1/events/{event}/capacity"))
                    .await
            }
            "GET /v1/events/{event}/attendees (query API)" => {
                self.query(who, &format!("/v1/events/{event}/attendees"))
                    .await
            }
            "GET /v1/projections (query API)" => self.query(who, "/v1/projections").await,
            "GET /health (query API)" => self.query(who, "/health").await,
            "GET /v1/events/{event}?as_of={position} (query API)" => {
                let at = self.published_at;
                self.query(who, &format!("/v1/events/{event}?as_of={at}"))
                    .await
            }
            "GET /v1/streams/event-{event} (query API)" => {
                self.query(who, &format!("/v1/streams/event-{event}")).await
            }
            "GET /v1/streams/organization-{org} (query API)" => {
                self.query(who, &format!("/v1/streams/organization-{org}"))
                    .await
            }
            "GET /v1/streams/user-{own} (query API)" => {
                let user = match self.session(who) {
                    Some(session) => &session.user_id,
                    None => &self.holder.user_id,
                };
                self.query(who, &format!("/v1/streams/user-{user}")).await
            }
            "GET /v1/streams/user-{someone else's} (query API)" => {
                let user = &self.holder.user_id;
                self.query(who, &format!("/v1/streams/user-{user}")).await
            }
            "GET /v1/log?organization_id={org} (query API)" => {
                self.query(who, &format!("/v1/log?organization_id={org}"))
                    .await
            }
            "GET /v1/log/live?organization_id={org} (query API)" => {
                // Never ends on its own: the status and headers are the answer here.
                let url = format!("{}/v1/log/live?organization_id={org}", self.app.query_url);
                let response = self
                    .app
                    .request_as(self.token(who), Method::GET, &url)
                    .send()
                    .await
                    .expect("an answer");
                let status = response.status().as_u16();
                if status == 200 {
                    let content_type = response
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    assert!(
                        content_type.starts_with("text/event-stream"),
                        "{content_type}"
                    );
                    Reply {
                        status,
                        content_type,
                        position: None,
                        headers: response.headers().clone(),
                        body: Value::Null,
                    }
                } else {
                    crate::helpers::read_reply(response).await
                }
            }
            other => panic!("no case for route {other}"),
        }
    }
}

async fn every_route_answers_every_caller_as_the_policy_says(backend: Backend) {
    let table = policy_table();
    println!("The policy under test:\n{table}\n");
    let world = World::new(backend).await;
    let mut wrong = Vec::new();
    let mut cases = 0;
    for (route, family, ok) in POLICY {
        for who in EVERYONE {
            let expected = family.expect(who, *ok);
            let reply = world.case(route, who).await;
            cases += 1;
            if reply.status != expected {
                wrong.push(format!(
                    "{route} as {}: expected {expected}, got {}: {}",
                    who.column(),
                    reply.status,
                    reply.body
                ));
                continue;
            }
            if expected >= 400 {
                let code = match expected {
                    401 => "unauthorized",
                    403 => "forbidden",
                    404 => "not_found",
                    _ => "validation_failed",
                };
                if reply.body["code"] != code
                    || !reply.content_type.starts_with("application/problem+json")
                {
                    wrong.push(format!(
                        "{route} as {}: expected a problem with code {code}, got {:?}: {}",
                        who.column(),
                        reply.content_type,
                        reply.body
                    ));
                }
            }
        }
    }
    assert_eq!(cases, POLICY.len() * EVERYONE.len());
    assert!(
        wrong.is_empty(),
        "{} of {cases} cases answered against the policy:\n{}\n\nThe policy:\n{table}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_kind_of_caller_exactly_as_the_policy_says() {
    every_route_answers_every_caller_as_the_policy_says(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_route_answers_every_kind_of_caller_exactly_as_the_policy_says() {
    every_route_answers_every_caller_as_the_policy_says(Backend::Postgres).await;
}
