//! C2SP tlog-cosignature, the Ed25519 `cosignature/v1` type: a witness's timestamped
//! statement that a checkpoint is the largest consistent tree it has seen of that log.
//!
//! `signed_note` 0.2 has no cosignature type, so it is written here on its traits:
//! key ID `SHA-256(name || "\n" || 0x04 || public key)[:4]`, signature
//! `u64 timestamp (big-endian) || Ed25519(message)`, and the message
//! `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's note text.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use ed25519_dalek::{Signer as _, Verifier as _};
use signed_note::{Note, Verifier, VerifierList};

use crate::note::NoteKeyError;

/// The verifier-key type byte of cosignature/v1 keys.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

fn message(timestamp: u64, text: &[u8]) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(text);
    msg
}

fn key_id(name: &str, key: &ed25519_dalek::VerifyingKey) -> u32 {
    let mut material = vec![ALG_COSIGNATURE_V1];
    material.extend_from_slice(key.as_bytes());
    signed_note::key_id(name, &material)
}

/// A witness's cosigning key.
pub struct Cosigner {
    name: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cosigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Cosigner {
    /// A cosigner named `name` (a schema-less URL) with the Ed25519 key of `seed`.
    ///
    /// A witness must not reuse its log key: cosignature/v1 does not commit to the name.
    ///
    /// # Errors
    ///
    /// An invalid key name.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteKeyError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(NoteKeyError::Key(format!("invalid key name {name:?}")));
        }
        Ok(Cosigner {
            name: name.to_string(),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// Reads the private key form `PRIVATE+KEY+name+keyid+base64(0x04 || seed)` (the
    /// signed-note form, with the cosignature/v1 type and key ID).
    ///
    /// # Errors
    ///
    /// A malformed key, another type, or a key ID that does not match.
    pub fn from_skey(skey: &str) -> Result<Self, NoteKeyError> {
        let key = crate::note::PrivateKey::parse(skey, ALG_COSIGNATURE_V1, "a cosignature/v1")?;
        let cosigner = Self::from_seed(key.name, key.seed)?;
        key.check_id(key_id(key.name, &cosigner.key.verifying_key()))?;
        Ok(cosigner)
    }

    /// The private key form, for the key file.
    pub fn to_skey(&self) -> String {
        let mut key = vec![ALG_COSIGNATURE_V1];
        key.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            key_id(&self.name, &self.key.verifying_key()),
            BASE64_STANDARD.encode(key)
        )
    }

    /// The cosigner's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key, `name+keyid+base64(0x04 || public key)`.
    pub fn vkey(&self) -> String {
        let vk = self.key.verifying_key();
        let mut material = vec![ALG_COSIGNATURE_V1];
        material.extend_from_slice(vk.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            key_id(&self.name, &vk),
            BASE64_STANDARD.encode(material)
        )
    }

    /// The cosignature line (`— name base64(keyid || timestamp || signature)\n`) over the
    /// checkpoint note text `text`, made at `timestamp` (POSIX seconds).
    pub fn cosign(&self, text: &[u8], timestamp: u64) -> String {
        let sig = self.key.sign(&message(timestamp, text));
        let mut bytes = key_id(&self.name, &self.key.verifying_key())
            .to_be_bytes()
            .to_vec();
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(&sig.to_bytes());
        format!("\u{2014} {} {}\n", self.name, BASE64_STANDARD.encode(bytes))
    }
}

/// Verifies cosignature/v1 signatures of one witness key.
#[derive(Debug, Clone)]
pub struct CosignatureVerifier {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses `name+keyid+base64(0x04 || public key)`.
    ///
    /// # Errors
    ///
    /// A malformed key, another type, a key ID that does not match.
    pub fn new(vkey: &str) -> Result<Self, NoteKeyError> {
        let bad = |why: &str| NoteKeyError::Key(format!("{why}: {vkey:?}"));
        // Names and key IDs hold no `+`; the base64 key may.
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id16), Some(key64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected name+keyid+key"));
        };
        let material = BASE64_STANDARD
            .decode(key64)
            .map_err(|_| bad("the key is not base64"))?;
        let [ALG_COSIGNATURE_V1, key @ ..] = material.as_slice() else {
            return Err(bad("not a cosignature/v1 key"));
        };
        let key: [u8; 32] = key.try_into().map_err(|_| bad("wrong key length"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
            .map_err(|_| bad("not an Ed25519 public key"))?;
        let id = key_id(name, &key);
        if !signed_note::is_key_name_valid(name) || format!("{id:08x}") != id16 {
            return Err(bad("the name or key ID does not match the key"));
        }
        Ok(CosignatureVerifier {
            name: name.to_string(),
            id,
            key,
        })
    }
}

impl Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some((timestamp, sig)) = split_signature(sig) else {
            return false;
        };
        self.key
            .verify(
                &message(timestamp, msg),
                &ed25519_dalek::Signature::from_bytes(&sig),
            )
            .is_ok()
    }
}

fn split_signature(sig: &[u8]) -> Option<(u64, [u8; 64])> {
    if sig.len() != 72 {
        return None;
    }
    let (time, sig) = sig.split_at(8);
    let timestamp = u64::from_be_bytes(time.try_into().ok()?);
    if timestamp > i64::MAX as u64 {
        return None;
    }
    Some((timestamp, sig.try_into().ok()?))
}

/// A witness whose cosignature on a checkpoint verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The witness's name.
    pub name: String,
    /// When it cosigned (POSIX seconds).
    pub timestamp: u64,
}

/// The witnesses among `witnesses` whose cosignatures on the signed note `bytes` verify.
/// Unknown signatures (the log's own, other witnesses') are ignored.
///
/// # Errors
///
/// A malformed note, or a cosignature of a known witness that does not verify (a forgery).
pub fn verified_cosigners(
    bytes: &[u8],
    witnesses: &[CosignatureVerifier],
) -> Result<Vec<Cosigned>, NoteKeyError> {
    let note = Note::from_bytes(bytes).map_err(|e| NoteKeyError::Malformed(e.to_string()))?;
    let known = VerifierList::new(
        witnesses
            .iter()
            .map(|w| Box::new(w.clone()) as Box<dyn Verifier>)
            .collect(),
    );
    match note.verify(&known) {
        Ok((verified, _)) => Ok(verified
            .iter()
            .filter_map(|s| {
                split_signature(s.signature()).map(|(timestamp, _)| Cosigned {
                    name: s.name().to_string(),
                    timestamp,
                })
            })
            .collect()),
        Err(signed_note::NoteError::UnverifiedNote) => Ok(Vec::new()),
        Err(signed_note::NoteError::InvalidSignature { name, .. }) => {
            Err(NoteKeyError::BadSignature(name))
        }
        Err(e) => Err(NoteKeyError::Malformed(e.to_string())),
    }
}

/// The time a checkpoint was last vouched for (POSIX seconds), for freshness: the newest
/// timestamp among the verified cosignatures `cosigned`, or, when there are none,
/// `written`, the time the log wrote the checkpoint.
///
/// C2SP gives no other time: a checkpoint (c2sp.org/tlog-checkpoint) is origin, size and
/// root only, and the log's Ed25519 signature is not timestamped; cosignature/v1 is the one
/// signed time, a witness's statement that this was the latest checkpoint it saw at that
/// moment. Without cosignatures, `written` is what the log's storage says (the file's
/// modification time, or the server's `Last-Modified`), which only the log vouches for.
pub fn checkpoint_time(cosigned: &[Cosigned], written: Option<u64>) -> Option<u64> {
    cosigned.iter().map(|c| c.timestamp).max().or(written)
}

/// Whether a checkpoint whose time is `time` (see [`checkpoint_time`]) is older than
/// `max_age` seconds at `now`; a checkpoint with no time at all is stale. A time in the
/// future (clock skew) counts as age 0.
pub fn is_stale(time: Option<u64>, now: u64, max_age: u64) -> bool {
    time.is_none_or(|t| now.saturating_sub(t) > max_age)
}

/// Adds signature lines (such as a witness's `add-checkpoint` answer) to a signed note,
/// keeping only those of `witnesses` that verify.
///
/// # Errors
///
/// A malformed note or lines, or a cosignature of a known witness that does not verify.
pub fn add_cosignatures(
    note: &[u8],
    lines: &[u8],
    witnesses: &[CosignatureVerifier],
) -> Result<Vec<u8>, NoteKeyError> {
    let malformed = |e: signed_note::NoteError| NoteKeyError::Malformed(e.to_string());
    let original = Note::from_bytes(note).map_err(malformed)?;
    let text = original.text();
    let old_lines = note.get(text.len() + 1..).unwrap_or_default();
    // The new lines first: a note keeps the first signature of each key, so a witness's
    // newer cosignature replaces its older one.
    let mut joined = text.to_vec();
    joined.push(b'\n');
    joined.extend_from_slice(lines);
    joined.extend_from_slice(old_lines);
    let with = Note::from_bytes(&joined).map_err(malformed)?;
    let known = VerifierList::new(
        witnesses
            .iter()
            .map(|w| Box::new(w.clone()) as Box<dyn Verifier>)
            .collect(),
    );
    let verified = match with.verify(&known) {
        Ok((verified, _)) => verified,
        Err(signed_note::NoteError::UnverifiedNote) => return Ok(note.to_vec()),
        Err(signed_note::NoteError::InvalidSignature { name, .. }) => {
            return Err(NoteKeyError::BadSignature(name));
        }
        Err(e) => return Err(malformed(e)),
    };
    // The note's other lines (the log's signature first) stay, then the cosignatures.
    let replaced: Vec<(&str, u32)> = verified.iter().map(|s| (s.name(), s.id())).collect();
    let mut out = text.to_vec();
    out.push(b'\n');
    for line in old_lines.split_inclusive(|&b| b == b'\n') {
        let key = signed_note::Signature::from_bytes(line.strip_suffix(b"\n").unwrap_or(line))
            .ok()
            .map(|s| (s.name().to_string(), s.id()));
        let is_replaced = key
            .as_ref()
            .is_some_and(|(n, id)| replaced.contains(&(n.as_str(), *id)));
        if !is_replaced {
            out.extend_from_slice(line);
        }
    }
    for s in &verified {
        out.extend_from_slice(&s.to_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{LogSigner, open_checkpoint, parse_verifier};

    #[test]
    fn cosignatures_verify_and_carry_their_time() {
        let log = LogSigner::from_seed("lumen.example/a", [1; 32]).unwrap();
        let cp = log
            .sign_checkpoint(5, tlog_tiles::record_hash(b"r"))
            .unwrap();
        let w = Cosigner::from_seed("lumen.example/w1", [9; 32]).unwrap();
        let v = CosignatureVerifier::new(&w.vkey()).unwrap();
        // parse_verifier dispatches on the type byte.
        assert_eq!(
            parse_verifier(&w.vkey()).unwrap().name(),
            "lumen.example/w1"
        );
        let text = open_checkpoint(&cp, &*log.verifier()).unwrap().text;
        let line = w.cosign(&text, 1_679_315_147);
        let with = add_cosignatures(&cp, line.as_bytes(), std::slice::from_ref(&v)).unwrap();
        // The log's signature still verifies, and the cosignature is counted.
        open_checkpoint(&with, &*log.verifier()).unwrap();
        assert_eq!(
            verified_cosigners(&with, std::slice::from_ref(&v)).unwrap(),
            vec![Cosigned {
                name: "lumen.example/w1".into(),
                timestamp: 1_679_315_147
            }]
        );
        // A second cosignature of the same witness replaces the first.
        let line2 = w.cosign(&text, 1_679_315_200);
        let with2 = add_cosignatures(&with, line2.as_bytes(), std::slice::from_ref(&v)).unwrap();
        assert_eq!(
            verified_cosigners(&with2, std::slice::from_ref(&v)).unwrap()[0].timestamp,
            1_679_315_200
        );
        // The log key is not a cosigner; a cosignature over other text does not verify.
        let other = log
            .sign_checkpoint(6, tlog_tiles::record_hash(b"r"))
            .unwrap();
        let forged = add_cosignatures(&other, line.as_bytes(), std::slice::from_ref(&v));
        assert!(matches!(forged, Err(NoteKeyError::BadSignature(_))));
    }

    #[test]
    fn freshness_uses_the_newest_cosignature_else_the_write_time() {
        let c = |timestamp| Cosigned {
            name: "w".into(),
            timestamp,
        };
        // The newest cosignature wins over the write time, even an older one.
        assert_eq!(checkpoint_time(&[c(100), c(250)], Some(300)), Some(250));
        assert_eq!(checkpoint_time(&[], Some(300)), Some(300));
        assert_eq!(checkpoint_time(&[], None), None);
        // Stale strictly past the limit; the future is fresh; no time at all is stale.
        assert!(!is_stale(Some(1000), 1300, 300));
        assert!(is_stale(Some(1000), 1301, 300));
        assert!(!is_stale(Some(2000), 1000, 0));
        assert!(is_stale(None, 1000, 300));
    }

    #[test]
    fn key_ids_use_type_0x04() {
        let w = Cosigner::from_seed("w", [3; 32]).unwrap();
        let vk = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let mut m = b"w\n\x04".to_vec();
        m.extend_from_slice(vk.as_bytes());
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&m);
        assert!(
            w.vkey()
                .starts_with(&format!("w+{}+", hex::encode(&digest[..4])))
        );
        assert!(CosignatureVerifier::new(&w.vkey().replacen("w+", "x+", 1)).is_err());
        let again = Cosigner::from_skey(&w.to_skey()).unwrap();
        assert_eq!(again.vkey(), w.vkey());
        assert!(Cosigner::from_skey(&w.to_skey().replacen("+w+", "+x+", 1)).is_err());
    }
}
