//! The AI job queue under leases: a claim is the holder's while its lease runs; a job whose
//! worker stopped renewing is taken over, and then only the new holder renews and finishes
//! it. On PostgreSQL, two stores over one database (two processes' worth) claiming at once
//! never take the same job.

use std::collections::HashSet;
use std::time::Duration;

use lumen_store::{AiJobOutcome, Origin, Store};

mod support;

use support::{copy_in, sample_path};

/// The sample's series analysed at once, in series `n` of its study.
fn series_uid(n: usize) -> String {
    format!("1.2.826.0.1.3680043.8.498.5100.{n}")
}

#[tokio::test]
async fn a_job_whose_lease_passed_is_taken_over_and_only_its_new_holder_finishes_it() {
    for backend in support::backends() {
        let Some(src) = sample_path() else { return };
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(backend.config(tmp.path())).await.expect("open");
        let got = store
            .ingest(
                copy_in(
                    &src,
                    Some(&series_uid(0)),
                    "1.2.826.0.1.3680043.8.498.5101",
                    false,
                ),
                Origin::Import,
            )
            .await
            .expect("ingest");
        let lease = Duration::from_millis(400);
        let first = store
            .claim_ai_job(Duration::ZERO, lease)
            .await
            .expect("claim")
            .expect("a waiting job");
        assert_eq!(
            (first.series_uid.as_str(), first.attempts),
            (series_uid(0).as_str(), 1)
        );
        // Held: nobody else gets it while the lease runs, and renewing keeps it.
        assert!(
            store
                .claim_ai_job(Duration::ZERO, lease)
                .await
                .expect("claim")
                .is_none()
        );
        assert!(store.renew_ai_job(&first, lease).await.expect("renew"));
        assert!(
            store
                .claim_ai_job(Duration::ZERO, lease)
                .await
                .expect("claim")
                .is_none()
        );
        // Its worker stops renewing: once the lease has passed the job is claimed again.
        tokio::time::sleep(lease + Duration::from_millis(200)).await;
        let second = store
            .claim_ai_job(Duration::ZERO, lease)
            .await
            .expect("claim")
            .expect("the job again");
        assert_eq!(second.series_uid, first.series_uid);
        assert_eq!(second.attempts, 2);
        assert_ne!(second.claim, first.claim);
        // The first worker, back, can neither renew nor finish it.
        assert!(
            !store.renew_ai_job(&first, lease).await.expect("renew"),
            "{}",
            backend.name()
        );
        assert!(
            !store
                .finish_ai_job(&first, AiJobOutcome::Skipped("late".into()))
                .await
                .expect("finish")
        );
        assert!(
            store
                .finish_ai_job(&second, AiJobOutcome::Skipped("not a chest CT".into()))
                .await
                .expect("finish")
        );
        let jobs = store.ai_jobs(&got.study_uid).await.expect("jobs");
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].state, "skipped", "{}", backend.name());
        assert_eq!(jobs[0].reason.as_deref(), Some("not a chest CT"));
    }
}

#[tokio::test]
async fn two_stores_on_one_postgresql_index_never_claim_the_same_job() {
    let Some(src) = sample_path() else { return };
    for backend in support::backends() {
        let Some((a, b, _dirs)) = support::two_stores(&backend, |_| {}).await else {
            continue;
        };
        const N: usize = 24;
        for n in 0..N {
            a.ingest(
                copy_in(
                    &src,
                    Some(&series_uid(n)),
                    &format!("{}.1", series_uid(n)),
                    false,
                ),
                Origin::Import,
            )
            .await
            .expect("ingest");
        }
        let (from_a, from_b) = support::claim_concurrently(&a, &b, |store: Store| async move {
            let job = store
                .claim_ai_job(Duration::ZERO, Duration::from_secs(60))
                .await
                .expect("claim");
            job.map(|j| j.series_uid).into_iter().collect::<Vec<_>>()
        })
        .await;
        let all: HashSet<&String> = from_a.iter().chain(&from_b).collect();
        assert_eq!(
            from_a.len() + from_b.len(),
            N,
            "a: {from_a:?}\nb: {from_b:?}"
        );
        assert_eq!(
            all.len(),
            N,
            "a job claimed twice: a {from_a:?}, b {from_b:?}"
        );
        eprintln!("claims: a {}, b {}", from_a.len(), from_b.len());
    }
}
