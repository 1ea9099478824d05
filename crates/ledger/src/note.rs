//! The log's identity key and its C2SP signed-note checkpoints.
//!
//! A checkpoint (c2sp.org/tlog-checkpoint) is the note text `origin\nsize\nbase64(root)\n`;
//! the log signs it as a C2SP signed note with Ed25519 (signature type 0x01). The key is
//! kept in the signed-note private key form `PRIVATE+KEY+name+keyid+base64(0x01 || seed)`
//! and published as the verifier key `name+keyid+base64(0x01 || public key)`. The origin
//! line is the key's name, so the checkpoint's signature line names the log.
//!
//! Notes, key IDs and verification are `signed_note`'s; signatures go through its
//! `Signer`/`Verifier` traits, the seam for other algorithms (see [`crate::Algorithms`]).

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use ed25519_dalek::Signer as _;
use signed_note::{Note, VerificationError, Verifier, Verifiers};
use tlog_tiles::Hash;

use crate::cosign::CosignatureVerifier;

/// A key or note that could not be read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteKeyError {
    /// A malformed private or verifier key.
    #[error("malformed key: {0}")]
    Key(String),
    /// A note or checkpoint that does not parse.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// No signature of the expected key.
    #[error("the checkpoint carries no signature of {0}")]
    Unsigned(String),
    /// A signature line of the expected key that does not verify.
    #[error("the signature of {0} on the checkpoint does not verify")]
    BadSignature(String),
}

/// The log's Ed25519 signing key and name.
pub struct LogSigner {
    name: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("LogSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

const ALG_ED25519: u8 = 0x01;

/// A signed-note private key, `PRIVATE+KEY+name+keyid+base64(type || seed)`, as read from a
/// key file: the log's key and a witness's cosigning key share the form, not the type.
pub(crate) struct PrivateKey<'a> {
    pub(crate) name: &'a str,
    id16: &'a str,
    pub(crate) seed: [u8; 32],
}

impl<'a> PrivateKey<'a> {
    /// Reads `skey`, which must be of signature type `alg` (`what` names it in errors).
    pub(crate) fn parse(skey: &'a str, alg: u8, what: &str) -> Result<Self, NoteKeyError> {
        let bad = |why: &str| NoteKeyError::Key(why.to_string());
        let rest = skey
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("not a signed-note private key"))?;
        // Names and key IDs hold no `+`; the base64 key may.
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id16), Some(key64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected PRIVATE+KEY+name+keyid+key"));
        };
        let key = BASE64_STANDARD
            .decode(key64)
            .map_err(|_| bad("the key is not base64"))?;
        let [found, seed @ ..] = key.as_slice() else {
            return Err(bad("the key is empty"));
        };
        if *found != alg {
            return Err(bad(&format!("not {what} key")));
        }
        let seed: [u8; 32] = seed.try_into().map_err(|_| bad("wrong key length"))?;
        Ok(PrivateKey { name, id16, seed })
    }

    /// Checks the key ID the key was written with against the one its key has.
    pub(crate) fn check_id(&self, id: u32) -> Result<(), NoteKeyError> {
        if format!("{id:08x}") != self.id16 {
            return Err(NoteKeyError::Key(
                "the key ID does not match the key".into(),
            ));
        }
        Ok(())
    }
}

impl LogSigner {
    /// A key from 32 random bytes the caller drew (this crate draws no randomness).
    ///
    /// # Errors
    ///
    /// A name that signed notes do not allow (empty, with spaces or `+`).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteKeyError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(NoteKeyError::Key(format!("invalid key name {name:?}")));
        }
        Ok(LogSigner {
            name: name.to_string(),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// Reads the signed-note private key form `PRIVATE+KEY+name+keyid+base64`.
    ///
    /// # Errors
    ///
    /// A malformed key, another algorithm, or a key ID that does not match.
    pub fn from_skey(skey: &str) -> Result<Self, NoteKeyError> {
        let key = PrivateKey::parse(skey, ALG_ED25519, "an Ed25519")?;
        let signer = Self::from_seed(key.name, key.seed)?;
        key.check_id(signer.key_id())?;
        Ok(signer)
    }

    /// The private key in signed-note form, for the key file.
    pub fn to_skey(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_id(),
            BASE64_STANDARD.encode(key)
        )
    }

    /// The verifier key, `name+keyid+base64(0x01 || public key)`.
    pub fn vkey(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.name, &self.key.verifying_key())
    }

    /// The key's name, which is also the log's origin.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        let mut pubkey = vec![ALG_ED25519];
        pubkey.extend_from_slice(self.key.verifying_key().as_bytes());
        signed_note::key_id(&self.name, &pubkey)
    }

    /// A verifier of this key's signatures.
    pub fn verifier(&self) -> Box<dyn Verifier> {
        // The vkey we format always parses.
        match parse_verifier(&self.vkey()) {
            Ok(v) => v,
            Err(_) => unreachable!("a formatted verifier key parses"),
        }
    }

    /// The signed checkpoint of the tree of `size` entries with root `root`.
    ///
    /// # Errors
    ///
    /// Signing failed.
    pub fn sign_checkpoint(&self, size: u64, root: Hash) -> Result<Vec<u8>, NoteKeyError> {
        let text = Checkpoint {
            origin: self.name.clone(),
            size,
            root,
        }
        .text();
        let mut note =
            Note::new(text.as_bytes(), &[]).map_err(|e| NoteKeyError::Malformed(e.to_string()))?;
        note.add_sigs(&[self])
            .map_err(|e| NoteKeyError::Malformed(e.to_string()))?;
        Ok(note.to_bytes())
    }
}

impl signed_note::Signer for LogSigner {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        LogSigner::key_id(self)
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// Parses a verifier key: `name+keyid+base64(type || key)`, type 0x01 (a log's Ed25519
/// key) or 0x04 (a witness's cosignature/v1 key).
///
/// # Errors
///
/// A malformed key, an unknown type, a key ID that does not match.
pub fn parse_verifier(vkey: &str) -> Result<Box<dyn Verifier>, NoteKeyError> {
    let vkey = vkey.trim();
    let bad = |why: &str| NoteKeyError::Key(format!("{why}: {vkey:?}"));
    // Names and key IDs hold no `+`; the base64 key may.
    let key64 = vkey
        .splitn(3, '+')
        .nth(2)
        .ok_or_else(|| bad("not a verifier key"))?;
    let key = BASE64_STANDARD
        .decode(key64)
        .map_err(|_| bad("the key is not base64"))?;
    match key.first() {
        Some(&ALG_ED25519) => Ok(Box::new(
            signed_note::StandardVerifier::new(vkey).map_err(|e| bad(&e.to_string()))?,
        )),
        Some(&crate::cosign::ALG_COSIGNATURE_V1) => Ok(Box::new(CosignatureVerifier::new(vkey)?)),
        _ => Err(bad("unknown verifier key type")),
    }
}

/// A checkpoint's text: origin, tree size, root hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text, `origin\nsize\nbase64(root)\n`.
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64_STANDARD.encode(self.root.0)
        )
    }
}

/// A checkpoint whose log signature verified.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    /// The log's origin.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root: Hash,
    /// The note text that was signed.
    pub text: Vec<u8>,
}

/// Parses a signed checkpoint and checks the log's signature on it (other signatures, such
/// as witnesses' cosignatures, are ignored here; see [`crate::cosign::verified_cosigners`]).
///
/// # Errors
///
/// A malformed note or checkpoint, no signature of `log`, or one that does not verify.
pub fn open_checkpoint(bytes: &[u8], log: &dyn Verifier) -> Result<SignedCheckpoint, NoteKeyError> {
    let note = Note::from_bytes(bytes).map_err(|e| NoteKeyError::Malformed(e.to_string()))?;
    match note.verify(&One(log)) {
        Ok(_) => {}
        Err(signed_note::NoteError::UnverifiedNote) => {
            return Err(NoteKeyError::Unsigned(log.name().to_string()));
        }
        Err(signed_note::NoteError::InvalidSignature { .. }) => {
            return Err(NoteKeyError::BadSignature(log.name().to_string()));
        }
        Err(e) => return Err(NoteKeyError::Malformed(e.to_string())),
    }
    let cp = tlog_tiles::Checkpoint::from_bytes(note.text())
        .map_err(|e| NoteKeyError::Malformed(e.to_string()))?;
    Ok(SignedCheckpoint {
        origin: cp.origin().to_string(),
        size: cp.size(),
        root: *cp.hash(),
        text: note.text().to_vec(),
    })
}

/// One borrowed verifier as a `Verifiers` set (`VerifierList` owns `'static` boxes).
struct One<'a>(&'a dyn Verifier);

impl Verifiers for One<'_> {
    fn verifier(&self, name: &str, id: u32) -> Result<&dyn Verifier, VerificationError> {
        if name == self.0.name() && id == self.0.key_id() {
            Ok(self.0)
        } else {
            Err(VerificationError::UnknownKey {
                name: name.to_string(),
                id,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_agree_with_signed_note() {
        let signer = LogSigner::from_seed("lumen.example/a", [1; 32]).unwrap();
        let skey = signer.to_skey();
        // signed_note reads our private key form and signs the same bytes.
        let theirs = signed_note::StandardSigner::new(&skey).unwrap();
        assert_eq!(
            signed_note::Signer::key_id(&theirs),
            signed_note::Signer::key_id(&signer)
        );
        let again = LogSigner::from_skey(&skey).unwrap();
        assert_eq!(again.vkey(), signer.vkey());
        assert!(signer.vkey().starts_with("lumen.example/a+"));
        assert!(LogSigner::from_skey(&skey.replace("lumen.example/a", "other")).is_err());
        assert!(LogSigner::from_skey("PRIVATE+KEY+x+00000000+AAAA").is_err());
        assert!(LogSigner::from_seed("has space", [0; 32]).is_err());
    }

    #[test]
    fn the_c2sp_signed_note_example_verifies() {
        // From c2sp.org/signed-note: the example note and its verifier key.
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let note = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let v = parse_verifier(vkey).unwrap();
        let n = Note::from_bytes(note.as_bytes()).unwrap();
        n.verify(&One(&*v)).unwrap();
        // Ed25519 is deterministic: our key form of the spec's private key signs the same.
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let signer = LogSigner::from_skey(skey).unwrap();
        assert_eq!(signer.vkey(), vkey);
        assert_eq!(signer.to_skey(), skey);
        let mut mine = Note::new(n.text(), &[]).unwrap();
        mine.add_sigs(&[&signer]).unwrap();
        assert_eq!(mine.to_bytes(), note.as_bytes());
    }

    #[test]
    fn checkpoints_are_signed_and_checked() {
        let signer = LogSigner::from_seed("lumen.example/a", [1; 32]).unwrap();
        let root = tlog_tiles::record_hash(b"x");
        let cp = signer.sign_checkpoint(1, root).unwrap();
        let text = String::from_utf8(cp.clone()).unwrap();
        assert!(text.starts_with("lumen.example/a\n1\n"), "{text}");
        assert!(text.contains("\n\n— lumen.example/a "), "{text}");
        let opened = open_checkpoint(&cp, &*signer.verifier()).unwrap();
        assert_eq!((opened.size, opened.root), (1, root));
        // Another key of the same name.
        let other = LogSigner::from_seed("lumen.example/a", [2; 32]).unwrap();
        assert_eq!(
            open_checkpoint(&cp, &*other.verifier()),
            Err(NoteKeyError::Unsigned("lumen.example/a".into()))
        );
        // A changed root.
        let forged = text.replacen("\n1\n", "\n2\n", 1);
        assert_eq!(
            open_checkpoint(forged.as_bytes(), &*signer.verifier()),
            Err(NoteKeyError::BadSignature("lumen.example/a".into()))
        );
    }
}
