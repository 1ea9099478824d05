//! Lumen's tamper-evident ledger, the way Certificate Transparency and the Go checksum
//! database are built: an append-only RFC 6962/9162 Merkle tree, published as C2SP
//! tlog-tiles (hash tiles and entry bundles), with C2SP signed-note checkpoints that other
//! member hospitals verify and cosign (C2SP tlog-cosignature, tlog-witness).
//!
//! This is a foundation crate: it knows neither DICOM nor files. Storage sits behind
//! [`TileStore`] (an in-memory [`MemoryStore`] here; `lumen-store` writes files), and the
//! caller supplies key material and time.
//!
//! - [`tiles`]: C2SP tile and entry-bundle paths, bundle encoding;
//! - [`log`]: integrating entries into tiles, roots, inclusion and consistency proofs;
//! - [`note`]: the log's Ed25519 key and signed checkpoints;
//! - [`cosign`]: cosignature/v1 (timestamped Ed25519 witness signatures);
//! - [`witness`]: the tlog-witness `add-checkpoint` request and the witness's decision;
//! - [`entry`]: Lumen's entries, salted commitments to events that hold no patient data;
//! - [`verify`]: [`verify_log`], recomputing every tile and the root of a stored log.
//!
//! The tree maths come from `tlog_tiles` (Cloudflare's port of Go's `sumdb/tlog`), signed
//! notes from `signed_note`; the C2SP paths, entry bundles, cosignature/v1 and the witness
//! protocol are written here because those crates (0.2) do not have them.

pub mod cosign;
pub mod entry;
pub mod log;
pub mod note;
pub mod tiles;
pub mod verify;
pub mod witness;

pub use entry::{Commitment, Event, LedgerEntry};
pub use log::{Integrated, LogError, consistency_proof, inclusion_proof, integrate, tree_root};
pub use note::{Checkpoint, LogSigner, NoteKeyError, SignedCheckpoint, open_checkpoint};
pub use tiles::{MemoryStore, StoreError, TileStore};
pub use tlog_tiles::Hash;
pub use verify::{VerifyError, verify_log};

/// The algorithms of a log: the seam for deployments that must use other ones.
///
/// Today only SHA-256 trees with Ed25519 signatures exist, as C2SP tlog-tiles and the public
/// witness network require. A Chinese deployment under 密评 (GM/T 0054) may need SM3 trees
/// and SM2 signatures: signatures already go through `signed_note`'s `Signer`/`Verifier`
/// traits, so an SM2 key is one more implementation of them; an SM3 tree needs the tree
/// functions of [`log`] behind this enum, because `tlog_tiles` hard-codes SHA-256 (ct-merkle,
/// generic over `digest::Digest`, is a candidate for that second backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Algorithms {
    /// RFC 6962 SHA-256 tree hashing (leaf prefix 0x00, node prefix 0x01) and Ed25519
    /// signatures (signed-note type 0x01, cosignature/v1 type 0x04).
    #[default]
    Sha256Ed25519,
}

impl Algorithms {
    /// The RFC 6962 leaf hash of an entry: `H(0x00 || entry)`.
    pub fn leaf_hash(self, entry: &[u8]) -> Hash {
        match self {
            Algorithms::Sha256Ed25519 => tlog_tiles::record_hash(entry),
        }
    }

    /// The RFC 6962 interior node hash: `H(0x01 || left || right)`.
    pub fn node_hash(self, left: Hash, right: Hash) -> Hash {
        match self {
            Algorithms::Sha256Ed25519 => tlog_tiles::node_hash(left, right),
        }
    }
}

/// Tile height of C2SP tlog-tiles: each tile holds up to 256 hashes.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes (or entries) in a full tile (or entry bundle).
pub const TILE_WIDTH: u64 = 256;
