//! UID generation: `2.25.<UUID as decimal>` (PS3.5 B.2).

/// Returns a new globally unique UID of the form `2.25.<decimal UUIDv4>` (at most 44 characters).
pub fn new_uid() -> String {
    format!("2.25.{}", uuid::Uuid::new_v4().as_u128())
}

/// A UID that is a function of `key` and `what`: `2.25.` and 128 bits of SHA-256, in decimal.
/// Objects whose UIDs derive from their inputs are written identically when a job runs
/// again, so storing them again is "already present" (exactly once).
pub fn derived_uid(key: &[u8], what: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(key);
    h.update([0u8]);
    h.update(what.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    format!("2.25.{}", u128::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn derived_uids_are_valid_and_stable() {
        let a = super::derived_uid(b"key", "seg");
        assert_eq!(a, super::derived_uid(b"key", "seg"));
        assert_ne!(a, super::derived_uid(b"key", "sr"));
        assert_ne!(a, super::derived_uid(b"kez", "seg"));
        assert!(a.len() <= 64 && a.starts_with("2.25."));
        assert!(a[5..].chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn uids_are_valid_and_distinct() {
        let a = super::new_uid();
        let b = super::new_uid();
        assert_ne!(a, b);
        assert!(a.len() <= 64);
        assert!(a.starts_with("2.25."));
        let tail = &a[5..];
        assert!(tail.chars().all(|c| c.is_ascii_digit()));
        assert!(tail == "0" || !tail.starts_with('0'));
    }
}
