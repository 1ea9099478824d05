//! The log itself: integrating new entries into hash tiles and entry bundles, the tree's
//! root, and RFC 9162 inclusion and consistency proofs read from the tiles.
//!
//! The hashes to store for each new entry, the root and the proofs come from `tlog_tiles`
//! (Go's `sumdb/tlog`), whose stored-hash numbering is mapped here onto C2SP tiles of height 8:
//! a tile at level `L` holds the hashes of tree level `8L`, and the levels in between are
//! recomputed from them.

use std::collections::BTreeMap;

use tlog_tiles::{Hash, HashReader, Tile};

use crate::note::{LogSigner, open_checkpoint};
use crate::tiles::{
    self, BundleError, CHECKPOINT, StoreError, TileStore, bundle_path, tile_path, tile_width,
};
use crate::{TILE_HEIGHT, TILE_WIDTH};

/// Why the log could not be read, extended or proved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A tile or bundle the tree needs is absent.
    #[error("{0} is missing")]
    Missing(String),
    /// A stored resource is not what the log wrote.
    #[error("{0}")]
    Corrupt(String),
    /// An entry bundle could not be decoded or written.
    #[error("{path}: {source}")]
    Bundle {
        /// The bundle's path.
        path: String,
        /// What was wrong.
        source: BundleError,
    },
    /// The checkpoint could not be signed or read.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A proof or tree computation failed (an index outside the tree, an invalid proof).
    #[error("{0}")]
    Tree(String),
}

impl From<tlog_tiles::Error> for LogError {
    fn from(e: tlog_tiles::Error) -> Self {
        LogError::Tree(e.to_string())
    }
}

/// What an integration produced.
#[derive(Debug, Clone)]
pub struct Integrated {
    /// The tree size before.
    pub old_size: u64,
    /// The tree size now.
    pub size: u64,
    /// The new root hash.
    pub root: Hash,
    /// The signed checkpoint written at `checkpoint`.
    pub checkpoint: Vec<u8>,
}

/// Appends `entries` to the log in `store` and publishes a checkpoint signed by `signer`
/// (origin: the signer's name).
///
/// The current checkpoint is read and its signature checked first, and the stored tiles must
/// hash to its root: a log is only extended from a state it signed. Tiles and bundles are
/// written before the checkpoint, so a reader never sees a checkpoint whose tiles are absent;
/// if the writer stops between the two, integrating the same entries again rewrites identical
/// tiles.
///
/// # Errors
///
/// Storage failures, a checkpoint not signed by `signer`, stored tiles that do not match it,
/// an entry longer than 65,535 bytes.
pub fn integrate<S: TileStore>(
    store: &mut S,
    signer: &LogSigner,
    entries: &[Vec<u8>],
) -> Result<Integrated, LogError> {
    let (old_size, old_root) = match store.read(CHECKPOINT)? {
        None => (0, tlog_tiles::EMPTY_HASH),
        Some(bytes) => {
            let cp = open_checkpoint(&bytes, &*signer.verifier())
                .map_err(|e| LogError::Checkpoint(e.to_string()))?;
            (cp.size, cp.root)
        }
    };
    let mut builder = Builder::new(&*store, old_size);
    if builder.root(old_size)? != old_root {
        return Err(LogError::Corrupt(
            "the stored tiles do not hash to the checkpoint's root".into(),
        ));
    }
    builder.append(entries, true)?;
    let size = builder.size;
    let root = builder.root(size)?;
    let writes = builder.into_writes();
    for (path, data) in writes {
        store.write(&path, &data)?;
    }
    let checkpoint = signer
        .sign_checkpoint(size, root)
        .map_err(|e| LogError::Checkpoint(e.to_string()))?;
    store.write(CHECKPOINT, &checkpoint)?;
    Ok(Integrated {
        old_size,
        size,
        root,
        checkpoint,
    })
}

/// The root hash of the tree of the first `size` entries, read from the tiles.
///
/// # Errors
///
/// Missing or malformed tiles.
pub fn tree_root<S: TileStore>(store: &S, size: u64) -> Result<Hash, LogError> {
    Builder::new(store, size).root(size)
}

/// The RFC 9162 inclusion proof (audit path, leaf level first) of entry `index` in the tree
/// of `size` entries.
///
/// # Errors
///
/// `index >= size`, missing or malformed tiles.
pub fn inclusion_proof<S: TileStore>(
    store: &S,
    size: u64,
    index: u64,
) -> Result<Vec<Hash>, LogError> {
    if index >= size {
        return Err(LogError::Tree(format!(
            "entry {index} is not in a tree of {size} entries"
        )));
    }
    Ok(tlog_tiles::prove_record(
        size,
        index,
        &Builder::new(store, size),
    )?)
}

/// The RFC 9162 consistency proof from the tree of `old_size` entries to the tree of `size`
/// (empty when `old_size` is 0 or equals `size`).
///
/// # Errors
///
/// `old_size > size`, missing or malformed tiles.
pub fn consistency_proof<S: TileStore>(
    store: &S,
    old_size: u64,
    size: u64,
) -> Result<Vec<Hash>, LogError> {
    if old_size > size {
        return Err(LogError::Tree(format!(
            "no consistency proof from {old_size} entries to {size}"
        )));
    }
    if old_size == 0 || old_size == size {
        return Ok(Vec::new());
    }
    Ok(tlog_tiles::prove_tree(
        size,
        old_size,
        &Builder::new(store, size),
    )?)
}

/// Checks an inclusion proof of the entry whose leaf hash is `leaf` at `index` in the tree of
/// `size` entries with root `root`.
///
/// # Errors
///
/// The proof does not lead to `root`.
pub fn verify_inclusion(
    leaf: Hash,
    index: u64,
    size: u64,
    root: Hash,
    proof: &[Hash],
) -> Result<(), LogError> {
    if index >= size {
        return Err(LogError::Tree(format!(
            "entry {index} is not in a tree of {size} entries"
        )));
    }
    tlog_tiles::check_record(&proof.to_vec(), size, root, index, leaf)
        .map_err(|_| LogError::Tree(format!("the inclusion proof of entry {index} does not lead to the root of the tree of {size} entries")))
}

/// Checks that the tree of `size` entries with root `root` extends the tree of `old_size`
/// with root `old_root`.
///
/// # Errors
///
/// The proof does not verify: the newer tree is not an extension of the older (a fork or a
/// rollback).
pub fn verify_consistency(
    old_size: u64,
    old_root: Hash,
    size: u64,
    root: Hash,
    proof: &[Hash],
) -> Result<(), LogError> {
    let fail = || {
        LogError::Tree(format!(
            "the tree of {size} entries is not an extension of the tree of {old_size}"
        ))
    };
    if old_size > size {
        return Err(fail());
    }
    if old_size == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(fail())
        };
    }
    if old_size == size {
        return if proof.is_empty() && old_root == root {
            Ok(())
        } else {
            Err(fail())
        };
    }
    tlog_tiles::check_tree(&proof.to_vec(), size, root, old_size, old_root).map_err(|_| fail())
}

/// Reads the hashes of a tiled tree of `size` entries and appends to it in memory; the
/// right-edge tiles and bundle being extended are kept apart until written.
pub(crate) struct Builder<'a, S: ?Sized> {
    store: &'a S,
    /// The size at which the stored tiles are read.
    base: u64,
    /// The size including appended entries.
    pub(crate) size: u64,
    /// Tiles changed by appends, by (level, index).
    tiles: BTreeMap<(u8, u64), Vec<u8>>,
    /// Bundles changed by appends: encoded bytes and entry count.
    bundles: BTreeMap<u64, (Vec<u8>, u64)>,
}

impl<'a, S: TileStore + ?Sized> Builder<'a, S> {
    pub(crate) fn new(store: &'a S, size: u64) -> Self {
        Builder {
            store,
            base: size,
            size,
            tiles: BTreeMap::new(),
            bundles: BTreeMap::new(),
        }
    }

    /// Stored tile data of (level, index), as wide as the tree of `base` entries has it.
    fn stored_tile(&self, level: u8, index: u64) -> Result<Vec<u8>, LogError> {
        let width = tile_width(level, index, self.base);
        let path = tile_path(level, index, width);
        if width == 0 {
            return Err(LogError::Missing(path));
        }
        let data = self
            .store
            .read(&path)?
            .ok_or_else(|| LogError::Missing(path.clone()))?;
        if data.len() as u64 != width * 32 {
            return Err(LogError::Corrupt(format!(
                "{path} holds {} bytes, {} expected",
                data.len(),
                width * 32
            )));
        }
        Ok(data)
    }

    fn tile(&self, level: u8, index: u64) -> Result<std::borrow::Cow<'_, [u8]>, LogError> {
        match self.tiles.get(&(level, index)) {
            Some(data) => Ok(std::borrow::Cow::Borrowed(data)),
            None => Ok(std::borrow::Cow::Owned(self.stored_tile(level, index)?)),
        }
    }

    pub(crate) fn root(&self, size: u64) -> Result<Hash, LogError> {
        Ok(tlog_tiles::tree_hash(size, self)?)
    }

    /// Appends entries; with `bundles`, also to the entry bundles.
    pub(crate) fn append(&mut self, entries: &[Vec<u8>], bundles: bool) -> Result<(), LogError> {
        for entry in entries {
            let n = self.size;
            let hashes = tlog_tiles::stored_hashes(n, entry, &*self)?;
            let first = tlog_tiles::stored_hash_index(0, n);
            for (k, hash) in (first..).zip(hashes) {
                let (level, i) = tlog_tiles::split_stored_hash_index(k);
                if level % TILE_HEIGHT != 0 {
                    continue;
                }
                self.push_hash(level / TILE_HEIGHT, i, hash)?;
            }
            if bundles {
                self.push_entry(n, entry)?;
            }
            self.size += 1;
        }
        Ok(())
    }

    /// Adds the hash at position `i` of tile level `level` (which must be the next one).
    fn push_hash(&mut self, level: u8, i: u64, hash: Hash) -> Result<(), LogError> {
        let index = i / TILE_WIDTH;
        let pos = i % TILE_WIDTH;
        if !self.tiles.contains_key(&(level, index)) {
            let data = if pos == 0 {
                Vec::new()
            } else {
                self.stored_tile(level, index)?
            };
            self.tiles.insert((level, index), data);
        }
        let data = self
            .tiles
            .get_mut(&(level, index))
            .ok_or_else(|| LogError::Tree("tile vanished".into()))?;
        if data.len() as u64 != pos * 32 {
            return Err(LogError::Corrupt(format!(
                "{} does not end where hash {i} of level {level} belongs",
                tile_path(level, index, data.len() as u64 / 32)
            )));
        }
        data.extend_from_slice(&hash.0);
        Ok(())
    }

    fn push_entry(&mut self, n: u64, entry: &[u8]) -> Result<(), LogError> {
        let index = n / TILE_WIDTH;
        let pos = n % TILE_WIDTH;
        if !self.bundles.contains_key(&index) {
            let bundle = if pos == 0 {
                (Vec::new(), 0)
            } else {
                let path = bundle_path(index, pos);
                let data = self
                    .store
                    .read(&path)?
                    .ok_or_else(|| LogError::Missing(path.clone()))?;
                let count = tiles::decode_bundle(&data)
                    .map_err(|source| LogError::Bundle {
                        path: path.clone(),
                        source,
                    })?
                    .len() as u64;
                if count != pos {
                    return Err(LogError::Corrupt(format!(
                        "{path} holds {count} entries, {pos} expected"
                    )));
                }
                (data, count)
            };
            self.bundles.insert(index, bundle);
        }
        let (data, count) = self
            .bundles
            .get_mut(&index)
            .ok_or_else(|| LogError::Tree("bundle vanished".into()))?;
        tiles::append_to_bundle(data, entry).map_err(|source| LogError::Bundle {
            path: bundle_path(index, pos + 1),
            source,
        })?;
        *count += 1;
        Ok(())
    }

    /// The resources to write: every changed bundle and tile at its new width.
    pub(crate) fn into_writes(self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for (index, (data, count)) in self.bundles {
            out.push((bundle_path(index, count), data));
        }
        for ((level, index), data) in self.tiles {
            let width = data.len() as u64 / 32;
            out.push((tile_path(level, index, width), data));
        }
        out
    }
}

impl<S: TileStore + ?Sized> HashReader for Builder<'_, S> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let mut out = Vec::with_capacity(indexes.len());
        for &index in indexes {
            let tile = Tile::from_index(TILE_HEIGHT, index);
            let data = self
                .tile(tile.level(), tile.level_index())
                .map_err(|e| tlog_tiles::Error::InvalidInput(e.to_string()))?;
            out.push(tile.hash_at_index(&data, index)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::MemoryStore;

    fn signer() -> LogSigner {
        LogSigner::from_seed("test.example/log", [7; 32]).unwrap()
    }

    fn entry(i: u64) -> Vec<u8> {
        format!("entry {i}").into_bytes()
    }

    /// RFC 6962 Merkle Tree Hash, written out from the definition, for comparison.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => tlog_tiles::EMPTY_HASH,
            1 => leaves[0],
            n => {
                let k = (n as u64).next_power_of_two() as usize / 2;
                let k = if k == n { n / 2 } else { k };
                tlog_tiles::node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn batches_give_the_same_tiles_as_one_by_one() {
        let signer = signer();
        let mut one = MemoryStore::default();
        let mut batched = MemoryStore::default();
        let all: Vec<Vec<u8>> = (0..700).map(entry).collect();
        for e in &all {
            integrate(&mut one, &signer, std::slice::from_ref(e)).unwrap();
        }
        let mut start = 0;
        for batch in [1usize, 254, 1, 300, 144] {
            integrate(&mut batched, &signer, &all[start..start + batch]).unwrap();
            start += batch;
        }
        assert_eq!(start, 700);
        let leaves: Vec<Hash> = all.iter().map(|e| tlog_tiles::record_hash(e)).collect();
        for size in [1u64, 2, 3, 255, 256, 257, 511, 512, 699, 700] {
            // Every partial tile of every size is kept, so any earlier root can be read.
            assert_eq!(
                tree_root(&one, size).unwrap(),
                mth(&leaves[..size as usize]),
                "{size}"
            );
        }
        assert_eq!(tree_root(&batched, 700).unwrap(), mth(&leaves));
        // The final tiles and bundles are identical.
        for (level, index, width) in tiles::tiles_of(700) {
            let p = tile_path(level, index, width);
            assert_eq!(one.files.get(&p), batched.files.get(&p), "{p}");
        }
        for index in 0..3 {
            let p = bundle_path(index, tile_width(0, index, 700));
            assert!(one.files.contains_key(&p), "{p}");
            assert_eq!(one.files.get(&p), batched.files.get(&p), "{p}");
        }
    }

    #[test]
    fn proofs_verify_and_wrong_ones_do_not() {
        let signer = signer();
        let mut store = MemoryStore::default();
        let all: Vec<Vec<u8>> = (0..600).map(entry).collect();
        let mut sizes_roots = Vec::new();
        for chunk in all.chunks(37) {
            let r = integrate(&mut store, &signer, chunk).unwrap();
            sizes_roots.push((r.size, r.root));
        }
        let (size, root) = *sizes_roots.last().unwrap();
        for index in [0u64, 1, 255, 256, 300, 599] {
            let proof = inclusion_proof(&store, size, index).unwrap();
            let leaf = tlog_tiles::record_hash(&all[index as usize]);
            verify_inclusion(leaf, index, size, root, &proof).unwrap();
            assert!(verify_inclusion(leaf, index + 1, size, root, &proof).is_err());
        }
        for &(old, old_root) in &sizes_roots {
            let proof = consistency_proof(&store, old, size).unwrap();
            verify_consistency(old, old_root, size, root, &proof).unwrap();
            let mut bad = old_root;
            bad.0[0] ^= 1;
            assert!(verify_consistency(old, bad, size, root, &proof).is_err());
        }
        assert!(inclusion_proof(&store, size, size).is_err());
    }

    #[test]
    fn a_checkpoint_of_another_key_is_not_extended() {
        let mut store = MemoryStore::default();
        integrate(&mut store, &signer(), &[entry(0)]).unwrap();
        let other = LogSigner::from_seed("test.example/log", [8; 32]).unwrap();
        let err = integrate(&mut store, &other, &[entry(1)]).unwrap_err();
        assert!(matches!(err, LogError::Checkpoint(_)), "{err}");
    }
}
