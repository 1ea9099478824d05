//! [`verify_log`]: the offline audit of a stored log. It checks the checkpoint's signature,
//! recomputes the whole tree from the entry bundles, and compares the root and every hash
//! tile with what is stored, naming the first thing that differs.

use tlog_tiles::Hash;

use crate::TILE_WIDTH;
use crate::log::Builder;
use crate::note::{NoteKeyError, open_checkpoint};
use crate::tiles::{
    self, BundleError, CHECKPOINT, MemoryStore, StoreError, TileStore, bundle_path, tile_path,
    tile_width,
};
use signed_note::Verifier;

/// A log that verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedLog {
    /// The origin of the checkpoint.
    pub origin: String,
    /// The number of entries.
    pub size: u64,
    /// The root hash.
    pub root: Hash,
}

/// Why a log does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The storage could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// There is no checkpoint.
    #[error("no checkpoint: the log is empty or its checkpoint was removed")]
    NoCheckpoint,
    /// The checkpoint is malformed, unsigned by the log's key, or its signature fails.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] NoteKeyError),
    /// A resource the checkpoint needs is absent.
    #[error("{0} is missing")]
    Missing(String),
    /// An entry bundle does not decode.
    #[error("{path} is malformed: {source}")]
    Bundle {
        /// The bundle's path.
        path: String,
        /// What was wrong.
        source: BundleError,
    },
    /// An entry bundle holds another number of entries than its path says.
    #[error("{path} holds {found} entries, {expected} expected (an entry was dropped or added)")]
    EntryCount {
        /// The bundle's path.
        path: String,
        /// The entries found.
        found: u64,
        /// The entries its width says.
        expected: u64,
    },
    /// The entries do not hash to the checkpoint's root.
    #[error(
        "the entries do not hash to the checkpoint's root (size {size}): an entry was altered, dropped or reordered{}",
        .first_difference.map(|i| format!(", first at entry {i} (hash tile {})", tile_path(0, i / 256, tile_width(0, i / 256, *.size)))).unwrap_or_default()
    )]
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
        /// The first entry whose leaf hash differs from the stored level-0 tile, if one does.
        first_difference: Option<u64>,
    },
    /// A hash tile differs from the hashes recomputed from the entries.
    #[error("hash tile {0} differs from the hashes recomputed from the entries (altered)")]
    TileMismatch(String),
    /// A tree computation failed.
    #[error("{0}")]
    Tree(String),
}

/// Verifies the log in `store` against the log key `log`: the checkpoint's signature, every
/// entry bundle, every hash tile and the root.
///
/// # Errors
///
/// The first problem found, as a [`VerifyError`] that says where.
pub fn verify_log<S: TileStore>(store: &S, log: &dyn Verifier) -> Result<VerifiedLog, VerifyError> {
    let bytes = store.read(CHECKPOINT)?.ok_or(VerifyError::NoCheckpoint)?;
    let cp = open_checkpoint(&bytes, log)?;
    let size = cp.size;

    // Recompute the tree from the entries, bundle by bundle.
    let mut rebuilt = MemoryStore::default();
    let mut rebuilt_size = 0u64;
    for index in 0..size.div_ceil(TILE_WIDTH) {
        let width = tile_width(0, index, size);
        let path = bundle_path(index, width);
        let data = store
            .read(&path)?
            .ok_or_else(|| VerifyError::Missing(path.clone()))?;
        let entries = tiles::decode_bundle(&data).map_err(|source| VerifyError::Bundle {
            path: path.clone(),
            source,
        })?;
        if entries.len() as u64 != width {
            return Err(VerifyError::EntryCount {
                path,
                found: entries.len() as u64,
                expected: width,
            });
        }
        let entries: Vec<Vec<u8>> = entries.into_iter().map(<[u8]>::to_vec).collect();
        let mut b = Builder::new(&rebuilt, rebuilt_size);
        b.append(&entries, false)
            .map_err(|e| VerifyError::Tree(e.to_string()))?;
        rebuilt_size = b.size;
        for (p, d) in b.into_writes() {
            rebuilt.files.insert(p, d);
        }
    }
    let root = Builder::new(&rebuilt, size)
        .root(size)
        .map_err(|e| VerifyError::Tree(e.to_string()))?;

    if root != cp.root {
        // Name the first entry whose hash differs from the stored level-0 tiles.
        let mut first_difference = None;
        for index in 0..size.div_ceil(TILE_WIDTH) {
            let path = tile_path(0, index, tile_width(0, index, size));
            let ours = rebuilt.files.get(&path);
            let stored = store.read(&path)?;
            if let (Some(ours), Some(stored)) = (ours, stored.as_ref())
                && let Some(i) = ours
                    .chunks(32)
                    .zip(stored.chunks(32))
                    .position(|(a, b)| a != b)
            {
                first_difference = Some(index * TILE_WIDTH + i as u64);
                break;
            }
        }
        return Err(VerifyError::RootMismatch {
            size,
            first_difference,
        });
    }

    for (level, index, width) in tiles::tiles_of(size) {
        let path = tile_path(level, index, width);
        let stored = store
            .read(&path)?
            .ok_or_else(|| VerifyError::Missing(path.clone()))?;
        if rebuilt.files.get(&path) != Some(&stored) {
            return Err(VerifyError::TileMismatch(path));
        }
    }
    Ok(VerifiedLog {
        origin: cp.origin,
        size,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::integrate;
    use crate::note::LogSigner;

    fn log_of(n: u64) -> (MemoryStore, LogSigner) {
        let signer = LogSigner::from_seed("lumen.example/a", [4; 32]).unwrap();
        let mut store = MemoryStore::default();
        let entries: Vec<Vec<u8>> = (0..n).map(|i| format!("entry {i}").into_bytes()).collect();
        for chunk in entries.chunks(100) {
            integrate(&mut store, &signer, chunk).unwrap();
        }
        (store, signer)
    }

    #[test]
    fn an_intact_log_verifies() {
        let (store, signer) = log_of(600);
        let v = verify_log(&store, &*signer.verifier()).unwrap();
        assert_eq!(v.size, 600);
    }

    fn flip(store: &mut MemoryStore, path: &str, at: usize) {
        let data = store.files.get_mut(path).unwrap();
        data[at] ^= 1;
    }

    #[test]
    fn tampering_is_detected_with_a_clear_reason() {
        let (intact, signer) = log_of(600);
        let v = signer.verifier();
        let verify = |s: &MemoryStore| verify_log(s, &*v).unwrap_err().to_string();

        // One byte of an entry in a bundle.
        let mut s = intact.clone();
        flip(&mut s, "tile/entries/001", 2 + 3);
        let e = verify(&s);
        assert!(e.contains("first at entry 256"), "{e}");

        // One byte of a hash tile.
        let mut s = intact.clone();
        flip(&mut s, "tile/0/000", 5);
        assert_eq!(
            verify(&s),
            "hash tile tile/0/000 differs from the hashes recomputed from the entries (altered)"
        );
        let mut s = intact.clone();
        flip(&mut s, "tile/1/000.p/2", 40);
        assert!(verify(&s).contains("tile/1/000.p/2"));

        // An entry dropped from a bundle.
        let mut s = intact.clone();
        let b = s.files.get("tile/entries/002.p/88").unwrap().clone();
        let mut entries = tiles::decode_bundle(&b).unwrap();
        entries.remove(3);
        let b = tiles::encode_bundle(entries.iter().copied()).unwrap();
        s.files.insert("tile/entries/002.p/88".into(), b);
        assert!(
            verify(&s).contains("holds 87 entries, 88 expected"),
            "{}",
            verify(&s)
        );

        // Two entries swapped.
        let mut s = intact.clone();
        let b = s.files.get("tile/entries/000").unwrap().clone();
        let mut entries = tiles::decode_bundle(&b).unwrap();
        entries.swap(10, 11);
        let b = tiles::encode_bundle(entries.iter().copied()).unwrap();
        s.files.insert("tile/entries/000".into(), b);
        assert!(verify(&s).contains("first at entry 10"), "{}", verify(&s));

        // The checkpoint's root changed (its signature no longer verifies).
        let mut s = intact.clone();
        let cp = String::from_utf8(s.files["checkpoint"].clone()).unwrap();
        let mut lines: Vec<&str> = cp.split('\n').collect();
        let other_root = base64::Engine::encode(&base64::prelude::BASE64_STANDARD, [0u8; 32]);
        lines[2] = &other_root;
        s.files
            .insert("checkpoint".into(), lines.join("\n").into_bytes());
        assert!(verify(&s).contains("does not verify"), "{}", verify(&s));

        // A checkpoint signed by another key, even over the right root.
        let mut s = intact.clone();
        let other = LogSigner::from_seed("lumen.example/a", [5; 32]).unwrap();
        let root = crate::log::tree_root(&s, 600).unwrap();
        s.files.insert(
            "checkpoint".into(),
            other.sign_checkpoint(600, root).unwrap(),
        );
        assert!(
            verify(&s).contains("carries no signature of lumen.example/a"),
            "{}",
            verify(&s)
        );

        // A missing tile and a missing checkpoint.
        let mut s = intact.clone();
        s.files.remove("tile/0/001");
        assert_eq!(verify(&s), "tile/0/001 is missing");
        let mut s = intact;
        s.files.remove("checkpoint");
        assert!(verify(&s).starts_with("no checkpoint"));
    }
}
