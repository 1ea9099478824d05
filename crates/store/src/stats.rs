//! What operations monitoring reads of the archive: queue depths, counts and the
//! connection pool, each read from a table or an index (no scan of the archive), and a
//! readiness check of the object storage (the data directory or the bucket).

use std::io::Write;

use crate::{Store, StoreError};

/// Gauges of the archive at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// AI jobs per state (`waiting`, `running`, `done`, `failed`, `skipped`).
    pub ai_jobs: Vec<(String, i64)>,
    /// Routing outbox rows per state (`pending`, `failed`).
    pub outbox: Vec<(String, i64)>,
    /// Studies in the archive.
    pub studies: i64,
    /// Ledger entries recorded.
    pub ledger_entries: i64,
    /// Connections of the read pool: open, and idle among them.
    pub pool_open: u32,
    /// Idle connections of the read pool.
    pub pool_idle: u32,
    /// Failed requests to the object storage bucket since the store was opened (always 0
    /// for files).
    pub object_store_errors: u64,
}

impl Store {
    /// Queue depths, counts and pool use, for `/metrics`.
    pub async fn gauges(&self) -> Result<Gauges, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let ai_jobs: Vec<(String, i64)> =
                sqlx::query_as("SELECT state, count(*) FROM ai_jobs GROUP BY state ORDER BY state")
                    .fetch_all(pool)
                    .await?;
            let outbox: Vec<(String, i64)> =
                sqlx::query_as("SELECT state, count(*) FROM outbox GROUP BY state ORDER BY state")
                    .fetch_all(pool)
                    .await?;
            let studies: Option<i64> =
                sqlx::query_scalar(d.sql("SELECT n FROM index_counts WHERE name = 'studies'"))
                    .fetch_optional(pool)
                    .await?;
            // The entries' primary key: max is read from the index's last row.
            let ledger_entries: Option<i64> =
                sqlx::query_scalar(d.sql("SELECT max(seq) + 1 FROM ledger_entries"))
                    .fetch_one(pool)
                    .await?;
            Ok(Gauges {
                ai_jobs,
                outbox,
                studies: studies.unwrap_or(0),
                ledger_entries: ledger_entries.unwrap_or(0),
                pool_open: self.pools.reader_size(),
                pool_idle: u32::try_from(self.pools.reader_idle()).unwrap_or(u32::MAX),
                object_store_errors: match &self.objects {
                    crate::Objects::S3(bucket) => bucket.error_count(),
                    crate::Objects::Files(_) => 0,
                },
            })
        })
    }

    /// Whether objects can be stored: the index answers and a file can be written, synced
    /// and removed in the data directory's temporary folder, or, with a bucket, a small
    /// object can be put, read back and deleted there.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        self.ping().await?;
        if let crate::Objects::S3(bucket) = &self.objects {
            return bucket.probe().await;
        }
        let dir = self.config.data_dir.join("tmp");
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            // A `.part` name, so that a crash in between leaves a file the start-up sweep
            // of temporary files removes.
            let path = crate::blobs::tempfile_in(&dir)?;
            let written = (|| {
                let mut f = std::fs::File::create(&path)?;
                f.write_all(b"ready")?;
                f.sync_data()
            })();
            let removed = std::fs::remove_file(&path);
            written.and(removed)
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))??;
        Ok(())
    }
}
