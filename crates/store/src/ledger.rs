//! The ledger's storage: its entries in the index (`ledger_entries`, migration 0010) and its
//! published files under `DATA/ledger/` in the C2SP tlog-tiles layout (`checkpoint`,
//! `tile/<L>/<N>`, `tile/entries/<N>`), plus the node's identity key, `DATA/ledger.key`
//! (outside `ledger/`, so that serving that directory statically never serves the key).
//!
//! Files are written whole or not at all (temporary file, fsync, rename, fsync of the
//! directory). The key is created with mode 0600, and a key readable by group or others is
//! refused, as TLS keys are.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lumen_ledger::cosign::Cosigner;
use lumen_ledger::tiles::Resource;
use lumen_ledger::{LogSigner, TileStore};
use sqlx::Row;

use crate::{Store, StoreError};

/// The directory of the published log, under the data directory.
const LEDGER_DIR: &str = "ledger";
/// The node's signing key, under the data directory.
const KEY_FILE: &str = "ledger.key";
/// The node's witness (cosigning) key, under the data directory.
const WITNESS_KEY_FILE: &str = "ledger-witness.key";

/// An entry to append, as the application layer made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLedgerEntry {
    /// The event type (`report.signed`, ...).
    pub kind: String,
    /// The event time, POSIX seconds.
    pub time: i64,
    /// `SHA-256(salt || canonical event)`.
    pub commitment: [u8; 32],
    /// The salt.
    pub salt: [u8; 32],
    /// The study concerned, if any (kept in the index only).
    pub study_uid: Option<String>,
    /// The event's fields as JSON (kept in the index only, to show and prove the entry).
    pub event: String,
}

/// An entry as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// Its index in the tree.
    pub seq: u64,
    /// The event type.
    pub kind: String,
    /// The event time, POSIX seconds.
    pub time: i64,
    /// The commitment.
    pub commitment: [u8; 32],
    /// The salt, unless it was deleted.
    pub salt: Option<[u8; 32]>,
    /// The study concerned, if any.
    pub study_uid: Option<String>,
    /// The event's fields as JSON.
    pub event: String,
}

/// Appends an entry within the caller's transaction; returns its index in the tree.
pub(crate) async fn insert_entry(
    conn: crate::db::Conn<'_>,
    e: &NewLedgerEntry,
) -> Result<u64, StoreError> {
    crate::db::with_conn!(conn, |conn, d| {
        let seq: i64 = sqlx::query_scalar(d.sql(
            "INSERT INTO ledger_entries (seq, kind, time, commitment, salt, study_uid, event)
         VALUES ((SELECT coalesce(max(seq) + 1, 0) FROM ledger_entries), ?, ?, ?, ?, ?, ?)
         RETURNING seq",
        ))
        .bind(&e.kind)
        .bind(e.time)
        .bind(e.commitment.as_slice())
        .bind(e.salt.as_slice())
        .bind(&e.study_uid)
        .bind(&e.event)
        .fetch_one(&mut *conn)
        .await?;
        u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("ledger seq {seq}")))
    })
}

fn row(r: &impl crate::db::IndexRow) -> Result<LedgerRow, StoreError> {
    let seq: i64 = r.col("seq")?;
    let commitment: Vec<u8> = r.col("commitment")?;
    let salt: Option<Vec<u8>> = r.col("salt")?;
    let bad = || StoreError::Corrupt(format!("ledger entry {seq}"));
    Ok(LedgerRow {
        seq: u64::try_from(seq).map_err(|_| bad())?,
        kind: r.col("kind")?,
        time: r.col("time")?,
        commitment: commitment.try_into().map_err(|_| bad())?,
        salt: match salt {
            Some(s) => Some(s.try_into().map_err(|_| bad())?),
            None => None,
        },
        study_uid: r.col("study_uid")?,
        event: r.col("event")?,
    })
}

impl Store {
    /// Appends a ledger entry in a transaction of its own (for events that have none, such
    /// as an export); returns its index in the tree.
    pub async fn append_ledger_entry(&self, e: &NewLedgerEntry) -> Result<u64, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let mut tx = pool.begin_with(d.begin()).await?;
            let seq = insert_entry((&mut *tx).into(), e).await?;
            tx.commit().await?;
            Ok(seq)
        })
    }

    /// Up to `limit` entries from index `from` on, in order.
    pub async fn ledger_entries(
        &self,
        from: u64,
        limit: u32,
    ) -> Result<Vec<LedgerRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql(
                "SELECT seq, kind, time, commitment, salt, study_uid, event FROM ledger_entries
             WHERE seq >= ? ORDER BY seq LIMIT ?",
            ))
            .bind(i64::try_from(from).unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.iter().map(row).collect()
        })
    }

    /// The entries recorded for a study, in order.
    pub async fn study_ledger_entries(
        &self,
        study_uid: &str,
    ) -> Result<Vec<LedgerRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql(
                "SELECT seq, kind, time, commitment, salt, study_uid, event FROM ledger_entries
             WHERE study_uid = ? ORDER BY seq",
            ))
            .bind(study_uid)
            .fetch_all(pool)
            .await?;
            rows.iter().map(row).collect()
        })
    }

    /// Forgets a study's entries (a PIPL Art. 47 deletion): their salts, and the index's own
    /// record of the study and the event each one commits to. The entries stay in the tree
    /// but can no longer be linked to the events, by anyone, this node included. Returns how
    /// many were forgotten.
    pub async fn forget_ledger_salts(&self, study_uid: &str) -> Result<u64, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let done = sqlx::query(d.sql(
                "UPDATE ledger_entries SET salt = NULL, study_uid = NULL, event = '{}'
             WHERE study_uid = ?",
            ))
            .bind(study_uid)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// What this node (as a witness) last cosigned of the log `origin`: size and root.
    pub async fn witness_state(&self, origin: &str) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let row = sqlx::query(d.sql("SELECT size, root FROM witness_state WHERE origin = ?"))
                .bind(origin)
                .fetch_optional(pool)
                .await?;
            let Some(r) = row else { return Ok(None) };
            let size: i64 = r.try_get(0)?;
            let root: Vec<u8> = r.try_get(1)?;
            let bad = || StoreError::Corrupt(format!("witness state of {origin}"));
            Ok(Some((
                u64::try_from(size).map_err(|_| bad())?,
                root.try_into().map_err(|_| bad())?,
            )))
        })
    }

    /// Records what this node (as a witness) cosigned of the log `origin`, before the
    /// cosignature is returned.
    pub async fn set_witness_state(
        &self,
        origin: &str,
        size: u64,
        root: &[u8; 32],
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(d.sql(
                "INSERT INTO witness_state (origin, size, root) VALUES (?, ?, ?)
             ON CONFLICT(origin) DO UPDATE SET size = excluded.size, root = excluded.root",
            ))
            .bind(origin)
            .bind(i64::try_from(size).map_err(|_| StoreError::Corrupt("witness size".into()))?)
            .bind(root.as_slice())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The published log of this archive.
    pub fn ledger_files(&self) -> LedgerFiles {
        LedgerFiles::new(self.data_dir())
    }
}

/// The files of the published log, `DATA/ledger/`, as a [`TileStore`]. It opens no index
/// and takes no lock, so `lumen ledger verify` and `lumen ledger key` work beside a running
/// server.
#[derive(Debug, Clone)]
pub struct LedgerFiles {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LedgerFiles {
    /// The log of the archive in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        LedgerFiles {
            root: data_dir.join(LEDGER_DIR),
        }
    }

    /// The directory (for messages).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of a C2SP path, or `None` for anything that is not one (`..`, other names).
    fn file(&self, path: &str) -> Option<PathBuf> {
        Resource::parse(path).map(|_| self.root.join(path))
    }

    /// Reads a published resource by its C2SP path (`checkpoint`, `tile/...`); `None` when
    /// absent or when `path` is not a C2SP path.
    pub fn read_resource(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(file) = self.file(path) else {
            return Ok(None);
        };
        match fs::read(&file) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// When the checkpoint was last written (its modification time, POSIX seconds); `None`
    /// when there is none.
    pub fn checkpoint_written(&self) -> Result<Option<u64>, StoreError> {
        match fs::metadata(self.root.join(lumen_ledger::tiles::CHECKPOINT)) {
            Ok(m) => Ok(m
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the temporary files an interrupted write left in `DATA/ledger/.tmp` (a
    /// crash between creating one and renaming it), all but this process's own; returns
    /// how many. For the start of the only writer (`lumen serve`, which holds the data
    /// directory's lock): never while another process may be writing the log.
    pub fn sweep_tmp(&self) -> Result<usize, StoreError> {
        let own = format!("{}-", std::process::id());
        let entries = match fs::read_dir(self.root.join(".tmp")) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && !entry.file_name().to_string_lossy().starts_with(&own)
            {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn write_atomic(&self, path: &str, data: &[u8]) -> Result<(), StoreError> {
        let dest = self
            .file(path)
            .ok_or_else(|| StoreError::Corrupt(format!("{path} is not a tlog-tiles path")))?;
        let dir = dest
            .parent()
            .ok_or_else(|| StoreError::Corrupt(format!("{path} has no directory")))?;
        fs::create_dir_all(dir)?;
        let tmp_dir = self.root.join(".tmp");
        fs::create_dir_all(&tmp_dir)?;
        let tmp = tmp_dir.join(format!(
            "{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            fs::rename(&tmp, &dest)?;
            File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        Ok(result?)
    }
}

impl TileStore for LedgerFiles {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, lumen_ledger::StoreError> {
        self.read_resource(path)
            .map_err(|e| lumen_ledger::StoreError(format!("{path}: {e}")))
    }

    fn write(&mut self, path: &str, data: &[u8]) -> Result<(), lumen_ledger::StoreError> {
        self.write_atomic(path, data)
            .map_err(|e| lumen_ledger::StoreError(format!("{path}: {e}")))
    }
}

/// The node's ledger signing key (`DATA/ledger.key`), created with mode 0600 under `name`
/// when absent. A key readable by group or others is refused.
pub fn ledger_key(data_dir: &Path, name: &str) -> Result<LogSigner, StoreError> {
    private_key(
        &data_dir.join(KEY_FILE),
        |seed| LogSigner::from_seed(name, seed).map(|k| (k.to_skey(), k)),
        LogSigner::from_skey,
    )
}

/// The node's witness (cosigning) key (`DATA/ledger-witness.key`), created with mode 0600
/// under `name` when absent: distinct from the log key, as C2SP tlog-cosignature asks.
pub fn witness_key(data_dir: &Path, name: &str) -> Result<Cosigner, StoreError> {
    private_key(
        &data_dir.join(WITNESS_KEY_FILE),
        |seed| Cosigner::from_seed(name, seed).map(|k| (k.to_skey(), k)),
        Cosigner::from_skey,
    )
}

fn private_key<K>(
    path: &Path,
    create: impl FnOnce([u8; 32]) -> Result<(String, K), lumen_ledger::NoteKeyError>,
    parse: impl FnOnce(&str) -> Result<K, lumen_ledger::NoteKeyError>,
) -> Result<K, StoreError> {
    let refuse = |why: String| StoreError::Io(std::io::Error::other(why));
    match fs::read_to_string(path) {
        Ok(text) => {
            check_private(path)?;
            parse(&text).map_err(|e| refuse(format!("key {}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path
                .parent()
                .ok_or_else(|| refuse(format!("key {} has no directory", path.display())))?;
            fs::create_dir_all(dir)?;
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| refuse(format!("no randomness: {e}")))?;
            let (skey, key) =
                create(seed).map_err(|e| refuse(format!("key {}: {e}", path.display())))?;
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(path)?;
            f.write_all(skey.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            File::open(dir)?.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the data directory has a ledger key already.
pub fn has_ledger_key(data_dir: &Path) -> bool {
    data_dir.join(KEY_FILE).exists()
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Io(std::io::Error::other(format!(
            "key {} is accessible by group or others (mode {mode:03o}); \
             run chmod 600 on it",
            path.display()
        ))));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_temp_files_are_swept_but_not_the_log() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut files = LedgerFiles::new(tmp.path());
        // Nothing to sweep in a new data directory.
        assert_eq!(files.sweep_tmp().expect("sweep"), 0);
        files.write("checkpoint", b"cp").expect("write");
        // Two files an interrupted writer (another, dead process) left, and one of ours.
        let dir = tmp.path().join("ledger/.tmp");
        fs::write(dir.join("4242-0"), b"half a tile").expect("leftover");
        fs::write(dir.join("4242-1"), b"").expect("leftover");
        let ours = dir.join(format!("{}-999", std::process::id()));
        fs::write(&ours, b"being written").expect("ours");
        assert_eq!(files.sweep_tmp().expect("sweep"), 2);
        let left: Vec<_> = fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(left, vec![ours]);
        // The published files are untouched.
        assert_eq!(
            files.read_resource("checkpoint").expect("read"),
            Some(b"cp".to_vec())
        );
    }
}
