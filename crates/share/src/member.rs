//! This node and the consortium's members (`[node]`, `[[consortium.member]]`).

use signed_note::Verifier;

/// Why a membership list is not usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemberError {
    /// A member's or the node's id is not acceptable.
    #[error("node id {0:?} must be 1 to 64 letters, digits, '.', '_' or '-'")]
    BadId(String),
    /// The same id twice.
    #[error("consortium member {0} is listed twice")]
    Duplicate(String),
    /// A verifier key that does not parse as an Ed25519 signed-note key.
    #[error("the key of consortium member {0} is not an Ed25519 verifier key (name+keyid+base64)")]
    BadKey(String),
    /// A base URL that is not http(s).
    #[error("the url of consortium member {0} must start with http:// or https://")]
    BadUrl(String),
}

/// Checks a node id: 1 to 64 ASCII letters, digits, `.`, `_` or `-`.
pub fn check_id(id: &str) -> Result<(), MemberError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(MemberError::BadId(id.to_string()));
    }
    Ok(())
}

/// A member of the consortium.
pub struct Member {
    /// Its node id (the `keyid` of its signatures).
    pub id: String,
    /// Its name, shown to users (the hospital's name); the id when not configured.
    pub name: String,
    /// Its HTTP base URL, without a trailing `/`.
    pub url: String,
    /// Its DICOM address, `AET@HOST:PORT`, when known.
    pub dicom: Option<String>,
    /// Its verifier key as configured.
    pub vkey: String,
    verifier: signed_note::StandardVerifier,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// A member from its configuration.
    ///
    /// # Errors
    ///
    /// A bad id, URL or key.
    pub fn new(
        id: &str,
        name: Option<&str>,
        url: &str,
        dicom: Option<&str>,
        vkey: &str,
    ) -> Result<Member, MemberError> {
        check_id(id)?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(MemberError::BadUrl(id.to_string()));
        }
        let verifier = signed_note::StandardVerifier::new(vkey.trim())
            .map_err(|_| MemberError::BadKey(id.to_string()))?;
        Ok(Member {
            id: id.to_string(),
            name: name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(id)
                .to_string(),
            url: url.trim_end_matches('/').to_string(),
            dicom: dicom.map(str::to_string),
            vkey: vkey.trim().to_string(),
            verifier,
        })
    }

    /// Whether `sig` is this member's Ed25519 signature of `msg`.
    pub fn verifies(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.verifier.verify(msg, sig)
    }
}

/// This node and its consortium.
#[derive(Debug)]
pub struct Consortium {
    /// This node's id.
    pub node_id: String,
    /// This node's name.
    pub node_name: String,
    /// The other members (this node excluded).
    pub members: Vec<Member>,
}

impl Consortium {
    /// The consortium of node `node_id` (named `node_name`) with `members`; an entry for
    /// this node itself is dropped (one list can be shared by every member's configuration).
    ///
    /// # Errors
    ///
    /// A bad node id, or a member listed twice.
    pub fn new(
        node_id: &str,
        node_name: &str,
        members: Vec<Member>,
    ) -> Result<Consortium, MemberError> {
        check_id(node_id)?;
        let mut kept: Vec<Member> = Vec::new();
        for m in members {
            if m.id == node_id {
                continue;
            }
            if kept.iter().any(|k| k.id == m.id) {
                return Err(MemberError::Duplicate(m.id));
            }
            kept.push(m);
        }
        Ok(Consortium {
            node_id: node_id.to_string(),
            node_name: node_name.to_string(),
            members: kept,
        })
    }

    /// The member with id `id`.
    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
}
