//! Registrations across batches, on every engine: a batch keeps its registrations in memory and
//! writes them at its end, so what one batch wrote must be what the next one reads.

#[allow(
    dead_code,
    reason = "this binary uses the builders, not the projector scenarios"
)]
mod common;

use common::{
    Backend, append, cancelled, confirmed, details, project_until, published_event, seats,
};
use marquee_domain::RegistrationId;
use uuid::Uuid;

/// Each step is projected on its own, so each is at least one batch of its own.
async fn repeated_confirmations_and_cancellations_count_once_across_batches(backend: Backend) {
    let store = backend.store.clone();
    let read = backend.read_models().await;
    let f = published_event(&store).await;
    let stream = f.event.stream();
    let (r1, r2, r3) = (
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
        RegistrationId(Uuid::now_v7()),
    );

    // One batch: a confirmation repeated within it counts once.
    let first = append(
        &store,
        &stream,
        &[
            confirmed(r1, f.a, 3),
            confirmed(r2, f.a, 2),
            confirmed(r1, f.a, 3),
        ],
    )
    .await;
    project_until(store.clone(), &read, first).await;
    assert_eq!(seats(&details(&read, f.event).await, f.a), (30, 5, 25));

    // The next batch: cancelling a registration of the previous batch frees its seats once;
    // repeating the confirmation of a stored (or of a cancelled) registration counts nothing,
    // and cancelling one never confirmed frees nothing.
    let second = append(
        &store,
        &stream,
        &[
            cancelled(r1, f.a, 3),
            cancelled(r1, f.a, 3),
            confirmed(r2, f.a, 2),
            confirmed(r1, f.a, 3),
            cancelled(r3, f.a, 4),
        ],
    )
    .await;
    project_until(store.clone(), &read, second).await;
    assert_eq!(seats(&details(&read, f.event).await, f.a), (30, 2, 28));

    // Later batches read what the second wrote: r1 stays cancelled, r2 is still confirmed.
    let third = append(&store, &stream, &[cancelled(r1, f.a, 3)]).await;
    project_until(store.clone(), &read, third).await;
    assert_eq!(seats(&details(&read, f.event).await, f.a), (30, 2, 28));
    let fourth = append(&store, &stream, &[cancelled(r2, f.a, 2)]).await;
    project_until(store.clone(), &read, fourth).await;
    let d = details(&read, f.event).await;
    assert_eq!(seats(&d, f.a), (30, 0, 30));
    assert_eq!((d.event.confirmed, d.event.available), (0, 50));
}

#[tokio::test]
async fn repeated_confirmations_and_cancellations_count_once_across_batches_in_memory() {
    repeated_confirmations_and_cancellations_count_once_across_batches(Backend::memory().await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_confirmations_and_cancellations_count_once_across_batches_on_sqlite() {
    repeated_confirmations_and_cancellations_count_once_across_batches(
        Backend::sqlite_file().await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_confirmations_and_cancellations_count_once_across_batches_on_postgres() {
    repeated_confirmations_and_cancellations_count_once_across_batches(Backend::postgres().await)
        .await;
}
