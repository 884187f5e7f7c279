//! A given/when/then harness for aggregate tests, so that a test reads as the rule it checks:
//!
//! ```
//! use marquee_domain::testing::given;
//! use marquee_domain::venue::{VenueCommand, VenueError};
//!
//! given([])
//!     .when(VenueCommand::RenameVenue { name: "Hall".into() })
//!     .then_err(VenueError::NotFound);
//! ```
//!
//! `given` folds the history with the aggregate's `evolve`, `when` runs `decide` at a fixed
//! [`now`] (or the time set with [`Given::at`]), and `then`/`then_err` compare the outcome.
//! Failures point at the test's line, not at this module, thanks to `#[track_caller]`.
//!
//! Public rather than `#[cfg(test)]` so that other crates' tests can state domain history the
//! same way.

use std::fmt::Debug;

use chrono::{DateTime, TimeDelta};

use crate::{Timestamp, event, organization, user, venue};

/// The fixed "now" every `when` runs at unless [`Given::at`] says otherwise:
/// 2030-06-01T12:00:00Z.
pub fn now() -> Timestamp {
    DateTime::UNIX_EPOCH + TimeDelta::seconds(1_906_545_600)
}

/// A command type together with the aggregate it addresses. Implemented on the command so
/// that `given([]).when(command)` knows which aggregate it is about.
pub trait Decide: Sized {
    /// The aggregate's state, `Default` being "does not exist".
    type State: Default + Debug;
    /// The aggregate's fact enum.
    type Fact: Debug + PartialEq;
    /// The aggregate's error enum.
    type Error: Debug + PartialEq;

    /// The aggregate's `decide`.
    fn decide(
        state: &Self::State,
        command: Self,
        now: Timestamp,
    ) -> Result<Vec<Self::Fact>, Self::Error>;

    /// The aggregate's `evolve`.
    fn evolve(state: Self::State, fact: &Self::Fact) -> Self::State;
}

impl Decide for event::EventCommand {
    type State = event::Event;
    type Fact = event::EventFact;
    type Error = event::EventError;

    fn decide(
        state: &Self::State,
        command: Self,
        now: Timestamp,
    ) -> Result<Vec<Self::Fact>, Self::Error> {
        event::decide(state, command, now)
    }

    fn evolve(state: Self::State, fact: &Self::Fact) -> Self::State {
        event::evolve(state, fact)
    }
}

impl Decide for venue::VenueCommand {
    type State = venue::Venue;
    type Fact = venue::VenueFact;
    type Error = venue::VenueError;

    fn decide(
        state: &Self::State,
        command: Self,
        now: Timestamp,
    ) -> Result<Vec<Self::Fact>, Self::Error> {
        venue::decide(state, command, now)
    }

    fn evolve(state: Self::State, fact: &Self::Fact) -> Self::State {
        venue::evolve(state, fact)
    }
}

impl Decide for user::UserCommand {
    type State = user::User;
    type Fact = user::UserFact;
    type Error = user::UserError;

    fn decide(
        state: &Self::State,
        command: Self,
        now: Timestamp,
    ) -> Result<Vec<Self::Fact>, Self::Error> {
        user::decide(state, command, now)
    }

    fn evolve(state: Self::State, fact: &Self::Fact) -> Self::State {
        user::evolve(state, fact)
    }
}

impl Decide for organization::OrganizationCommand {
    type State = organization::Organization;
    type Fact = organization::OrganizationFact;
    type Error = organization::OrganizationError;

    fn decide(
        state: &Self::State,
        command: Self,
        now: Timestamp,
    ) -> Result<Vec<Self::Fact>, Self::Error> {
        organization::decide(state, command, now)
    }

    fn evolve(state: Self::State, fact: &Self::Fact) -> Self::State {
        organization::evolve(state, fact)
    }
}

/// The history of one aggregate instance, before the command under test.
#[derive(Debug)]
pub struct Given<F> {
    history: Vec<F>,
    now: Timestamp,
}

/// Starts a test from the facts already in the stream, oldest first.
pub fn given<F>(history: impl IntoIterator<Item = F>) -> Given<F> {
    Given {
        history: history.into_iter().collect(),
        now: now(),
    }
}

impl<F> Given<F> {
    /// Runs the command at `now` instead of the fixed [`now`].
    pub fn at(mut self, now: Timestamp) -> Self {
        self.now = now;
        self
    }

    /// The state folded from the history.
    pub fn state<C: Decide<Fact = F>>(&self) -> C::State {
        self.history.iter().fold(C::State::default(), C::evolve)
    }

    /// Decides `command` against the folded history.
    pub fn when<C: Decide<Fact = F>>(self, command: C) -> Then<C> {
        let state = self.state::<C>();
        let outcome = C::decide(&state, command, self.now);
        Then { state, outcome }
    }
}

/// The outcome of a command, ready to be checked.
#[derive(Debug)]
pub struct Then<C: Decide> {
    state: C::State,
    outcome: Result<Vec<C::Fact>, C::Error>,
}

impl<C: Decide> Then<C> {
    /// Asserts the command was accepted and produced exactly `expected`, in order.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = C::Fact>) {
        let expected: Vec<C::Fact> = expected.into_iter().collect();
        match self.outcome {
            Ok(facts) => assert_eq!(facts, expected, "the command produced other facts"),
            Err(error) => panic!("expected facts {expected:?}, the command was refused: {error:?}"),
        }
    }

    /// Asserts the command was accepted but changed nothing: no facts.
    #[track_caller]
    pub fn then_nothing(self) {
        self.then([]);
    }

    /// Asserts the command was refused with `expected`.
    #[track_caller]
    pub fn then_err(self, expected: C::Error) {
        match self.outcome {
            Ok(facts) => panic!("expected the error {expected:?}, the command produced {facts:?}"),
            Err(error) => assert_eq!(
                error, expected,
                "the command was refused for another reason"
            ),
        }
    }

    /// Asserts the command was refused and hands the error to `check`, for errors whose
    /// message is not worth spelling out in the test.
    #[track_caller]
    pub fn then_err_matches(self, check: impl FnOnce(&C::Error) -> bool) {
        match self.outcome {
            Ok(facts) => panic!("expected an error, the command produced {facts:?}"),
            Err(error) => assert!(check(&error), "unexpected error {error:?}"),
        }
    }

    /// Asserts the command was accepted and returns its facts, to build a longer history.
    #[track_caller]
    pub fn then_facts(self) -> Vec<C::Fact> {
        match self.outcome {
            Ok(facts) => facts,
            Err(error) => panic!("expected the command to be accepted, it was refused: {error:?}"),
        }
    }

    /// Asserts the command was accepted and returns the state with its facts folded in, for
    /// checks on what `evolve` made of them.
    #[track_caller]
    pub fn then_state(self) -> C::State {
        match self.outcome {
            Ok(facts) => facts.iter().fold(self.state, C::evolve),
            Err(error) => panic!("expected the command to be accepted, it was refused: {error:?}"),
        }
    }
}
