//! Lumen's log entries: salted commitments to events, so that the public log holds no
//! patient data.
//!
//! An entry is the event's type, its time and `SHA-256(salt || canonical event)`. Whoever
//! holds the event and its salt (the node's index) can show that it is in the log; the log
//! alone reveals nothing; deleting the salt (a PIPL Art. 47 request) makes the entry
//! unlinkable without changing the tree.

use sha2::{Digest, Sha256};

/// A commitment: `SHA-256(salt || canonical event)`.
pub type Commitment = [u8; 32];

/// An event as the ledger commits to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event type (`report.signed`, `report.addendum`, `study.exported`, ...).
    pub kind: &'a str,
    /// The study's instance UID.
    pub study_uid: &'a str,
    /// Who acted (an account name or AE title).
    pub actor: &'a str,
    /// The actor's organisation.
    pub org: &'a str,
    /// When, as the index records it (milliseconds since the epoch, in decimal).
    pub time: &'a str,
    /// The UIDs of the objects concerned (the signed report's SOP instances, ...).
    pub objects: &'a [String],
}

impl Event<'_> {
    /// The canonical form: a version tag, then each field as a big-endian `u32` length and
    /// its bytes, the objects preceded by their count (no separator can be forged).
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = b"lumen-event/v1".to_vec();
        let mut field = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        for f in [self.kind, self.study_uid, self.actor, self.org, self.time] {
            field(f.as_bytes());
        }
        field(&(self.objects.len() as u32).to_be_bytes());
        for o in self.objects {
            field(o.as_bytes());
        }
        out
    }

    /// The commitment to this event under `salt`.
    pub fn commit(&self, salt: &[u8; 32]) -> Commitment {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(self.canonical());
        h.finalize().into()
    }
}

/// One log entry, as published in the entry bundles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The event type.
    pub kind: String,
    /// The time of the event, POSIX seconds.
    pub time: i64,
    /// The salted commitment.
    pub commitment: Commitment,
}

impl LedgerEntry {
    /// The entry's bytes: `lumen/v1 <kind> <time> <hex commitment>` (one line, no newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        format!(
            "lumen/v1 {} {} {}",
            self.kind,
            self.time,
            hex::encode(self.commitment)
        )
        .into_bytes()
    }

    /// Parses an entry's bytes.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(bytes).ok()?;
        let mut parts = s.split(' ');
        if parts.next()? != "lumen/v1" {
            return None;
        }
        let kind = parts.next()?;
        let time = parts.next()?.parse().ok()?;
        let commitment = hex::decode(parts.next()?).ok()?.try_into().ok()?;
        if parts.next().is_some() || !valid_kind(kind) {
            return None;
        }
        Some(LedgerEntry {
            kind: kind.to_string(),
            time,
            commitment,
        })
    }
}

/// Whether `kind` is a valid event type: lower-case letters, digits, `.`, `-`, `_`.
pub fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitments_bind_every_field_and_the_salt() {
        let objects = vec!["1.2.3.4".to_string()];
        let e = Event {
            kind: "report.signed",
            study_uid: "1.2.3",
            actor: "dr",
            org: "a",
            time: "1790000000000",
            objects: &objects,
        };
        let c = e.commit(&[1; 32]);
        assert_ne!(c, e.commit(&[2; 32]));
        // Moving a byte between fields changes the canonical form.
        let f = Event {
            actor: "d",
            org: "ra",
            ..e.clone()
        };
        assert_ne!(c, f.commit(&[1; 32]));
        let none: Vec<String> = vec![];
        assert_ne!(
            c,
            Event {
                objects: &none,
                ..e.clone()
            }
            .commit(&[1; 32])
        );
        let entry = LedgerEntry {
            kind: "report.signed".into(),
            time: 1_790_000_000,
            commitment: c,
        };
        assert_eq!(LedgerEntry::parse(&entry.to_bytes()), Some(entry.clone()));
        assert_eq!(LedgerEntry::parse(b"lumen/v1 Bad 1 00"), None);
    }
}
