//! The C2SP tlog-witness protocol: the `add-checkpoint` request a log sends, and the
//! witness's decision on it (cosign an extension of what it cosigned before; refuse a fork
//! or a rollback with 409 and its current size).
//!
//! Persisting the witness's state (the latest cosigned size and root per origin) is the
//! caller's: it must read, decide and persist atomically (see the race in the spec).

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use signed_note::Verifier;
use tlog_tiles::Hash;

use crate::cosign::Cosigner;
use crate::log::verify_consistency;
use crate::note::{NoteKeyError, open_checkpoint};

/// The body of `POST <prefix>/add-checkpoint`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the witness last cosigned, as the log believes.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint.
    pub checkpoint: Vec<u8>,
}

impl AddCheckpoint {
    /// The request body: `old <size>\n`, one base64 hash per line, an empty line, the
    /// checkpoint.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size).into_bytes();
        for h in &self.proof {
            out.extend_from_slice(BASE64_STANDARD.encode(h.0).as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.checkpoint);
        out
    }

    /// Parses a request body.
    ///
    /// # Errors
    ///
    /// [`WitnessError::BadRequest`] for anything malformed.
    pub fn parse(body: &[u8]) -> Result<Self, WitnessError> {
        let bad = |why: &str| WitnessError::BadRequest(why.to_string());
        let mut rest = body;
        let mut line = || -> Result<&[u8], WitnessError> {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| bad("unterminated line"))?;
            let (l, tail) = rest.split_at(end);
            rest = &tail[1..];
            Ok(l)
        };
        let first = std::str::from_utf8(line()?).map_err(|_| bad("not UTF-8"))?;
        let old = first
            .strip_prefix("old ")
            .ok_or_else(|| bad("the first line is not `old <size>`"))?;
        if old.is_empty()
            || !old.bytes().all(|b| b.is_ascii_digit())
            || (old.len() > 1 && old.starts_with('0'))
        {
            return Err(bad("malformed old size"));
        }
        let old_size = old.parse().map_err(|_| bad("malformed old size"))?;
        let mut proof = Vec::new();
        loop {
            let l = line()?;
            if l.is_empty() {
                break;
            }
            if proof.len() == 63 {
                return Err(bad("more than 63 proof lines"));
            }
            let h: [u8; 32] = BASE64_STANDARD
                .decode(l)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| bad("a proof line is not a base64 hash"))?;
            proof.push(Hash(h));
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: rest.to_vec(),
        })
    }
}

/// Why a witness refused a checkpoint, with the HTTP status the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// 400: a malformed request, or an old size larger than the checkpoint's.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 403: no signature of the log's key verifies.
    #[error("the checkpoint is not signed by the log: {0}")]
    Forbidden(String),
    /// 404: a log this witness does not witness.
    #[error("unknown log {0}")]
    UnknownLog(String),
    /// 409: the old size is not the size this witness last cosigned, or a checkpoint of
    /// that size with another root (a fork).
    #[error("conflict: this witness last cosigned size {size}")]
    Conflict {
        /// The size this witness last cosigned (the 409 body).
        size: u64,
    },
    /// 422: the consistency proof does not verify.
    #[error("the consistency proof does not verify: {0}")]
    BadProof(String),
}

impl WitnessError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            WitnessError::BadRequest(_) => 400,
            WitnessError::Forbidden(_) => 403,
            WitnessError::UnknownLog(_) => 404,
            WitnessError::Conflict { .. } => 409,
            WitnessError::BadProof(_) => 422,
        }
    }
}

/// What a witness last cosigned of one log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WitnessState {
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root: Hash,
}

/// A witness's answer to an accepted checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The new state to persist (before answering).
    pub state: WitnessState,
    /// The response body: the cosignature line.
    pub body: String,
}

/// Decides an `add-checkpoint` request for a log whose verifier is `log` and whose origin
/// is `origin`, given what this witness last cosigned of it (`None`: never).
///
/// # Errors
///
/// The refusals of c2sp.org/tlog-witness, each with its status.
pub fn add_checkpoint(
    req: &AddCheckpoint,
    origin: &str,
    log: &dyn Verifier,
    last: Option<WitnessState>,
    cosigner: &Cosigner,
    now: u64,
) -> Result<Accepted, WitnessError> {
    let cp = open_checkpoint(&req.checkpoint, log).map_err(|e| match e {
        NoteKeyError::Malformed(m) => WitnessError::BadRequest(m),
        other => WitnessError::Forbidden(other.to_string()),
    })?;
    if cp.origin != origin {
        return Err(WitnessError::UnknownLog(cp.origin));
    }
    if req.old_size > cp.size {
        return Err(WitnessError::BadRequest(format!(
            "old size {} exceeds the checkpoint's size {}",
            req.old_size, cp.size
        )));
    }
    let last_size = last.map_or(0, |s| s.size);
    if req.old_size != last_size {
        return Err(WitnessError::Conflict { size: last_size });
    }
    if let Some(last) = last {
        if last.size == cp.size && last.root != cp.root {
            // Two checkpoints of one size with different roots: a fork.
            return Err(WitnessError::Conflict { size: last.size });
        }
        verify_consistency(last.size, last.root, cp.size, cp.root, &req.proof)
            .map_err(|e| WitnessError::BadProof(e.to_string()))?;
    } else if !req.proof.is_empty() {
        return Err(WitnessError::BadProof(
            "a proof from size 0 must be empty".into(),
        ));
    }
    Ok(Accepted {
        state: WitnessState {
            size: cp.size,
            root: cp.root,
        },
        body: cosigner.cosign(&cp.text, now),
    })
}

/// Reads the body of a 409 answer (`text/x.tlog.size`): the witness's current size.
pub fn parse_conflict(body: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(body).ok()?.strip_suffix('\n')?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosign::{CosignatureVerifier, add_cosignatures, verified_cosigners};
    use crate::log::{consistency_proof, integrate};
    use crate::note::LogSigner;
    use crate::tiles::MemoryStore;

    #[test]
    fn the_spec_example_request_parses() {
        let body = "old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\njrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
        let req = AddCheckpoint::parse(body.as_bytes()).unwrap();
        assert_eq!(req.old_size, 20_852_014);
        assert_eq!(req.proof.len(), 2);
        assert!(req.checkpoint.starts_with(b"example.com/behind-the-sofa\n"));
        assert_eq!(req.to_bytes(), body.as_bytes());
        for bad in [
            "old 01\n\n",
            "old x\n\n",
            "new 1\n\n",
            "old 1\nnot-base64\n\n",
            "old 1",
        ] {
            assert!(AddCheckpoint::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(parse_conflict(b"42\n"), Some(42));
        assert_eq!(parse_conflict(b"42"), None);
    }

    /// A split view: the log shows one tree of size 3 to witness A and another to witness
    /// B. Each cosigns what it saw, but neither checkpoint gathers a quorum of 2, and as
    /// soon as the log grows either view, the witness that saw the other refuses it.
    #[test]
    fn a_fork_shown_to_two_witnesses_never_reaches_a_quorum_and_is_caught_when_it_grows() {
        let log = LogSigner::from_seed("lumen.example/a", [1; 32]).unwrap();
        let a = Cosigner::from_seed("lumen.example/wa", [2; 32]).unwrap();
        let b = Cosigner::from_seed("lumen.example/wb", [3; 32]).unwrap();
        let (av, bv) = (
            CosignatureVerifier::new(&a.vkey()).unwrap(),
            CosignatureVerifier::new(&b.vkey()).unwrap(),
        );
        let both = [av.clone(), bv.clone()];
        let lv = log.verifier();
        let (mut x, mut y) = (MemoryStore::default(), MemoryStore::default());
        let seen_by_a =
            integrate(&mut x, &log, &[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]).unwrap();
        let seen_by_b =
            integrate(&mut y, &log, &[b"a".to_vec(), b"b".to_vec(), b"X".to_vec()]).unwrap();
        let first = |cp: &[u8]| AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: cp.to_vec(),
        };
        let ok_a = add_checkpoint(
            &first(&seen_by_a.checkpoint),
            "lumen.example/a",
            &*lv,
            None,
            &a,
            1,
        )
        .unwrap();
        let ok_b = add_checkpoint(
            &first(&seen_by_b.checkpoint),
            "lumen.example/a",
            &*lv,
            None,
            &b,
            1,
        )
        .unwrap();
        assert_eq!(ok_a.state.size, ok_b.state.size);
        assert_ne!(ok_a.state.root, ok_b.state.root);
        // Each checkpoint carries one valid cosignature of the two: no quorum of 2.
        for (cp, ok) in [
            (&seen_by_a.checkpoint, &ok_a),
            (&seen_by_b.checkpoint, &ok_b),
        ] {
            let with = add_cosignatures(cp, ok.body.as_bytes(), &both).unwrap();
            assert_eq!(verified_cosigners(&with, &both).unwrap().len(), 1);
        }
        // The log grows A's view and shows it to B: B's tree is not a prefix of it.
        let grown = integrate(&mut x, &log, &[b"d".to_vec()]).unwrap();
        let req = AddCheckpoint {
            old_size: 3,
            proof: consistency_proof(&x, 3, 4).unwrap(),
            checkpoint: grown.checkpoint.clone(),
        };
        let err =
            add_checkpoint(&req, "lumen.example/a", &*lv, Some(ok_b.state), &b, 2).unwrap_err();
        assert_eq!(err.status(), 422, "{err:?}");
        // A, which saw that view, accepts it.
        assert!(add_checkpoint(&req, "lumen.example/a", &*lv, Some(ok_a.state), &a, 2).is_ok());
    }

    #[test]
    fn a_witness_cosigns_extensions_and_refuses_forks_and_rollbacks() {
        let log = LogSigner::from_seed("lumen.example/a", [1; 32]).unwrap();
        let w = Cosigner::from_seed("lumen.example/w", [2; 32]).unwrap();
        let wv = CosignatureVerifier::new(&w.vkey()).unwrap();
        let lv = log.verifier();
        let mut store = MemoryStore::default();
        let first = integrate(&mut store, &log, &[b"a".to_vec(), b"b".to_vec()]).unwrap();
        let req = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: first.checkpoint.clone(),
        };
        let ok = add_checkpoint(&req, "lumen.example/a", &*lv, None, &w, 100).unwrap();
        let with = add_cosignatures(
            &first.checkpoint,
            ok.body.as_bytes(),
            std::slice::from_ref(&wv),
        )
        .unwrap();
        assert_eq!(
            verified_cosigners(&with, std::slice::from_ref(&wv))
                .unwrap()
                .len(),
            1
        );
        let state = ok.state;

        let second = integrate(&mut store, &log, &[b"c".to_vec()]).unwrap();
        let proof = consistency_proof(&store, 2, 3).unwrap();
        let mut req = AddCheckpoint {
            old_size: 2,
            proof: proof.clone(),
            checkpoint: second.checkpoint.clone(),
        };
        let ok = add_checkpoint(&req, "lumen.example/a", &*lv, Some(state), &w, 101).unwrap();
        assert_eq!(ok.state.size, 3);

        // A stale old size: 409 with the current size.
        req.old_size = 0;
        assert_eq!(
            add_checkpoint(&req, "lumen.example/a", &*lv, Some(ok.state), &w, 102),
            Err(WitnessError::Conflict { size: 3 })
        );
        // A fork: another tree of size 3, signed by the same log key.
        let mut fork = MemoryStore::default();
        let forked = integrate(
            &mut fork,
            &log,
            &[b"a".to_vec(), b"b".to_vec(), b"X".to_vec()],
        )
        .unwrap();
        let fork_req = AddCheckpoint {
            old_size: 3,
            proof: vec![],
            checkpoint: forked.checkpoint.clone(),
        };
        let err = add_checkpoint(&fork_req, "lumen.example/a", &*lv, Some(ok.state), &w, 103)
            .unwrap_err();
        assert_eq!(
            (err.status(), err.clone()),
            (409, WitnessError::Conflict { size: 3 })
        );
        // A fork that claims to extend size 2: the proof fails.
        let fork_req = AddCheckpoint {
            old_size: 2,
            proof: consistency_proof(&fork, 2, 3).unwrap(),
            checkpoint: forked.checkpoint.clone(),
        };
        let alt = WitnessState {
            size: 2,
            root: first.root,
        };
        let mut wrong = alt;
        wrong.root.0[0] ^= 1;
        assert_eq!(
            add_checkpoint(&fork_req, "lumen.example/a", &*lv, Some(wrong), &w, 104)
                .unwrap_err()
                .status(),
            422
        );
        // A rollback: old size larger than the checkpoint.
        let back = AddCheckpoint {
            old_size: 3,
            proof: vec![],
            checkpoint: first.checkpoint.clone(),
        };
        assert_eq!(
            add_checkpoint(&back, "lumen.example/a", &*lv, Some(ok.state), &w, 105)
                .unwrap_err()
                .status(),
            400
        );
        // Another key: 403; another origin: 404.
        let other = LogSigner::from_seed("lumen.example/a", [5; 32]).unwrap();
        assert_eq!(
            add_checkpoint(&req, "lumen.example/a", &*other.verifier(), None, &w, 106)
                .unwrap_err()
                .status(),
            403
        );
        let req0 = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: first.checkpoint,
        };
        assert_eq!(
            add_checkpoint(&req0, "lumen.example/b", &*lv, None, &w, 107)
                .unwrap_err()
                .status(),
            404
        );
    }
}
