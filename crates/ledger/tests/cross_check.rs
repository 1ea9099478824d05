//! Cross-checks the tiled log (tlog_tiles' algorithms over C2SP tiles) against a second,
//! independent RFC 6962 implementation, ct-merkle, on roots, inclusion and consistency
//! proofs for many tree sizes; and checks the RFC 6962 hashes of known inputs.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use lumen_ledger::log::{consistency_proof, inclusion_proof, integrate, tree_root};
use lumen_ledger::{Algorithms, LogSigner, MemoryStore};
use sha2_011::Sha256;

/// A small deterministic generator (no extra dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[test]
fn rfc6962_hashes_of_known_inputs() {
    // The empty tree is SHA-256 of nothing; the leaf and node prefixes are 0x00 and 0x01
    // (RFC 9162 section 2.1.1), e.g. the leaf hash of the empty entry is SHA-256(0x00).
    let alg = Algorithms::Sha256Ed25519;
    assert_eq!(
        hex::encode(alg.leaf_hash(b"").0),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    assert_eq!(
        hex::encode(tlog_tiles_empty()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let l = alg.leaf_hash(b"");
    let n = alg.node_hash(l, l);
    let mut buf = vec![1u8];
    buf.extend_from_slice(&l.0);
    buf.extend_from_slice(&l.0);
    assert_eq!(
        n.0.as_slice(),
        &<sha2::Sha256 as sha2::Digest>::digest(&buf)[..]
    );
}

fn tlog_tiles_empty() -> [u8; 32] {
    let store = MemoryStore::default();
    tree_root(&store, 0).unwrap().0
}

#[test]
fn roots_and_proofs_agree_with_ct_merkle() {
    let signer = LogSigner::from_seed("lumen.example/x", [3; 32]).unwrap();
    let mut rng = Lcg(12345);
    let mut store = MemoryStore::default();
    let mut reference: MemoryBackedTree<Sha256, Vec<u8>> = MemoryBackedTree::new();
    let mut sizes = vec![];
    // Grow to ~2,300 entries in random batches (crossing level-1 tile boundaries).
    while reference.len() < 2_300 {
        let batch = 1 + rng.next(150);
        let entries: Vec<Vec<u8>> = (0..batch)
            .map(|i| format!("entry {} {}", reference.len() + i, rng.next(1 << 20)).into_bytes())
            .collect();
        for e in &entries {
            reference.push(e.clone());
        }
        let out = integrate(&mut store, &signer, &entries).unwrap();
        assert_eq!(out.size, reference.len());
        assert_eq!(
            out.root.0.as_slice(),
            reference.root().as_bytes().as_slice(),
            "root at size {}",
            out.size
        );
        sizes.push(out.size);
    }
    let size = reference.len();
    // Inclusion proofs: identical hash lists, in the same order.
    for _ in 0..200 {
        let idx = rng.next(size);
        let ours = inclusion_proof(&store, size, idx).unwrap();
        let theirs = reference.prove_inclusion(idx as usize);
        let ours_bytes: Vec<u8> = ours.iter().flat_map(|h| h.0).collect();
        assert_eq!(
            ours_bytes,
            theirs.as_bytes(),
            "inclusion of {idx} in {size}"
        );
        // ct-merkle verifies ours.
        reference
            .root()
            .verify_inclusion(&reference.items()[idx as usize], idx, &theirs)
            .unwrap();
    }
    // Consistency proofs from every checkpointed size to the last, and between random sizes.
    for &old in &sizes {
        let ours = consistency_proof(&store, old, size).unwrap();
        let theirs = reference.prove_consistency((size - old) as usize);
        if old == size {
            assert!(ours.is_empty());
            continue;
        }
        let ours_bytes: Vec<u8> = ours.iter().flat_map(|h| h.0).collect();
        assert_eq!(ours_bytes, theirs.as_bytes(), "consistency {old} -> {size}");
    }
    // Older trees: build ct-merkle trees of random prefixes and compare our roots.
    for _ in 0..20 {
        let n = 1 + rng.next(size);
        // Only checkpointed sizes have every partial tile; pick one.
        let n = *sizes.iter().find(|&&s| s >= n).unwrap_or(&size);
        let mut t: MemoryBackedTree<Sha256, Vec<u8>> = MemoryBackedTree::new();
        for e in &reference.items()[..n as usize] {
            t.push(e.clone());
        }
        assert_eq!(
            tree_root(&store, n).unwrap().0.as_slice(),
            t.root().as_bytes().as_slice()
        );
    }
}
