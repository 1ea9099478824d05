//! Values derived from the export's secret: replacement UIDs, pseudonyms and date shifts,
//! each a keyed hash (HMAC-SHA-256) of the original value, so that the same original gives
//! the same replacement within one export and nothing can be recomputed without the secret.

use sha2::{Digest, Sha256};

/// The export's secret: 32 random bytes, new for every export.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

impl Secret {
    /// A secret from bytes the caller drew at random (the crate does no I/O, so it draws
    /// none itself).
    pub fn from_bytes(bytes: [u8; 32]) -> Secret {
        Secret(bytes)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// HMAC-SHA-256 (RFC 2104) of `label`, a zero byte and `value` under the secret.
pub(crate) fn mac(secret: &Secret, label: &str, value: &[u8]) -> [u8; 32] {
    let mut msg = Vec::with_capacity(label.len() + 1 + value.len());
    msg.extend_from_slice(label.as_bytes());
    msg.push(0);
    msg.extend_from_slice(value);
    hmac_sha256(&secret.0, &msg)
}

/// HMAC-SHA-256 with a key of at most one block (64 bytes).
fn hmac_sha256(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, b) in key.iter().enumerate() {
        ipad[i] ^= b;
        opad[i] ^= b;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// The replacement of a UID: `2.25.` and the decimal of 128 bits of the keyed hash
/// (PS3.5 B.2; at most 44 characters).
pub(crate) fn uid(secret: &Secret, original: &str) -> String {
    let h = mac(secret, "uid", original.trim().as_bytes());
    let mut n = [0u8; 16];
    n.copy_from_slice(&h[..16]);
    format!("2.25.{}", u128::from_be_bytes(n))
}

/// A pseudonym of a patient (upper-case hexadecimal, 12 characters).
pub(crate) fn pseudonym(secret: &Secret, patient_key: &str) -> String {
    let h = mac(secret, "patient", patient_key.as_bytes());
    h[..6].iter().map(|b| format!("{b:02X}")).collect()
}

/// The shift of a patient's dates in days: between 365 and 3,999 days back.
pub(crate) fn shift_days(secret: &Secret, patient_key: &str) -> i64 {
    let h = mac(secret, "date-shift", patient_key.as_bytes());
    let n = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    -(365 + i64::from(n % 3635))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_test_case_1() {
        // Key 0x0b x 20 (zero-padded to 32 bytes, as HMAC pads it anyway), "Hi There".
        let mut key = [0u8; 32];
        key[..20].fill(0x0b);
        let h: String = hmac_sha256(&key, b"Hi There")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            h,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn uids_are_2_25_and_stable() {
        let s = Secret::from_bytes([1; 32]);
        let u = uid(&s, "1.2.3");
        assert!(u.starts_with("2.25.") && u.len() <= 44, "{u}");
        assert_eq!(u, uid(&s, "1.2.3"));
        assert_ne!(u, uid(&s, "1.2.4"));
        assert_ne!(u, uid(&Secret::from_bytes([2; 32]), "1.2.3"));
        let d = shift_days(&s, "p");
        assert!((-3999..=-365).contains(&d));
    }
}
