//! The planning step of an append batch: given what the log already holds, decide for every
//! request whether it is accepted, and which rows (positions, revisions) it writes.
//!
//! Pure and synchronous on purpose: the three backends share it, so the expected-revision,
//! duplicate-fact-id and idempotency-key rules live in exactly one place and are unit-tested here
//! without a database. A backend loads a [`LogView`] inside its write transaction, calls
//! [`plan_batch`], writes [`BatchPlan::rows`] and [`BatchPlan::idempotency`], and commits.

use std::collections::{HashMap, HashSet};

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
    /// One answer per request, in request order.
    pub outcomes: Vec<Result<Appended, StoreError>>,
    /// The highest position after the batch.
    pub head: u64,
}

/// The remembered answer of an append names the append's last position, which only the batch
/// plan knows: it goes into the body's `position` member when the body is a JSON object.
fn with_position(write: &IdempotencyWrite, last_position: u64) -> IdempotencyWrite {
    let mut write = write.clone();
    if let serde_json::Value::Object(body) = &mut write.response.body {
        body.insert("position".to_owned(), last_position.into());
    }
    write
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
pub(crate) fn plan_batch<'a>(requests: &'a [AppendRequest], view: &LogView) -> BatchPlan<'a> {
    let mut rows: Vec<PlannedRow<'a>> = Vec::new();
    let mut idempotency = Vec::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut head = view.head;
    // What earlier accepted requests of this batch did, layered over `view`.
    let mut revisions: HashMap<&'a str, u64> = HashMap::new();
    let mut written: HashMap<Uuid, KnownFact> = HashMap::new();
    let mut keys: HashSet<&'a str> = HashSet::new();

    for request in requests {
        if let Err(e) = validate(request) {
            outcomes.push(Err(e));
            continue;
        }
        let stream = request.stream.as_str();

        // Split into already-stored facts and new ones (deduplicating within the request too).
        let mut known_positions: Vec<(u64, u64)> = Vec::new(); // (position, revision)
        let mut new_facts: Vec<&NewFact> = Vec::new();
        let mut seen_here: HashSet<Uuid> = HashSet::new();
        for fact in &request.facts {
            if let Some(k) = view
                .known_facts
                .get(&fact.fact_id)
                .or_else(|| written.get(&fact.fact_id))
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
            outcomes.push(Ok(Appended {
                first_position: first,
                last_position: last,
                revision,
            }));
            continue;
        }

        if let Some(write) = &request.idempotency
            && (view.taken_keys.contains(&write.key) || keys.contains(write.key.as_str()))
        {
            outcomes.push(Err(StoreError::IdempotencyKeyTaken {
                key: write.key.clone(),
            }));
            continue;
        }

        let current = revisions
            .get(stream)
            .copied()
            .or_else(|| view.stream_revisions.get(stream).copied());
        let matches = match request.expected {
            ExpectedRevision::Any => true,
            ExpectedRevision::NoStream => current.is_none(),
            ExpectedRevision::Exact(r) => current == Some(r),
        };
        if !matches {
            outcomes.push(Err(StoreError::WrongExpectedRevision {
                stream: request.stream.clone(),
                expected: request.expected,
                actual: current,
            }));
            continue;
        }

        let mut revision = current.map_or(0, |r| r + 1);
        let first_new = head + 1;
        for fact in new_facts {
            head += 1;
            rows.push(PlannedRow {
                position: head,
                stream,
                revision,
                fact,
            });
            written.insert(
                fact.fact_id,
                KnownFact {
                    stream: request.stream.clone(),
                    revision,
                    position: head,
                },
            );
            revision += 1;
        }
        let last_revision = revision - 1;
        revisions.insert(stream, last_revision);
        if let Some(write) = &request.idempotency {
            keys.insert(write.key.as_str());
            idempotency.push(with_position(write, head));
        }
        let first = known_positions
            .iter()
            .map(|(p, _)| *p)
            .fold(first_new, u64::min);
        outcomes.push(Ok(Appended {
            first_position: first,
            last_position: head,
            revision: last_revision,
        }));
    }

    BatchPlan {
        rows,
        idempotency,
        outcomes,
        head,
    }
}

#[cfg(test)]
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
}
