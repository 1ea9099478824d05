//! UID generation: `2.25.<UUID as decimal>` (PS3.5 B.2).

/// Returns a new globally unique UID of the form `2.25.<decimal UUIDv4>` (at most 44 characters).
pub fn new_uid() -> String {
    format!("2.25.{}", uuid::Uuid::new_v4().as_u128())
}

#[cfg(test)]
mod tests {
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
