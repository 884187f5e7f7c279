//! The planning step of an append batch: given what the log already holds, decide for every
//! request whether it is accepted, and which rows (positions, revisions) it writes.
//!
//! Pure and synchronous on purpose: the three backends share it, so the expected-revision,
//! duplicate-fact-id and idempotency-key rules live in exactly one place and are unit-tested here
//! without a database. A backend loads a [`LogView`] inside its write transaction, calls
//! [`plan_grouped`], writes [`BatchPlan::rows`] and [`BatchPlan::idempotency`], and commits.
//!
//! Most requests stand alone: a refused one takes nothing with it. An atomic group (one
//! [`crate::EventStore::append_atomic`] call) is planned as one unit among its neighbours: when a
//! member is refused, what the group planned is taken back before the next unit is planned.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{AppendRequest, Appended, ExpectedRevision, IdempotencyWrite, NewFact, StoreError};

/// Where a fact that is already stored sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnownFact {
    pub stream: String,
    pub revision: u64,
    pub position: u64,
}

/// The part of the log a batch touches, read inside the batch's write transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogView {
    /// The highest stored position (0 for an empty log).
    pub head: u64,
    /// Revision of the last fact of each stream the batch names; absent = stream does not exist.
    pub stream_revisions: HashMap<String, u64>,
    /// Fact ids of the batch that are already stored.
    pub known_facts: HashMap<Uuid, KnownFact>,
    /// Idempotency keys of the batch that are already stored and not expired.
    pub taken_keys: HashSet<String>,
}

/// One row to insert into `facts`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlannedRow<'a> {
    pub position: u64,
    pub stream: &'a str,
    pub revision: u64,
    pub fact: &'a NewFact,
}

/// What one batch transaction writes, and what each request is answered.
#[derive(Debug)]
pub(crate) struct BatchPlan<'a> {
    /// New facts, in position order (contiguous from `view.head + 1`).
    pub rows: Vec<PlannedRow<'a>>,
    /// Idempotency entries of the accepted requests, with `position` filled in (see
    /// [`IdempotencyWrite`]).
    pub idempotency: Vec<IdempotencyWrite>,
    /// One answer per request, in request order. A refused atomic group is answered as
    /// [`refuse_together`] says: the reason first.
    pub outcomes: Vec<Result<Appended, StoreError>>,
    /// The highest position after the batch.
    pub head: u64,
}

/// The remembered answer of an append names the append's last position, which only the batch
/// plan knows: it goes into the body's `position` member when the body is a JSON object.
fn set_position(write: &mut IdempotencyWrite, last_position: u64) {
    if let serde_json::Value::Object(body) = &mut write.response.body {
        body.insert("position".to_owned(), last_position.into());
    }
}

/// Rejects requests no backend could store, before they reach a transaction.
pub(crate) fn validate(request: &AppendRequest) -> Result<(), StoreError> {
    if request.stream.trim().is_empty() {
        return Err(StoreError::Invalid("stream name is empty".into()));
    }
    if request.facts.is_empty() {
        return Err(StoreError::Invalid(format!(
            "append to {} carries no facts",
            request.stream
        )));
    }
    if let Some(fact) = request.facts.iter().find(|f| f.fact_type.trim().is_empty()) {
        return Err(StoreError::Invalid(format!(
            "fact {} has an empty fact type",
            fact.fact_id
        )));
    }
    if request
        .idempotency
        .as_ref()
        .is_some_and(|w| w.key.is_empty())
    {
        return Err(StoreError::Invalid("idempotency key is empty".into()));
    }
    Ok(())
}

/// [`validate`] for a chain of appends (see [`crate::EventStore::append_all`]). Nothing of a
/// chain with an unusable link is queued: the links after it could not be answered truthfully.
/// `Err` carries one answer per request: the unusable ones say why, the others that they were
/// not attempted.
pub(crate) fn validate_chain(
    requests: &[AppendRequest],
) -> Result<(), Vec<Result<Appended, StoreError>>> {
    let checks: Vec<Result<(), StoreError>> = requests.iter().map(validate).collect();
    if checks.iter().all(Result::is_ok) {
        return Ok(());
    }
    Err(requests
        .iter()
        .zip(checks)
        .map(|(request, check)| {
            Err(check.err().unwrap_or_else(|| {
                StoreError::Invalid(format!(
                    "append to {} not attempted: another append of its chain is invalid",
                    request.stream
                ))
            }))
        })
        .collect())
}

/// [`validate`] for an atomic group (see [`crate::EventStore::append_atomic`]): a group needs at
/// least one request, each must be usable, and no idempotency key may appear twice (the second
/// use would refuse the group on every try, which no retry could ever get past).
pub(crate) fn validate_group(requests: &[AppendRequest]) -> Result<(), StoreError> {
    if requests.is_empty() {
        return Err(StoreError::Invalid(
            "an atomic append needs at least one request".into(),
        ));
    }
    requests.iter().try_for_each(validate)?;
    let mut keys = HashSet::new();
    for write in requests.iter().filter_map(|r| r.idempotency.as_ref()) {
        if !keys.insert(write.key.as_str()) {
            return Err(StoreError::Invalid(format!(
                "idempotency key {} appears twice in one atomic append",
                write.key
            )));
        }
    }
    Ok(())
}

/// Every stream name the batch mentions (for loading `LogView::stream_revisions`).
pub(crate) fn streams_of(requests: &[AppendRequest]) -> Vec<String> {
    let set: HashSet<&str> = requests.iter().map(|r| r.stream.as_str()).collect();
    set.into_iter().map(str::to_owned).collect()
}

/// Every fact id the batch carries (for loading `LogView::known_facts`).
pub(crate) fn fact_ids_of(requests: &[AppendRequest]) -> Vec<Uuid> {
    let set: HashSet<Uuid> = requests
        .iter()
        .flat_map(|r| r.facts.iter().map(|f| f.fact_id))
        .collect();
    set.into_iter().collect()
}

/// Every idempotency key the batch carries (for loading `LogView::taken_keys`).
pub(crate) fn keys_of(requests: &[AppendRequest]) -> Vec<String> {
    let set: HashSet<&str> = requests
        .iter()
        .filter_map(|r| r.idempotency.as_ref().map(|w| w.key.as_str()))
        .collect();
    set.into_iter().map(str::to_owned).collect()
}

/// The oldest `created_at` an idempotency entry may have and still answer.
pub(crate) fn idempotency_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - crate::IDEMPOTENCY_TTL
}

/// Decides a batch. Requests are considered in order; each sees the effect of the accepted ones
/// before it (revisions, fact ids, keys), and a rejected one changes nothing for its neighbours.
///
/// Rules, per request:
/// 1. a fact id already stored (or written earlier in the batch, or repeated in the request) is
///    skipped; if *every* fact is skipped the request is a retry and is answered with the stored
///    positions, without checking the expected revision;
/// 2. an idempotency key already taken rejects the request ([`StoreError::IdempotencyKeyTaken`]);
/// 3. the expected revision is checked against the stream as the batch has left it so far;
/// 4. new facts get the next positions and revisions.
///
/// `groups` are the atomic groups among `requests` (see [`crate::EventStore::append_atomic`]):
/// sorted, disjoint index ranges. A group is planned as one unit: its members follow the rules
/// above one after the other, and if one is refused, everything the members before it planned
/// (rows, revisions, fact ids, keys) is taken back, the members after it are not planned, and
/// the group is answered as [`refuse_together`] says. Its neighbours plan as if it had never been
/// queued. An accepted group's idempotency answers name the group's last position: the group is
/// one command, and that is the command's answer.
pub(crate) fn plan_grouped<'a>(
    requests: &'a [AppendRequest],
    groups: &[Range<usize>],
    view: &LogView,
) -> BatchPlan<'a> {
    let mut planner = Planner::new(view);
    let mut outcomes = Vec::with_capacity(requests.len());
    for unit in units(requests.len(), groups) {
        let members = &requests[unit.range];
        if unit.atomic {
            outcomes.extend(planner.plan_group(members));
        } else {
            outcomes.extend(members.iter().map(|request| planner.plan(request)));
        }
    }
    BatchPlan {
        rows: planner.rows,
        idempotency: planner.idempotency,
        outcomes,
        head: planner.head,
    }
}

/// A run of a batch's requests that stands or falls together: one request alone, or one
/// atomic group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unit {
    /// Indexes into the batch's requests.
    pub range: Range<usize>,
    /// Whether the run is an atomic group (all or nothing) rather than one lone request.
    pub atomic: bool,
}

/// Cuts `len` requests into units: each range of `groups` (sorted, disjoint) is one atomic unit,
/// every other request a unit of its own. Out-of-order or out-of-bounds ranges are clamped so the
/// units always cover `0..len` exactly once, in order.
pub(crate) fn units(len: usize, groups: &[Range<usize>]) -> Vec<Unit> {
    let mut units = Vec::with_capacity(len);
    let mut groups = groups.iter().peekable();
    let mut next = 0;
    while next < len {
        // Skip ranges that start before `next`: they would overlap what is already cut.
        while groups.next_if(|g| g.start < next).is_some() {}
        match groups.next_if(|g| g.start == next) {
            Some(group) if group.end > next => {
                let end = group.end.min(len);
                units.push(Unit {
                    range: next..end,
                    atomic: true,
                });
                next = end;
            }
            // An empty group plans nothing.
            Some(_) => {}
            None => {
                units.push(Unit {
                    range: next..next + 1,
                    atomic: false,
                });
                next += 1;
            }
        }
    }
    units
}

/// The answers of a unit that is refused as a whole: the first member carries `refusal`, the
/// others say they were not written. So the first error among a group's answers is always the
/// reason (what [`crate::EventStore::append_atomic`] returns), wherever in the group it arose.
pub(crate) fn refuse_together(
    members: &[AppendRequest],
    refusal: StoreError,
) -> Vec<Result<Appended, StoreError>> {
    let mut answers = Vec::with_capacity(members.len());
    answers.push(Err(refusal));
    answers.extend(members.iter().skip(1).map(|request| {
        Err(StoreError::Invalid(format!(
            "append to {} not written: another append of its atomic group was refused",
            request.stream
        )))
    }));
    answers
}

/// The running state of [`plan_grouped`]: what the accepted requests so far have planned,
/// layered over the view.
struct Planner<'a, 'v> {
    view: &'v LogView,
    rows: Vec<PlannedRow<'a>>,
    idempotency: Vec<IdempotencyWrite>,
    head: u64,
    /// Stream revisions as the accepted requests left them.
    revisions: HashMap<&'a str, u64>,
    /// What each change to `revisions` replaced, so a refused group can be taken back.
    replaced_revisions: Vec<(&'a str, Option<u64>)>,
    /// Facts the accepted requests wrote.
    written: HashMap<Uuid, KnownFact>,
    /// Idempotency keys the accepted requests took.
    keys: HashSet<&'a str>,
}

/// How far a [`Planner`] had got, to take back everything planned after it.
#[derive(Debug, Clone, Copy)]
struct Mark {
    rows: usize,
    idempotency: usize,
    head: u64,
    replaced_revisions: usize,
}

impl<'a, 'v> Planner<'a, 'v> {
    fn new(view: &'v LogView) -> Self {
        Self {
            view,
            rows: Vec::new(),
            idempotency: Vec::new(),
            head: view.head,
            revisions: HashMap::new(),
            replaced_revisions: Vec::new(),
            written: HashMap::new(),
            keys: HashSet::new(),
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            rows: self.rows.len(),
            idempotency: self.idempotency.len(),
            head: self.head,
            replaced_revisions: self.replaced_revisions.len(),
        }
    }

    /// Forgets everything planned since `mark`. Exact because a planned row's fact id and an
    /// accepted key were new when planned (rules 1 and 2), so removing them restores the sets.
    fn take_back(&mut self, mark: Mark) {
        for row in self.rows.drain(mark.rows..) {
            self.written.remove(&row.fact.fact_id);
        }
        for write in self.idempotency.drain(mark.idempotency..) {
            self.keys.remove(write.key.as_str());
        }
        for (stream, replaced) in self
            .replaced_revisions
            .drain(mark.replaced_revisions..)
            .rev()
        {
            match replaced {
                Some(revision) => self.revisions.insert(stream, revision),
                None => self.revisions.remove(stream),
            };
        }
        self.head = mark.head;
    }

    /// Plans an atomic group: all members, or none of them (see [`plan_grouped`]).
    fn plan_group(&mut self, members: &'a [AppendRequest]) -> Vec<Result<Appended, StoreError>> {
        let mark = self.mark();
        let mut answers = Vec::with_capacity(members.len());
        for request in members {
            match self.plan(request) {
                Ok(appended) => answers.push(appended),
                Err(refusal) => {
                    self.take_back(mark);
                    return refuse_together(members, refusal);
                }
            }
        }
        let last = answers.iter().map(|a| a.last_position).max().unwrap_or(0);
        for write in &mut self.idempotency[mark.idempotency..] {
            set_position(write, last);
        }
        answers.into_iter().map(Ok).collect()
    }

    /// Plans one request by the rules of [`plan_grouped`]; a refused one changes nothing.
    fn plan(&mut self, request: &'a AppendRequest) -> Result<Appended, StoreError> {
        validate(request)?;
        let stream = request.stream.as_str();

        // Split into already-stored facts and new ones (deduplicating within the request too).
        let mut known_positions: Vec<(u64, u64)> = Vec::new(); // (position, revision)
        let mut new_facts: Vec<&'a NewFact> = Vec::new();
        let mut seen_here: HashSet<Uuid> = HashSet::new();
        for fact in &request.facts {
            if let Some(k) = self
                .view
                .known_facts
                .get(&fact.fact_id)
                .or_else(|| self.written.get(&fact.fact_id))
            {
                known_positions.push((k.position, k.revision));
            } else if seen_here.insert(fact.fact_id) {
                new_facts.push(fact);
            }
        }

        if new_facts.is_empty() {
            // A retry of something already stored: answer as stored.
            let first = known_positions.iter().map(|(p, _)| *p).min().unwrap_or(0);
            let (last, revision) = known_positions
                .iter()
                .copied()
                .max_by_key(|(p, _)| *p)
                .unwrap_or((0, 0));
            return Ok(Appended {
                first_position: first,
                last_position: last,
                revision,
            });
        }

        if let Some(write) = &request.idempotency
            && (self.view.taken_keys.contains(&write.key) || self.keys.contains(write.key.as_str()))
        {
            return Err(StoreError::IdempotencyKeyTaken {
                key: write.key.clone(),
            });
        }

        let current = self
            .revisions
            .get(stream)
            .copied()
            .or_else(|| self.view.stream_revisions.get(stream).copied());
        let matches = match request.expected {
            ExpectedRevision::Any => true,
            ExpectedRevision::NoStream => current.is_none(),
            ExpectedRevision::Exact(r) => current == Some(r),
        };
        if !matches {
            return Err(StoreError::WrongExpectedRevision {
                stream: request.stream.clone(),
                expected: request.expected,
                actual: current,
            });
        }

        let mut revision = current.map_or(0, |r| r + 1);
        let first_new = self.head + 1;
        for fact in new_facts {
            self.head += 1;
            self.rows.push(PlannedRow {
                position: self.head,
                stream,
                revision,
                fact,
            });
            self.written.insert(
                fact.fact_id,
                KnownFact {
                    stream: request.stream.clone(),
                    revision,
                    position: self.head,
                },
            );
            revision += 1;
        }
        let last_revision = revision - 1;
        let replaced = self.revisions.insert(stream, last_revision);
        self.replaced_revisions.push((stream, replaced));
        if let Some(write) = &request.idempotency {
            self.keys.insert(write.key.as_str());
            let mut write = write.clone();
            set_position(&mut write, self.head);
            self.idempotency.push(write);
        }
        let first = known_positions
            .iter()
            .map(|(p, _)| *p)
            .fold(first_new, u64::min);
        Ok(Appended {
            first_position: first,
            last_position: self.head,
            revision: last_revision,
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::single_range_in_vec_init,
    reason = "a slice of one index range is one atomic group, as intended"
)]
mod tests {
    use super::*;
    use crate::{FactMetadata, IdempotentResponse};
    use serde_json::json;

    fn fact(id: u128) -> NewFact {
        NewFact {
            fact_id: Uuid::from_u128(id),
            fact_type: "Happened".into(),
            schema_version: 1,
            data: json!({ "n": id }),
            metadata: FactMetadata::default(),
        }
    }

    fn request(stream: &str, expected: ExpectedRevision, ids: &[u128]) -> AppendRequest {
        AppendRequest {
            stream: stream.into(),
            expected,
            facts: ids.iter().map(|i| fact(*i)).collect(),
            idempotency: None,
        }
    }

    fn keyed(mut r: AppendRequest, key: &str) -> AppendRequest {
        r.idempotency = Some(IdempotencyWrite {
            key: key.into(),
            response: IdempotentResponse {
                request_hash: "h".into(),
                status: 201,
                body: json!({}),
                created_at: Utc::now(),
            },
        });
        r
    }

    fn appended(first: u64, last: u64, revision: u64) -> Appended {
        Appended {
            first_position: first,
            last_position: last,
            revision,
        }
    }

    /// A batch in which every request stands alone.
    fn plan_batch<'a>(requests: &'a [AppendRequest], view: &LogView) -> BatchPlan<'a> {
        plan_grouped(requests, &[], view)
    }

    fn ok(outcome: &Result<Appended, StoreError>) -> Appended {
        match outcome {
            Ok(a) => *a,
            Err(e) => panic!("expected success, got {e}"),
        }
    }

    #[test]
    fn an_empty_log_accepts_a_new_stream_from_position_one() {
        let requests = [request("a", ExpectedRevision::NoStream, &[1, 2])];
        let plan = plan_batch(&requests, &LogView::default());
        assert_eq!(ok(&plan.outcomes[0]), appended(1, 2, 1));
        let placed: Vec<_> = plan
            .rows
            .iter()
            .map(|r| (r.position, r.stream, r.revision))
            .collect();
        assert_eq!(placed, vec![(1, "a", 0), (2, "a", 1)]);
        assert_eq!(plan.head, 2);
    }

    #[test]
    fn two_requests_to_one_stream_in_a_batch_see_each_other() {
        let requests = [
            request("a", ExpectedRevision::NoStream, &[1]),
            request("a", ExpectedRevision::Exact(0), &[2]),
            // Raced: it expected the stream to be new too.
            request("a", ExpectedRevision::NoStream, &[3]),
            request("a", ExpectedRevision::Exact(1), &[4]),
        ];
        let plan = plan_batch(&requests, &LogView::default());
        assert_eq!(ok(&plan.outcomes[0]), appended(1, 1, 0));
        assert_eq!(ok(&plan.outcomes[1]), appended(2, 2, 1));
        assert!(matches!(
            plan.outcomes[2],
            Err(StoreError::WrongExpectedRevision {
                actual: Some(1),
                ..
            })
        ));
        assert_eq!(ok(&plan.outcomes[3]), appended(3, 3, 2));
        assert_eq!(plan.rows.len(), 3);
    }

    #[test]
    fn a_rejected_request_writes_nothing_and_leaves_positions_contiguous() {
        let mut view = LogView {
            head: 10,
            ..LogView::default()
        };
        view.stream_revisions.insert("a".into(), 4);
        let requests = [
            request("a", ExpectedRevision::Exact(3), &[1, 2]),
            request("b", ExpectedRevision::Any, &[3]),
        ];
        let plan = plan_batch(&requests, &view);
        assert!(matches!(
            plan.outcomes[0],
            Err(StoreError::WrongExpectedRevision {
                actual: Some(4),
                ..
            })
        ));
        assert_eq!(ok(&plan.outcomes[1]), appended(11, 11, 0));
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.head, 11);
    }

    #[test]
    fn re_appending_stored_facts_answers_as_stored_without_checking_revision() {
        let mut view = LogView {
            head: 7,
            ..LogView::default()
        };
        view.stream_revisions.insert("a".into(), 5);
        for (id, revision, position) in [(1, 2, 3), (2, 3, 5)] {
            view.known_facts.insert(
                Uuid::from_u128(id),
                KnownFact {
                    stream: "a".into(),
                    revision,
                    position,
                },
            );
        }
        let requests = [request("a", ExpectedRevision::NoStream, &[1, 2])];
        let plan = plan_batch(&requests, &view);
        assert_eq!(ok(&plan.outcomes[0]), appended(3, 5, 3));
        assert!(plan.rows.is_empty());
        assert_eq!(plan.head, 7);
    }

    #[test]
    fn a_fact_id_repeated_within_a_batch_is_written_once() {
        let requests = [
            request("a", ExpectedRevision::Any, &[1, 1, 2]),
            request("a", ExpectedRevision::Any, &[2]),
        ];
        let plan = plan_batch(&requests, &LogView::default());
        assert_eq!(ok(&plan.outcomes[0]), appended(1, 2, 1));
        assert_eq!(ok(&plan.outcomes[1]), appended(2, 2, 1));
        assert_eq!(plan.rows.len(), 2);
    }

    #[test]
    fn a_partly_stored_request_writes_only_the_new_facts() {
        let mut view = LogView {
            head: 1,
            ..LogView::default()
        };
        view.stream_revisions.insert("a".into(), 0);
        view.known_facts.insert(
            Uuid::from_u128(1),
            KnownFact {
                stream: "a".into(),
                revision: 0,
                position: 1,
            },
        );
        let requests = [request("a", ExpectedRevision::Exact(0), &[1, 2])];
        let plan = plan_batch(&requests, &view);
        assert_eq!(ok(&plan.outcomes[0]), appended(1, 2, 1));
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.rows[0].fact.fact_id, Uuid::from_u128(2));
    }

    #[test]
    fn an_idempotency_key_is_taken_once_per_batch_and_once_per_log() {
        let mut view = LogView::default();
        view.taken_keys.insert("old".into());
        let requests = [
            keyed(request("a", ExpectedRevision::Any, &[1]), "k"),
            keyed(request("b", ExpectedRevision::Any, &[2]), "k"),
            keyed(request("c", ExpectedRevision::Any, &[3]), "old"),
        ];
        let plan = plan_batch(&requests, &view);
        assert!(plan.outcomes[0].is_ok());
        assert!(matches!(
            &plan.outcomes[1],
            Err(StoreError::IdempotencyKeyTaken { key }) if key == "k"
        ));
        assert!(matches!(
            &plan.outcomes[2],
            Err(StoreError::IdempotencyKeyTaken { key }) if key == "old"
        ));
        assert_eq!(plan.idempotency.len(), 1);
        assert_eq!(plan.rows.len(), 1);
    }

    #[test]
    fn a_rejected_request_does_not_take_its_idempotency_key() {
        let requests = [
            keyed(request("a", ExpectedRevision::Exact(9), &[1]), "k"),
            keyed(request("a", ExpectedRevision::NoStream, &[2]), "k"),
        ];
        let plan = plan_batch(&requests, &LogView::default());
        assert!(plan.outcomes[0].is_err());
        assert_eq!(ok(&plan.outcomes[1]), appended(1, 1, 0));
        assert_eq!(plan.idempotency.len(), 1);
    }

    #[test]
    fn a_remembered_answer_gets_the_appends_last_position() {
        let view = LogView {
            head: 4,
            ..LogView::default()
        };
        let requests = [keyed(request("a", ExpectedRevision::Any, &[1, 2]), "k")];
        let plan = plan_batch(&requests, &view);
        assert_eq!(plan.idempotency[0].response.body, json!({ "position": 6 }));
    }

    #[test]
    fn invalid_requests_are_rejected_alone() {
        let requests = [
            request("", ExpectedRevision::Any, &[1]),
            request("a", ExpectedRevision::Any, &[]),
            request("a", ExpectedRevision::Any, &[2]),
        ];
        let plan = plan_batch(&requests, &LogView::default());
        assert!(matches!(plan.outcomes[0], Err(StoreError::Invalid(_))));
        assert!(matches!(plan.outcomes[1], Err(StoreError::Invalid(_))));
        assert_eq!(ok(&plan.outcomes[2]), appended(1, 1, 0));
    }

    #[track_caller]
    fn assert_wrong_revision(outcome: &Result<Appended, StoreError>, on: &str) {
        match outcome {
            Err(StoreError::WrongExpectedRevision { stream, .. }) => assert_eq!(stream, on),
            other => panic!("expected WrongExpectedRevision on {on}, got {other:?}"),
        }
    }

    #[track_caller]
    fn assert_not_written(outcome: &Result<Appended, StoreError>) {
        assert!(
            matches!(outcome, Err(StoreError::Invalid(m)) if m.contains("not written")),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_refused_member_takes_back_the_whole_group() {
        let requests = [
            // Leaves `a` at revision 0 before the group.
            request("a", ExpectedRevision::Any, &[1]),
            // The group: its first two members would be fine, the third is stale.
            keyed(request("a", ExpectedRevision::Exact(0), &[2, 3]), "k"),
            request("new", ExpectedRevision::NoStream, &[4]),
            request("b", ExpectedRevision::Exact(5), &[5]),
            // After the group, as if it had never been queued: its key, fact ids, stream
            // revisions and positions are all free again.
            keyed(request("a", ExpectedRevision::Exact(0), &[2]), "k"),
            request("new", ExpectedRevision::NoStream, &[4]),
        ];
        let plan = plan_grouped(&requests, &[1..4], &LogView::default());

        assert_eq!(ok(&plan.outcomes[0]), appended(1, 1, 0));
        // The reason comes first, whichever member it arose in; the others were not written.
        assert_wrong_revision(&plan.outcomes[1], "b");
        assert_not_written(&plan.outcomes[2]);
        assert_not_written(&plan.outcomes[3]);
        assert_eq!(ok(&plan.outcomes[4]), appended(2, 2, 1));
        assert_eq!(ok(&plan.outcomes[5]), appended(3, 3, 0));

        let placed: Vec<_> = plan
            .rows
            .iter()
            .map(|r| (r.position, r.stream, r.revision, r.fact.fact_id.as_u128()))
            .collect();
        assert_eq!(
            placed,
            vec![(1, "a", 0, 1), (2, "a", 1, 2), (3, "new", 0, 4)]
        );
        assert_eq!(plan.idempotency.len(), 1);
        assert_eq!(plan.idempotency[0].response.body, json!({ "position": 2 }));
        assert_eq!(plan.head, 3);
    }

    #[test]
    fn neighbours_of_a_refused_group_in_the_same_batch_still_commit() {
        let mut view = LogView {
            head: 10,
            ..LogView::default()
        };
        view.stream_revisions.insert("venue".into(), 4);
        let requests = [
            request("x", ExpectedRevision::NoStream, &[1]),
            // Two drafts for one venue, both decided at revision 4: the first wins.
            request("venue", ExpectedRevision::Exact(4), &[2]),
            request("event-1", ExpectedRevision::NoStream, &[3]),
            request("venue", ExpectedRevision::Exact(4), &[4]),
            request("event-2", ExpectedRevision::NoStream, &[5]),
            request("y", ExpectedRevision::NoStream, &[6, 7]),
            // Re-decided after the first draft: expects its venue fact.
            request("venue", ExpectedRevision::Exact(5), &[8]),
            request("event-2", ExpectedRevision::NoStream, &[9]),
        ];
        let plan = plan_grouped(&requests, &[1..3, 3..5, 6..8], &view);

        assert_eq!(ok(&plan.outcomes[0]), appended(11, 11, 0));
        assert_eq!(ok(&plan.outcomes[1]), appended(12, 12, 5));
        assert_eq!(ok(&plan.outcomes[2]), appended(13, 13, 0));
        assert_wrong_revision(&plan.outcomes[3], "venue");
        assert_not_written(&plan.outcomes[4]);
        assert_eq!(ok(&plan.outcomes[5]), appended(14, 15, 1));
        assert_eq!(ok(&plan.outcomes[6]), appended(16, 16, 6));
        assert_eq!(ok(&plan.outcomes[7]), appended(17, 17, 0));
        let positions: Vec<u64> = plan.rows.iter().map(|r| r.position).collect();
        assert_eq!(positions, (11..=17).collect::<Vec<_>>());
        assert!(plan.rows.iter().all(|r| r.fact.fact_id.as_u128() != 4));
        assert!(plan.rows.iter().all(|r| r.fact.fact_id.as_u128() != 5));
    }

    #[test]
    fn members_of_a_group_chain_their_expected_revisions() {
        let mut view = LogView {
            head: 3,
            ..LogView::default()
        };
        view.stream_revisions.insert("venue".into(), 2);
        let chained = [
            request("venue", ExpectedRevision::Exact(2), &[1, 2]),
            request("event", ExpectedRevision::NoStream, &[3]),
            request("venue", ExpectedRevision::Exact(4), &[4]),
            request("event", ExpectedRevision::Exact(0), &[5]),
        ];
        let plan = plan_grouped(&chained, &[0..4], &view);
        let answers: Vec<Appended> = plan.outcomes.iter().map(ok).collect();
        assert_eq!(
            answers,
            [
                appended(4, 5, 4),
                appended(6, 6, 0),
                appended(7, 7, 5),
                appended(8, 8, 1)
            ]
        );

        // A link that does not expect the one before it in the group refuses the group.
        let broken = [
            request("venue", ExpectedRevision::Exact(2), &[1]),
            request("venue", ExpectedRevision::Exact(2), &[2]),
        ];
        let plan = plan_grouped(&broken, &[0..2], &view);
        assert!(matches!(
            plan.outcomes[0],
            Err(StoreError::WrongExpectedRevision {
                actual: Some(3),
                ..
            })
        ));
        assert!(plan.rows.is_empty());
        assert_eq!(plan.head, 3);
    }

    #[test]
    fn a_fully_stored_group_is_a_retry_answered_with_the_stored_positions() {
        let mut view = LogView {
            head: 9,
            ..LogView::default()
        };
        view.stream_revisions.insert("venue".into(), 7);
        view.stream_revisions.insert("event".into(), 0);
        view.taken_keys.insert("k".into());
        for (id, stream, revision, position) in [(1, "venue", 6, 5), (2, "event", 0, 6)] {
            view.known_facts.insert(
                Uuid::from_u128(id),
                KnownFact {
                    stream: stream.into(),
                    revision,
                    position,
                },
            );
        }
        // Stale expected revisions and a taken key: a retry is answered without checking them.
        let requests = [
            keyed(request("venue", ExpectedRevision::Exact(5), &[1]), "k"),
            request("event", ExpectedRevision::NoStream, &[2]),
        ];
        let plan = plan_grouped(&requests, &[0..2], &view);
        assert_eq!(ok(&plan.outcomes[0]), appended(5, 5, 6));
        assert_eq!(ok(&plan.outcomes[1]), appended(6, 6, 0));
        assert!(plan.rows.is_empty());
        assert!(plan.idempotency.is_empty());
        assert_eq!(plan.head, 9);
    }

    #[test]
    fn a_taken_idempotency_key_on_one_member_refuses_the_group() {
        let mut view = LogView::default();
        view.taken_keys.insert("k".into());
        let requests = [
            request("venue", ExpectedRevision::NoStream, &[1]),
            keyed(request("event", ExpectedRevision::NoStream, &[2]), "k"),
        ];
        let plan = plan_grouped(&requests, &[0..2], &view);
        assert!(matches!(
            &plan.outcomes[0],
            Err(StoreError::IdempotencyKeyTaken { key }) if key == "k"
        ));
        assert_not_written(&plan.outcomes[1]);
        assert!(plan.rows.is_empty());
        assert!(plan.idempotency.is_empty());
    }

    #[test]
    fn an_accepted_groups_remembered_answer_names_the_groups_last_position() {
        let requests = [
            keyed(request("venue", ExpectedRevision::NoStream, &[1]), "k"),
            request("event", ExpectedRevision::NoStream, &[2, 3]),
        ];
        let plan = plan_grouped(&requests, &[0..2], &LogView::default());
        assert_eq!(ok(&plan.outcomes[0]), appended(1, 1, 0));
        assert_eq!(plan.idempotency[0].response.body, json!({ "position": 3 }));
    }

    #[test]
    fn units_cover_every_request_once_and_keep_groups_whole() {
        let cut = |len, groups: &[Range<usize>]| -> Vec<(Range<usize>, bool)> {
            units(len, groups)
                .into_iter()
                .map(|u| (u.range, u.atomic))
                .collect()
        };
        assert_eq!(
            cut(5, &[1..3]),
            [(0..1, false), (1..3, true), (3..4, false), (4..5, false)]
        );
        assert_eq!(cut(2, &[0..2]), [(0..2, true)]);
        assert_eq!(cut(2, &[]), [(0..1, false), (1..2, false)]);
        // Malformed ranges never lose or repeat a request.
        assert_eq!(
            cut(4, &[1..1, 1..3, 2..4, 3..9]),
            [(0..1, false), (1..3, true), (3..4, true)]
        );
    }

    #[test]
    fn an_empty_group_or_a_key_used_twice_in_a_group_is_invalid() {
        assert!(matches!(validate_group(&[]), Err(StoreError::Invalid(_))));
        let twice = [
            keyed(request("a", ExpectedRevision::Any, &[1]), "k"),
            keyed(request("b", ExpectedRevision::Any, &[2]), "k"),
        ];
        assert!(matches!(
            validate_group(&twice),
            Err(StoreError::Invalid(_))
        ));
        let unusable = [
            request("a", ExpectedRevision::Any, &[1]),
            request("b", ExpectedRevision::Any, &[]),
        ];
        assert!(matches!(
            validate_group(&unusable),
            Err(StoreError::Invalid(_))
        ));
        let fine = [
            keyed(request("a", ExpectedRevision::Any, &[1]), "k"),
            request("b", ExpectedRevision::Any, &[2]),
        ];
        assert!(validate_group(&fine).is_ok());
    }
}
