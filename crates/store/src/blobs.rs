//! Object files on disk: written whole or not at all.
//!
//! Each object is written to `tmp/`, renamed into `objects/aa/bb/`, then the file and the
//! directory are fsynced (as garage's block writer does); the store answers the sender
//! only after these syncs and the index commit.
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

    /// Writes `bytes` at `relative` (temp file, then rename into place) and returns the
    /// syncs still owed: the caller runs them, possibly beside the index commit, and
    /// answers nobody before they are done. A file already at `relative` holds the same
    /// bytes (the name carries the content hash), so it is only synced again, not rewritten.
    pub(crate) fn write_unsynced(&self, relative: &str, bytes: &[u8]) -> io::Result<Unsynced> {
        let dest = self.root.join(relative);
        let dir = dest
            .parent()
            .ok_or_else(|| io::Error::other("object path has no parent"))?
            .to_path_buf();
        self.create_dirs(&dir)?;
        if let Ok(f) = File::open(&dest)
            && f.metadata()?.len() == bytes.len() as u64
        {
            return Ok(Unsynced {
                file: f,
                dir,
                new_entry: false,
            });
        }
        let tmp = tempfile_in(&self.root.join("tmp"))?;
        // The file is renamed into place before it is synced: no reader looks at a file
        // the index does not list, the index is answered only after the syncs, and a file
        // left unindexed by a crash is swept at the next start.
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            fs::rename(&tmp, &dest)?;
            Ok(f)
        })();
        match result {
            Ok(file) => Ok(Unsynced {
                file,
                dir,
                new_entry: true,
            }),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
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

/// An object file in place whose bytes and directory entry may not be on disk yet.
pub(crate) struct Unsynced {
    file: File,
    dir: PathBuf,
    new_entry: bool,
}

impl Unsynced {
    /// Flushes the file's bytes (and size) to disk, then its directory entry (none is owed
    /// for a file that was already in place).
    pub(crate) fn sync(self) -> io::Result<()> {
        self.file.sync_data()?;
        if self.new_entry {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn tempfile_in(dir: &Path) -> io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!("{}-{n}.part", std::process::id())))
}
