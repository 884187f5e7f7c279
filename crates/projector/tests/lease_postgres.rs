//! The projector lease's fencing, on Postgres (`DATABASE_URL`): a projector whose lease was
//! taken over writes nothing, even before its own renewal would notice, and resumes once the
//! lease is free again.

#[allow(
    dead_code,
    reason = "this binary uses the builders, not the shared scenarios"
)]
mod common;

use std::time::Duration;

use common::{append, confirmed, details, published_event, seats};
use marquee_domain::RegistrationId;
use marquee_projector::{LeaseConfig, Projector, ReadModels};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_whose_lease_was_taken_over_writes_nothing_postgres() {
    let db = marquee_store::testing::PgTestDb::create().await;
    let store = marquee_store::connect(&db.url).await.expect("store");
    let read = ReadModels::connect(&db.url).await.expect("read models");
    let admin = sqlx::PgPool::connect(&db.url).await.expect("admin pool");

    // Renewal so rare that only the fencing check inside each batch can stop it in time.
    let lease = LeaseConfig {
        ttl: Duration::from_secs(60),
        renew_every: Duration::from_secs(30),
        poll_every: Duration::from_millis(50),
        ..LeaseConfig::named("a")
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(
        Projector::new(store.clone(), read.clone())
            .with_lease(lease)
            .run(async move {
                let _ = stopped.await;
            }),
    );
    let f = published_event(&store).await;
    assert!(
        read.wait_for(f.position, Duration::from_secs(20))
            .await
            .expect("wait")
    );
    assert_eq!(
        read.lease_holder()
            .await
            .expect("lease")
            .expect("held")
            .holder,
        "a"
    );

    // Another process takes the lease over while this one still believes it holds it.
    sqlx::query("UPDATE projector_leases SET holder = 'thief'")
        .execute(&admin)
        .await
        .expect("steal the lease");
    let stolen_at = append(
        &store,
        &f.event.stream(),
        &[confirmed(RegistrationId(Uuid::now_v7()), f.a, 2)],
    )
    .await;
    assert!(
        !read
            .wait_for(stolen_at, Duration::from_millis(500))
            .await
            .expect("wait"),
        "a projector without the lease applied a fact"
    );
    assert_eq!(
        read.applied_position().await.expect("checkpoint"),
        f.position
    );
    assert_eq!(seats(&details(&read, f.event).await, f.a), (30, 0, 30));
    let holder = read.lease_holder().await.expect("lease").expect("held");
    assert_eq!(holder.holder, "thief");
    assert!(!holder.expired);

    // The thief goes away cleanly: the projector takes the lease back and catches up.
    sqlx::query("DELETE FROM projector_leases")
        .execute(&admin)
        .await
        .expect("release the lease");
    assert!(
        read.wait_for(stolen_at, Duration::from_secs(20))
            .await
            .expect("wait")
    );
    assert_eq!(seats(&details(&read, f.event).await, f.a), (30, 2, 28));
    assert_eq!(
        read.lease_holder()
            .await
            .expect("lease")
            .expect("held")
            .holder,
        "a"
    );

    let _ = stop.send(());
    task.await.expect("task").expect("stops cleanly");
    assert_eq!(read.lease_holder().await.expect("lease"), None);
    admin.close().await;
}
