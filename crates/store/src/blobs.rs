//! Object files on disk: written whole or not at all.
//!
//! Each object is written to `tmp/`, renamed into `objects/aa/bb/`, then the file and the
//! directory are fsynced (as garage's block writer does); the store answers the sender
//! only after these syncs and the index commit. The disk starts writing a file's bytes as
//! soon as they are written (`sync_file_range`), so the fsync has less left to wait for,
//! and concurrent writers into one directory share its fsync ([`DirSyncs`]).
//! Files the index never learned of (a crash between rename and commit) are removed by
//! [`Blobs::sweep`] at start-up.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// The object directory of an archive.
#[derive(Debug, Clone)]
pub(crate) struct Blobs {
    root: PathBuf,
    dir_syncs: Arc<DirSyncs>,
}

impl Blobs {
    /// Opens (creating if needed) the blob directories under `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(data_dir.join("objects"))?;
        fs::create_dir_all(data_dir.join("tmp"))?;
        Ok(Blobs {
            root: data_dir.to_path_buf(),
            dir_syncs: Arc::default(),
        })
    }

    /// The relative path of an object: one directory per series (fanned out by a hash of
    /// its UID), the file named by SOP Instance UID and content hash, so that a
    /// replacement never overwrites the file it replaces.
    pub(crate) fn relative_path(series_uid: &str, sop_uid: &str, sha256_hex: &str) -> String {
        let h = hex::encode(Sha256::digest(series_uid.as_bytes()));
        format!(
            "objects/{}/{}/{}-{}.dcm",
            &h[..2],
            &h[2..18],
            sop_uid,
            &sha256_hex[..16]
        )
    }

    /// The absolute path of a stored object.
    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Writes `bytes` to a new temporary file (not synced) and has the disk start writing
    /// them, before the object's name is known: ingest writes first, then parses and
    /// hashes the object while the disk works.
    pub(crate) fn write_tmp(&self, bytes: &[u8]) -> io::Result<TmpFile> {
        let path = tempfile_in(&self.root.join("tmp"))?;
        let written = (|| {
            let mut f = File::create(&path)?;
            f.write_all(bytes)?;
            start_writeback(&f);
            Ok(f)
        })();
        match written {
            Ok(file) => Ok(TmpFile { path, file }),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Removes a temporary file that will not be placed.
    pub(crate) fn discard(&self, tmp: TmpFile) {
        drop(tmp.file);
        let _ = fs::remove_file(&tmp.path);
    }

    /// Makes a placed file durable: its bytes, then its directory entry (none is owed for
    /// a file that was already in place). The directory's sync is shared with concurrent
    /// writers into the same directory.
    pub(crate) fn sync(&self, unsynced: Unsynced) -> io::Result<()> {
        // The directory's sync runs beside the file's: each waits on a disk flush.
        let dir = unsynced
            .new_entry
            .then(|| self.dir_syncs.start(&unsynced.dir, unsynced.dir_ticket));
        let file = unsynced.file.sync_data();
        let dir = dir.map_or(Ok(()), PendingDirSync::wait);
        file.and(dir)
    }

    /// Puts a temporary file in place at `relative` and returns the syncs still owed. A
    /// file already at `relative` with the same length holds the same bytes (the name
    /// carries the content hash): the temporary file goes, and the one in place is only
    /// synced again.
    pub(crate) fn place(&self, tmp: TmpFile, relative: &str, len: u64) -> io::Result<Unsynced> {
        let dest = self.root.join(relative);
        let result = (|| {
            let dir = dest
                .parent()
                .ok_or_else(|| io::Error::other("object path has no parent"))?
                .to_path_buf();
            self.create_dirs(&dir)?;
            if let Ok(f) = File::open(&dest)
                && f.metadata()?.len() == len
            {
                let _ = fs::remove_file(&tmp.path);
                return Ok(Unsynced {
                    file: f,
                    dir,
                    new_entry: false,
                    dir_ticket: 0,
                });
            }
            // The file is renamed into place before it is synced: no reader looks at a file
            // the index does not list, the index is answered only after the syncs, and a file
            // left unindexed by a crash is swept at the next start.
            fs::rename(&tmp.path, &dest)?;
            let dir_ticket = self.dir_syncs.renamed(&dir);
            Ok(Unsynced {
                file: tmp.file,
                dir,
                new_entry: true,
                dir_ticket,
            })
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp.path);
        }
        result
    }

    /// Creates an object directory and makes its new entries durable (each new directory's
    /// parent is synced), so that a power loss cannot orphan a whole series' directory.
    fn create_dirs(&self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        let mut created = Vec::new();
        let mut d = dir;
        while !d.is_dir() {
            created.push(d.to_path_buf());
            d = match d.parent() {
                Some(p) => p,
                None => break,
            };
        }
        fs::create_dir_all(dir)?;
        for c in created.iter().rev() {
            if let Some(parent) = c.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        Ok(())
    }

    /// Removes a stored object (after the index stopped pointing at it).
    pub(crate) fn remove(&self, relative: &str) -> io::Result<()> {
        match fs::remove_file(self.root.join(relative)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Deletes leftovers of interrupted writes: every temp file, and every object file
    /// that `known` (the index's paths) does not list. Returns how many were removed.
    pub(crate) fn sweep(&self, known: &HashSet<String>) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(self.root.join("tmp"))? {
            fs::remove_file(entry?.path())?;
            removed += 1;
        }
        let objects = self.root.join("objects");
        for a in fs::read_dir(&objects)? {
            let a = a?;
            if !a.file_type()?.is_dir() {
                continue;
            }
            for b in fs::read_dir(a.path())? {
                let b = b?;
                if !b.file_type()?.is_dir() {
                    continue;
                }
                for f in fs::read_dir(b.path())? {
                    let f = f?;
                    let rel = format!(
                        "objects/{}/{}/{}",
                        a.file_name().to_string_lossy(),
                        b.file_name().to_string_lossy(),
                        f.file_name().to_string_lossy()
                    );
                    if !known.contains(&rel) {
                        fs::remove_file(f.path())?;
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
    }
}

/// A written temporary file, not yet named or synced.
pub(crate) struct TmpFile {
    path: PathBuf,
    file: File,
}

/// An object file in place whose bytes and directory entry may not be on disk yet.
pub(crate) struct Unsynced {
    file: File,
    dir: PathBuf,
    new_entry: bool,
    /// The directory's rename count when this file was renamed into it.
    dir_ticket: u64,
}

/// Directory syncs shared between concurrent writers, run on a thread of their own beside
/// the file's sync. A sync that starts after a file was renamed into a directory makes that
/// rename durable too, so a writer whose rename an already finished sync covered has
/// nothing left to do: several associations sending one series (one directory) pay one
/// directory sync between them, not one each.
#[derive(Debug, Default)]
pub(crate) struct DirSyncs {
    table: Arc<DirTable>,
    /// The syncing thread's queue, started with the first sync (none if it could not be).
    worker: std::sync::OnceLock<Option<std::sync::mpsc::Sender<DirJob>>>,
}

/// A directory sync asked of the syncing thread: the directory, the rename's ticket, and
/// where the outcome goes.
type DirJob = (PathBuf, u64, std::sync::mpsc::SyncSender<io::Result<()>>);

/// A directory sync under way.
pub(crate) enum PendingDirSync {
    /// Finished already (covered by an earlier sync, or run here).
    Done(io::Result<()>),
    /// Running on the syncing thread.
    Running(std::sync::mpsc::Receiver<io::Result<()>>),
}

impl PendingDirSync {
    /// Waits for the outcome.
    pub(crate) fn wait(self) -> io::Result<()> {
        match self {
            PendingDirSync::Done(r) => r,
            PendingDirSync::Running(rx) => rx
                .recv()
                .unwrap_or_else(|_| Err(io::Error::other("the directory sync thread stopped"))),
        }
    }
}

/// Each directory's renames and syncs.
#[derive(Debug, Default)]
struct DirTable {
    dirs: Mutex<HashMap<PathBuf, Arc<DirState>>>,
    /// Directory syncs made so far.
    performed: std::sync::atomic::AtomicU64,
}

/// One directory's renames and syncs.
#[derive(Debug, Default)]
struct DirState {
    /// Renames into the directory so far (each writer's ticket).
    renames: std::sync::atomic::AtomicU64,
    /// Held while syncing: the highest ticket a finished sync covers.
    synced: Mutex<u64>,
}

impl DirSyncs {
    /// Records a rename into `dir` (after it happened) and returns its ticket.
    fn renamed(&self, dir: &Path) -> u64 {
        self.table.renamed(dir)
    }

    /// Starts making the rename with `ticket` durable on the syncing thread, so that it
    /// runs beside the file's own sync; [`PendingDirSync::wait`] gives the outcome.
    pub(crate) fn start(&self, dir: &Path, ticket: u64) -> PendingDirSync {
        let worker = self.worker.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<DirJob>();
            let table = self.table.clone();
            std::thread::Builder::new()
                .name("lumen-dir-sync".into())
                .spawn(move || {
                    for (dir, ticket, reply) in rx {
                        let _ = reply.send(table.sync(&dir, ticket));
                    }
                })
                .ok()
                .map(|_| tx)
        });
        let (reply, outcome) = std::sync::mpsc::sync_channel(1);
        match worker {
            Some(tx) if tx.send((dir.to_path_buf(), ticket, reply)).is_ok() => {
                PendingDirSync::Running(outcome)
            }
            _ => PendingDirSync::Done(self.table.sync(dir, ticket)),
        }
    }
}

impl DirTable {
    /// Directories remembered at most; past that the table starts again (forgetting only
    /// costs a sync that could have been shared).
    const MAX_DIRS: usize = 4096;

    fn state(&self, dir: &Path) -> Option<Arc<DirState>> {
        let mut dirs = self.dirs.lock().ok()?;
        if dirs.len() >= Self::MAX_DIRS && !dirs.contains_key(dir) {
            dirs.clear();
        }
        Some(dirs.entry(dir.to_path_buf()).or_default().clone())
    }

    /// Records a rename into `dir` (after it happened) and returns its ticket.
    fn renamed(&self, dir: &Path) -> u64 {
        self.state(dir).map_or(0, |s| {
            s.renames
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                .wrapping_add(1)
        })
    }

    /// Makes the rename with `ticket` durable: returns at once if a sync that started
    /// after it has finished, else syncs the directory (covering every rename so far).
    fn sync(&self, dir: &Path, ticket: u64) -> io::Result<()> {
        let Some(state) = self.state(dir) else {
            return sync_dir(dir);
        };
        let mut synced = match state.synced.lock() {
            Ok(g) => g,
            Err(_) => return sync_dir(dir),
        };
        // A table started again since the rename has no record of it: sync.
        if ticket != 0 && *synced >= ticket {
            return Ok(());
        }
        let covers = state.renames.load(std::sync::atomic::Ordering::SeqCst);
        sync_dir(dir)?;
        self.performed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *synced = (*synced).max(covers);
        Ok(())
    }
}

/// Asks the kernel to start writing a file's dirty pages to disk now, without waiting, so
/// that the fsync that follows (after parsing and naming the object) finds less to do.
/// Only a hint: where it is unsupported nothing happens, and the fsync still decides.
fn start_writeback(f: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: sync_file_range only reads its arguments; the descriptor is open for the
        // duration of the call (borrowed from `f`).
        unsafe {
            libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = f;
}

/// Makes a directory's entries durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub(crate) fn tempfile_in(dir: &Path) -> io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!("{}-{n}.part", std::process::id())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_directory_sync_covers_every_rename_before_it() {
        let d = tempfile::tempdir().unwrap();
        let syncs = DirTable::default();
        let t1 = syncs.renamed(d.path());
        let t2 = syncs.renamed(d.path());
        // The second writer syncs first: its sync covers the first writer's rename too.
        syncs.sync(d.path(), t2).unwrap();
        syncs.sync(d.path(), t1).unwrap();
        assert_eq!(syncs.performed.load(Ordering::Relaxed), 1);
        // A rename after that sync needs a sync of its own.
        let t3 = syncs.renamed(d.path());
        syncs.sync(d.path(), t3).unwrap();
        assert_eq!(syncs.performed.load(Ordering::Relaxed), 2);
        // Another directory is synced on its own.
        let e = tempfile::tempdir().unwrap();
        let u1 = syncs.renamed(e.path());
        syncs.sync(e.path(), u1).unwrap();
        assert_eq!(syncs.performed.load(Ordering::Relaxed), 3);
        // A ticket of 0 (no record of the rename) always syncs.
        syncs.sync(d.path(), 0).unwrap();
        assert_eq!(syncs.performed.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_forgotten_directory_is_synced_again() {
        let d = tempfile::tempdir().unwrap();
        let syncs = DirTable::default();
        let t = syncs.renamed(d.path());
        // The table starts again (as when it holds MAX_DIRS directories).
        syncs.dirs.lock().unwrap().clear();
        syncs.sync(d.path(), t).unwrap();
        assert_eq!(syncs.performed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn directory_syncs_run_on_their_own_thread_and_are_shared() {
        let d = tempfile::tempdir().unwrap();
        let syncs = DirSyncs::default();
        let t1 = syncs.renamed(d.path());
        let t2 = syncs.renamed(d.path());
        let a = syncs.start(d.path(), t1);
        a.wait().unwrap();
        syncs.start(d.path(), t2).wait().unwrap();
        assert_eq!(syncs.table.performed.load(Ordering::Relaxed), 1);
        // A directory that is gone is an error, not a hang.
        let gone = d.path().join("gone");
        let t = syncs.renamed(&gone);
        assert!(syncs.start(&gone, t).wait().is_err());
    }

    #[test]
    fn objects_are_placed_whole_and_refused_ones_leave_nothing() {
        let d = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(d.path()).unwrap();
        let rel = Blobs::relative_path("1.2.3", "1.2.3.4", &"ab".repeat(32));
        let tmp = blobs.write_tmp(b"object bytes").unwrap();
        let placed = blobs.place(tmp, &rel, 12).unwrap();
        blobs.sync(placed).unwrap();
        assert_eq!(fs::read(blobs.path(&rel)).unwrap(), b"object bytes");
        // The same bytes again: the file in place is kept, the new temporary file goes.
        let again = blobs.write_tmp(b"object bytes").unwrap();
        let placed = blobs.place(again, &rel, 12).unwrap();
        assert!(!placed.new_entry);
        blobs.sync(placed).unwrap();
        // A refused object's temporary file is removed.
        let refused = blobs.write_tmp(b"not dicom").unwrap();
        blobs.discard(refused);
        assert_eq!(fs::read_dir(d.path().join("tmp")).unwrap().count(), 0);
    }
}
