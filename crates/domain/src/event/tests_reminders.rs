//! Reminders before the start: when they are scheduled, that each goes out once per start and
//! offset, and that the scheduler's timer is always told what comes next.

use super::tests_vocabulary::*;
use super::{
    EventCommand, EventError, EventFact, EventPolicy, MAX_REMINDER_OFFSET, PolicyChange,
    ScheduledReminder, Timestamp, next_reminder,
};
use crate::event::Event;
use crate::testing::{given, now};

const DAY: u32 = 24 * 3_600;
const HOUR: u32 = 3_600;

fn reminder(offset_seconds: u32, starts_at: Timestamp) -> ScheduledReminder {
    ScheduledReminder {
        offset_seconds,
        starts_at,
        due_at: starts_at - seconds(i64::from(offset_seconds)),
    }
}

fn scheduled(offset_seconds: u32) -> EventFact {
    EventFact::ReminderScheduled {
        reminder: Some(reminder(offset_seconds, starts())),
    }
}

fn nothing_scheduled() -> EventFact {
    EventFact::ReminderScheduled { reminder: None }
}

fn due(offset_seconds: u32, at: Timestamp) -> EventFact {
    let reminder = reminder(offset_seconds, starts());
    EventFact::ReminderDue {
        offset_seconds,
        starts_at: reminder.starts_at,
        due_at: reminder.due_at,
        reminded_at: at,
    }
}

/// A published event whose first reminder (a day before) is scheduled.
fn on_sale_with_reminders() -> Vec<EventFact> {
    then_also(on_sale(50, 10), [scheduled(DAY)])
}

fn offsets(offsets: Vec<u32>) -> EventCommand {
    EventCommand::ChangePolicy(PolicyChange {
        reminder_offsets_seconds: Some(offsets),
        ..PolicyChange::default()
    })
}

#[test]
fn a_due_reminder_is_recorded_and_the_next_one_scheduled() {
    let at = starts() - hours(24);
    given(on_sale_with_reminders())
        .at(at)
        .when(EventCommand::RemindAttendees)
        .then([due(DAY, at), scheduled(HOUR)]);
}

#[test]
fn a_reminder_is_recorded_once_per_start_and_offset() {
    let at = starts() - hours(20);
    let history = then_also(on_sale_with_reminders(), [due(DAY, at), scheduled(HOUR)]);
    given(history)
        .at(at + seconds(2))
        .when(EventCommand::RemindAttendees)
        .then_nothing();
}

#[test]
fn a_reminder_that_is_not_due_yet_changes_nothing() {
    given(on_sale_with_reminders())
        .at(starts() - hours(25))
        .when(EventCommand::RemindAttendees)
        .then_nothing();
}

#[test]
fn of_several_due_reminders_only_the_latest_goes_out() {
    let at = starts() - minutes(30);
    given(on_sale_with_reminders())
        .at(at)
        .when(EventCommand::RemindAttendees)
        .then([due(HOUR, at), nothing_scheduled()]);
}

#[test]
fn a_timer_firing_after_the_start_is_cleared_without_a_reminder() {
    given(on_sale_with_reminders())
        .at(starts() + minutes(1))
        .when(EventCommand::RemindAttendees)
        .then([nothing_scheduled()]);
}

#[test]
fn cancelling_the_event_clears_its_reminder() {
    let facts = given(on_sale_with_reminders())
        .when(EventCommand::Cancel { reason: None })
        .then_facts();
    assert_eq!(facts.last(), Some(&nothing_scheduled()));
}

#[test]
fn a_draft_has_no_reminders() {
    given([drafted(100), free_added(10)])
        .when(EventCommand::RemindAttendees)
        .then_nothing();
    given([drafted(100), free_added(10)])
        .when(offsets(vec![HOUR]))
        .then([policy_changed(PolicyChange {
            reminder_offsets_seconds: Some(vec![HOUR]),
            ..PolicyChange::default()
        })]);
}

#[test]
fn moving_the_start_after_a_reminder_reminds_again_before_the_new_start() {
    let at = starts() - hours(23);
    let history = then_also(on_sale_with_reminders(), [due(DAY, at), scheduled(HOUR)]);
    let (new_start, new_end) = (starts() + hours(48), ends() + hours(48));
    let facts = given(history)
        .at(at)
        .when(EventCommand::Reschedule {
            starts_at: new_start,
            ends_at: new_end,
        })
        .then_facts();
    assert_eq!(
        facts.last(),
        Some(&EventFact::ReminderScheduled {
            reminder: Some(reminder(DAY, new_start)),
        })
    );
}

#[test]
fn new_offsets_are_kept_largest_first_and_move_the_next_reminder() {
    given(on_sale_with_reminders())
        .when(offsets(vec![600, 2 * DAY, 600, 7_200]))
        .then([
            policy_changed(PolicyChange {
                reminder_offsets_seconds: Some(vec![2 * DAY, 7_200, 600]),
                ..PolicyChange::default()
            }),
            scheduled(2 * DAY),
        ]);
}

#[test]
fn no_offsets_turn_reminders_off() {
    given(on_sale_with_reminders()).when(offsets(vec![])).then([
        policy_changed(PolicyChange {
            reminder_offsets_seconds: Some(vec![]),
            ..PolicyChange::default()
        }),
        nothing_scheduled(),
    ]);
}

#[test]
fn offsets_out_of_range_or_too_many_are_refused() {
    let invalid = |e: &EventError| {
        matches!(
            e,
            EventError::Invalid {
                field: "reminder_offsets_seconds",
                ..
            }
        )
    };
    for bad in [
        vec![0],
        vec![MAX_REMINDER_OFFSET + 1],
        vec![1, 2, 3, 4, 5, 6],
    ] {
        given(on_sale_with_reminders())
            .when(offsets(bad))
            .then_err_matches(invalid);
    }
}

#[test]
fn the_default_policy_reminds_a_day_and_an_hour_before() {
    assert_eq!(
        EventPolicy::default().reminder_offsets_seconds,
        vec![DAY, HOUR]
    );
    let old: EventPolicy = serde_json::from_value(serde_json::json!({
        "hold_seconds": 900, "offer_seconds": 86_400,
        "cancellation_deadline": null, "max_per_attendee": null,
    }))
    .expect("a policy stored before reminders existed");
    assert_eq!(old.reminder_offsets_seconds, vec![DAY, HOUR]);
    assert_eq!(next_reminder(&Event::default(), now()), None);
}
