//! Object files on disk: written whole or not at all.
//!
//! Each object is written to `tmp/`, renamed into `objects/aa/bb/`, then the file and the
//! directory are fsynced, before the index learns of it (as garage's block writer does).
//! Files the index never learned of (a crash between rename and commit) are removed by
//! [`Blobs::sweep`] at start-up.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The object directory of an archive.
#[derive(Debug, Clone)]
pub(crate) struct Blobs {
    root: PathBuf,
}

impl Blobs {
    /// Opens (creating if needed) the blob directories under `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(data_dir.join("objects"))?;
        fs::create_dir_all(data_dir.join("tmp"))?;
        Ok(Blobs {
            root: data_dir.to_path_buf(),
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

    /// Writes `bytes` durably at `relative`: temp file, fsync, rename, fsync directory.
    pub(crate) fn write(&self, relative: &str, bytes: &[u8]) -> io::Result<()> {
        let dest = self.root.join(relative);
        let dir = dest
            .parent()
            .ok_or_else(|| io::Error::other("object path has no parent"))?;
        fs::create_dir_all(dir)?;
        let tmp = tempfile_in(&self.root.join("tmp"))?;
        // The file is renamed into place before it is synced: both syncs then ride on one
        // journal commit (on ext4 and XFS the directory sync finds nothing left to do),
        // where sync-then-rename needs two. This is as safe: no reader looks at a file the
        // index does not list, the index commits only after both syncs, and a file left
        // unindexed by a crash is swept at the next start.
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            fs::rename(&tmp, &dest)?;
            f.sync_all()?;
            File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            // A renamed but unsynced file is not indexed: the next start sweeps it.
            let _ = fs::remove_file(&tmp);
        }
        result
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

fn tempfile_in(dir: &Path) -> io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!("{}-{n}.part", std::process::id())))
}
