//! C2SP tlog-tiles resources: tile and entry-bundle paths, bundle encoding, and the
//! [`TileStore`] seam through which the log reads and writes them.
//!
//! `tlog_tiles` 0.2 formats Go sumdb paths (`tile/8/0/...`, with the tile height and
//! `data` tiles), which are not C2SP's (`tile/0/...`, `tile/entries/...`): the C2SP paths
//! are written here. Paths are relative to the log's prefix (`DATA/ledger/` on disk,
//! `/ledger/` over HTTP).

use std::collections::BTreeMap;

use crate::TILE_WIDTH;

/// The checkpoint's path.
pub const CHECKPOINT: &str = "checkpoint";

/// A storage failure, with the path and the cause (never entry contents).
#[derive(Debug, thiserror::Error)]
#[error("ledger storage: {0}")]
pub struct StoreError(pub String);

/// Where a log keeps its checkpoint, hash tiles and entry bundles, by C2SP path.
///
/// Implementations must make each write whole or absent (a reader never sees half a tile),
/// as `lumen-store`'s files do with a temporary file, fsync and rename.
pub trait TileStore {
    /// The bytes at `path`, or `None` when there are none.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes (or replaces) the bytes at `path`.
    fn write(&mut self, path: &str, data: &[u8]) -> Result<(), StoreError>;
}

/// A [`TileStore`] in memory, for tests and for recomputing a log during verification.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    /// The resources by path.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl TileStore for MemoryStore {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.files.get(path).cloned())
    }

    fn write(&mut self, path: &str, data: &[u8]) -> Result<(), StoreError> {
        self.files.insert(path.to_string(), data.to_vec());
        Ok(())
    }
}

impl<T: TileStore + ?Sized> TileStore for &mut T {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).read(path)
    }

    fn write(&mut self, path: &str, data: &[u8]) -> Result<(), StoreError> {
        (**self).write(path, data)
    }
}

/// One resource of a tiled log, as its path names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `checkpoint`.
    Checkpoint,
    /// `tile/<L>/<N>[.p/<W>]`: hashes at level `8 * level`.
    Tile {
        /// The tile level (0 holds leaf hashes).
        level: u8,
        /// The tile's index within its level.
        index: u64,
        /// Hashes in the tile, 1 to 256 (256 is a full tile).
        width: u64,
    },
    /// `tile/entries/<N>[.p/<W>]`: entries `N*256 ..`.
    Bundle {
        /// The bundle's index.
        index: u64,
        /// Entries in the bundle, 1 to 256.
        width: u64,
    },
}

impl Resource {
    /// The C2SP path of the resource.
    pub fn path(&self) -> String {
        match *self {
            Resource::Checkpoint => CHECKPOINT.to_string(),
            Resource::Tile {
                level,
                index,
                width,
            } => format!("tile/{level}/{}", index_and_width(index, width)),
            Resource::Bundle { index, width } => {
                format!("tile/entries/{}", index_and_width(index, width))
            }
        }
    }

    /// Parses a C2SP path strictly (exactly the form [`Resource::path`] writes, so `..`,
    /// empty or extra elements and leading zeroes are refused).
    pub fn parse(path: &str) -> Option<Resource> {
        if path == CHECKPOINT {
            return Some(Resource::Checkpoint);
        }
        let rest = path.strip_prefix("tile/")?;
        let (level, rest) = rest.split_once('/')?;
        let (index, width) = parse_index_and_width(rest)?;
        let resource = if level == "entries" {
            Resource::Bundle { index, width }
        } else {
            let level: u8 = parse_decimal(level)?.try_into().ok()?;
            if level > 63 {
                return None;
            }
            Resource::Tile {
                level,
                index,
                width,
            }
        };
        // Only the canonical spelling is accepted.
        (resource.path() == path).then_some(resource)
    }
}

/// The path of hash tile `index` at `level` with `width` hashes.
pub fn tile_path(level: u8, index: u64, width: u64) -> String {
    Resource::Tile {
        level,
        index,
        width,
    }
    .path()
}

/// The path of entry bundle `index` with `width` entries.
pub fn bundle_path(index: u64, width: u64) -> String {
    Resource::Bundle { index, width }.path()
}

/// The width of tile `index` at `level` in a tree of `size` entries (0: absent).
pub fn tile_width(level: u8, index: u64, size: u64) -> u64 {
    let shift = 8 * u32::from(level);
    let hashes = size.checked_shr(shift).unwrap_or(0);
    let start = index.saturating_mul(TILE_WIDTH);
    hashes.saturating_sub(start).min(TILE_WIDTH)
}

/// Every hash tile of a tree of `size` entries, level by level, as (level, index, width).
pub fn tiles_of(size: u64) -> Vec<(u8, u64, u64)> {
    let mut tiles = Vec::new();
    let mut level: u8 = 0;
    while level < 64 {
        let hashes = size.checked_shr(8 * u32::from(level)).unwrap_or(0);
        if hashes == 0 {
            break;
        }
        for index in 0..hashes.div_ceil(TILE_WIDTH) {
            tiles.push((level, index, tile_width(level, index, size)));
        }
        level += 1;
    }
    tiles
}

fn index_and_width(index: u64, width: u64) -> String {
    let mut n = index;
    let mut s = format!("{:03}", n % 1000);
    while n >= 1000 {
        n /= 1000;
        s = format!("x{:03}/{s}", n % 1000);
    }
    if width < TILE_WIDTH {
        s.push_str(&format!(".p/{width}"));
    }
    s
}

fn parse_index_and_width(s: &str) -> Option<(u64, u64)> {
    let (digits, width) = match s.split_once(".p/") {
        Some((digits, width)) => {
            let width = parse_decimal(width)?;
            if !(1..TILE_WIDTH).contains(&width) {
                return None;
            }
            (digits, width)
        }
        None => (s, TILE_WIDTH),
    };
    let mut index: u64 = 0;
    let mut parts = digits.split('/').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        let group = if last { part } else { part.strip_prefix('x')? };
        if group.len() != 3 || !group.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u64 = group.parse().ok()?;
        index = index.checked_mul(1000)?.checked_add(value)?;
    }
    Some((index, width))
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Encodes entries as a C2SP entry bundle: each one prefixed by its length as a big-endian
/// `u16`.
///
/// # Errors
///
/// An entry longer than 65,535 bytes cannot be bundled.
pub fn encode_bundle<'a>(
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, BundleError> {
    let mut out = Vec::new();
    for entry in entries {
        append_to_bundle(&mut out, entry)?;
    }
    Ok(out)
}

/// Appends one entry to an encoded bundle.
///
/// # Errors
///
/// An entry longer than 65,535 bytes cannot be bundled.
pub fn append_to_bundle(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), BundleError> {
    let len = u16::try_from(entry.len()).map_err(|_| BundleError::TooLong(entry.len()))?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// Splits an entry bundle into its entries.
///
/// # Errors
///
/// A length prefix that runs past the end of the bundle.
pub fn decode_bundle(bundle: &[u8]) -> Result<Vec<&[u8]>, BundleError> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let [a, b, tail @ ..] = rest else {
            return Err(BundleError::Truncated);
        };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        if tail.len() < len {
            return Err(BundleError::Truncated);
        }
        let (entry, tail) = tail.split_at(len);
        entries.push(entry);
        rest = tail;
    }
    Ok(entries)
}

/// A malformed entry bundle, or an entry that cannot be bundled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bundle ends inside an entry.
    #[error("entry bundle truncated inside an entry")]
    Truncated,
    /// An entry over the 16-bit length limit.
    #[error("entry of {0} bytes exceeds the 65,535-byte limit of entry bundles")]
    TooLong(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_c2sp() {
        // The examples of c2sp.org/tlog-tiles.
        assert_eq!(tile_path(0, 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 0, 17), "tile/1/000.p/17");
        assert_eq!(bundle_path(273, 112), "tile/entries/273.p/112");
        assert_eq!(bundle_path(1000, 256), "tile/entries/x001/000");
        // A tree of 70,000 entries: 273 full level-0 tiles, one partial of 112, one full
        // level-1 tile, one partial of 17, one partial level-2 tile of 1.
        let tiles = tiles_of(70_000);
        assert_eq!(tiles.iter().filter(|t| t.0 == 0 && t.2 == 256).count(), 273);
        assert!(tiles.contains(&(0, 273, 112)));
        assert!(tiles.contains(&(1, 0, 256)));
        assert!(tiles.contains(&(1, 1, 17)));
        assert!(tiles.contains(&(2, 0, 1)));
        assert_eq!(tiles.len(), 273 + 1 + 1 + 1 + 1);
        // A tree of 256: one full level-0 tile and a level-1 tile of width 1.
        assert_eq!(tiles_of(256), vec![(0, 0, 256), (1, 0, 1)]);
        assert!(tiles_of(0).is_empty());
    }

    #[test]
    fn paths_agree_with_tlog_tiles_apart_from_the_height() {
        for (l, n, w) in [
            (0u8, 0u64, 1u32),
            (2, 1_234_067, 256),
            (1, 999, 255),
            (3, 1000, 7),
        ] {
            let go = tlog_tiles::Tile::new(8, l, n, w, false).path();
            let ours = tile_path(l, n, u64::from(w));
            assert_eq!(go.replacen("tile/8/", "tile/", 1), ours);
        }
    }

    #[test]
    fn parse_is_strict() {
        for path in [
            "checkpoint",
            "tile/0/000",
            "tile/0/x001/x234/067.p/5",
            "tile/63/000",
            "tile/entries/x001/000.p/255",
        ] {
            let r = Resource::parse(path).expect(path);
            assert_eq!(r.path(), path);
        }
        for path in [
            "",
            "tile/0/../checkpoint",
            "tile/../../etc/passwd",
            "tile/00/000",
            "tile/64/000",
            "tile/0/1",
            "tile/0/0001",
            "tile/0/001/002",
            "tile/0/x000/001",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/05",
            "tile/entries/000/",
            "/checkpoint",
            "tile/0/000.p/",
            "tile/data/000",
        ] {
            assert_eq!(Resource::parse(path), None, "{path}");
        }
    }

    #[test]
    fn bundles_round_trip() {
        let entries: Vec<&[u8]> = vec![b"a", b"", b"hello world"];
        let bundle = encode_bundle(entries.iter().copied()).unwrap();
        assert_eq!(&bundle[..3], &[0, 1, b'a']);
        assert_eq!(decode_bundle(&bundle).unwrap(), entries);
        assert_eq!(
            decode_bundle(&bundle[..bundle.len() - 1]),
            Err(BundleError::Truncated)
        );
        assert_eq!(decode_bundle(&[0]), Err(BundleError::Truncated));
        let long = vec![0u8; 70_000];
        assert_eq!(
            encode_bundle([long.as_slice()]),
            Err(BundleError::TooLong(70_000))
        );
    }
}
