//! RFC 9421 HTTP Message Signatures between consortium nodes, with the node's Ed25519 key
//! (the ledger's key; `alg="ed25519"`, RFC 9421 3.3.6), and RFC 9530 `Content-Digest`.
//!
//! A request covers `@method`, `@path`, `@query`, `content-digest` (SHA-256 of the body, an
//! empty one included) and `lumen-node-to` (the recipient's node id, so that a request
//! signed for one member cannot be replayed to another), with the parameters `created`,
//! `keyid` (the sender's node id), `alg` and `nonce`:
//!
//! ```text
//! Content-Digest: sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:
//! Lumen-Node-To: hospital-b
//! Signature-Input: sig1=("@method" "@path" "@query" "content-digest" "lumen-node-to");created=1700000000;keyid="clinic-a";alg="ed25519";nonce="..."
//! Signature: sig1=:BASE64:
//! ```
//!
//! `@target-uri` and `@authority` are not covered: behind a reverse proxy the recipient
//! does not see the URI the sender used, while the recipient's id is the same everywhere.
//!
//! Why not a crate: the `httpsig` crates on crates.io bring their own key types and a
//! second Ed25519 stack; what Lumen needs (one algorithm, a fixed component list, the
//! structured fields it writes) is the signature base of RFC 9421 2.5, written here and
//! tested against its rules (good and bad signatures, other keys, expired, tampered body).

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use sha2::{Digest, Sha256};

use crate::member::{Consortium, Member};

/// The components every node request covers, in this order.
pub const COMPONENTS: [&str; 5] = [
    "@method",
    "@path",
    "@query",
    "content-digest",
    "lumen-node-to",
];

/// The header naming the recipient node.
pub const NODE_TO: &str = "lumen-node-to";

/// The signature's label.
const LABEL: &str = "sig1";

/// Why a node request was not signed or not accepted. The web layer answers every one of
/// them alike (401, no detail); the reason goes to the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A header the scheme needs is absent.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header does not parse.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The signature does not cover what it must.
    #[error("the signature does not cover {0}")]
    NotCovered(&'static str),
    /// An algorithm other than ed25519.
    #[error("unsupported signature algorithm")]
    Algorithm,
    /// The key id is not a member of the consortium.
    #[error("unknown key id")]
    UnknownKey,
    /// `created` is outside the accepted window.
    #[error("signature created outside the accepted window")]
    Expired,
    /// The request was signed for another node.
    #[error("request addressed to another node")]
    WrongRecipient,
    /// The body does not match its Content-Digest.
    #[error("content digest mismatch")]
    Digest,
    /// The signature does not verify with the member's key.
    #[error("bad signature")]
    BadSignature,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
}

/// The headers to add to a signed request (names in lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Content-Digest`.
    pub content_digest: String,
    /// `Lumen-Node-To`.
    pub node_to: String,
    /// `Signature-Input`.
    pub signature_input: String,
    /// `Signature`.
    pub signature: String,
}

impl SignedHeaders {
    /// The headers as (name, value) pairs.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            ("content-digest", &self.content_digest),
            (NODE_TO, &self.node_to),
            ("signature-input", &self.signature_input),
            ("signature", &self.signature),
        ]
    }
}

/// A request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// The sender's node id.
    pub keyid: String,
    /// When it was signed (POSIX seconds).
    pub created: u64,
    /// Its nonce, for a replay check.
    pub nonce: Option<String>,
}

/// `sha-256=:BASE64:` of `body` (RFC 9530).
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", BASE64_STANDARD.encode(Sha256::digest(body)))
}

fn split_path(path_and_query: &str) -> (&str, &str) {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_and_query, ""),
    };
    (if path.is_empty() { "/" } else { path }, query)
}

/// The signature base (RFC 9421 2.5) of the covered components and the params string.
fn signature_base(values: &[(&str, String)], params: &str) -> String {
    let mut base = String::new();
    for (name, value) in values {
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params}"));
    base
}

fn component_values(
    method: &str,
    path_and_query: &str,
    digest: &str,
    to: &str,
) -> Vec<(&'static str, String)> {
    let (path, query) = split_path(path_and_query);
    vec![
        ("@method", method.to_ascii_uppercase()),
        ("@path", path.to_string()),
        ("@query", format!("?{query}")),
        ("content-digest", digest.to_string()),
        (NODE_TO, to.to_string()),
    ]
}

/// Signs a request from node `keyid` to node `to`: `method` on `path_and_query` (the
/// request target, `/consortium/shares?x=1`) with `body`, at `created` (POSIX seconds),
/// with a fresh `nonce` the caller drew.
///
/// # Errors
///
/// The signer failed.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    signer: &dyn signed_note::Signer,
    keyid: &str,
    to: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    created: u64,
    nonce: &str,
) -> Result<SignedHeaders, SignError> {
    let digest = content_digest(body);
    let values = component_values(method, path_and_query, &digest, to);
    let list: Vec<String> = COMPONENTS.iter().map(|c| format!("\"{c}\"")).collect();
    let params = format!(
        "({});created={created};keyid=\"{keyid}\";alg=\"ed25519\";nonce=\"{nonce}\"",
        list.join(" ")
    );
    let sig = signer
        .sign(signature_base(&values, &params).as_bytes())
        .map_err(|_| SignError::Signing)?;
    Ok(SignedHeaders {
        content_digest: digest,
        node_to: to.to_string(),
        signature_input: format!("{LABEL}={params}"),
        signature: format!("{LABEL}=:{}:", BASE64_STANDARD.encode(sig)),
    })
}

/// A parsed `Signature-Input` member: label, covered components, params string and the
/// parameters Lumen reads.
struct Input<'a> {
    label: &'a str,
    components: Vec<&'a str>,
    params: &'a str,
    created: Option<u64>,
    keyid: Option<&'a str>,
    alg: Option<&'a str>,
    nonce: Option<&'a str>,
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.strip_prefix('"')?.strip_suffix('"')?;
    (!s.contains(['"', '\\'])).then_some(s)
}

fn parse_input(h: &str) -> Result<Input<'_>, SignError> {
    let bad = SignError::Malformed("Signature-Input");
    // One signature only (several, comma-separated, are not needed between nodes).
    let (label, params) = h.trim().split_once('=').ok_or(bad.clone())?;
    let inner = params.strip_prefix('(').ok_or(bad.clone())?;
    let (list, rest) = inner.split_once(')').ok_or(bad.clone())?;
    let components = list
        .split_whitespace()
        .map(|c| unquote(c).ok_or(bad.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut input = Input {
        label: label.trim(),
        components,
        params,
        created: None,
        keyid: None,
        alg: None,
        nonce: None,
    };
    for p in rest.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').ok_or(bad.clone())?;
        match k {
            "created" => input.created = Some(v.parse().map_err(|_| bad.clone())?),
            "keyid" => input.keyid = Some(unquote(v).ok_or(bad.clone())?),
            "alg" => input.alg = Some(unquote(v).ok_or(bad.clone())?),
            "nonce" => input.nonce = Some(unquote(v).ok_or(bad.clone())?),
            "expires" | "tag" => {}
            _ => return Err(bad),
        }
    }
    Ok(input)
}

/// The signature bytes of `label` in a `Signature` header.
fn parse_signature(h: &str, label: &str) -> Result<Vec<u8>, SignError> {
    let bad = SignError::Malformed("Signature");
    for member in h.split(',') {
        let Some((l, v)) = member.trim().split_once('=') else {
            return Err(bad);
        };
        if l.trim() == label {
            let b64 = v
                .trim()
                .strip_prefix(':')
                .and_then(|v| v.strip_suffix(':'))
                .ok_or(bad.clone())?;
            return BASE64_STANDARD.decode(b64).map_err(|_| bad);
        }
    }
    Err(SignError::Missing("Signature"))
}

/// Checks what can be checked before the body is read: the headers are there, the
/// signature covers what it must with ed25519, the key id is a member, `created` is within
/// `window` of `now` and the request is addressed to this node. A request that fails here
/// is refused without reading its body ([`verify`] checks all of it again, and the rest).
///
/// # Errors
///
/// As [`verify`].
pub fn precheck(
    consortium: &Consortium,
    header: impl Fn(&str) -> Option<String>,
    now: u64,
    window: u64,
) -> Result<(), SignError> {
    let input_h = header("signature-input").ok_or(SignError::Missing("Signature-Input"))?;
    header("signature").ok_or(SignError::Missing("Signature"))?;
    header("content-digest").ok_or(SignError::Missing("Content-Digest"))?;
    let to = header(NODE_TO).ok_or(SignError::Missing("Lumen-Node-To"))?;
    let input = parse_input(&input_h)?;
    for c in COMPONENTS {
        if !input.components.contains(&c) {
            return Err(SignError::NotCovered(c));
        }
    }
    if input.alg.is_some_and(|a| a != "ed25519") {
        return Err(SignError::Algorithm);
    }
    let keyid = input.keyid.ok_or(SignError::Missing("keyid"))?;
    consortium.member(keyid).ok_or(SignError::UnknownKey)?;
    let created = input.created.ok_or(SignError::Missing("created"))?;
    if created.abs_diff(now) > window {
        return Err(SignError::Expired);
    }
    if to.trim() != consortium.node_id {
        return Err(SignError::WrongRecipient);
    }
    Ok(())
}

/// Verifies a request received by the node of `consortium`: the method, the request
/// target (path and query as received), a header getter (case-insensitive names) and the
/// body; `now` in POSIX seconds, `window` the largest accepted distance of `created` from
/// it. Returns the request's signature facts and the member who signed it.
///
/// # Errors
///
/// Any failure of the scheme; the caller refuses the request (401) and audits the reason.
pub fn verify<'c>(
    consortium: &'c Consortium,
    method: &str,
    path_and_query: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
    now: u64,
    window: u64,
) -> Result<(VerifiedRequest, &'c Member), SignError> {
    let input_h = header("signature-input").ok_or(SignError::Missing("Signature-Input"))?;
    let sig_h = header("signature").ok_or(SignError::Missing("Signature"))?;
    let digest = header("content-digest").ok_or(SignError::Missing("Content-Digest"))?;
    let to = header(NODE_TO).ok_or(SignError::Missing("Lumen-Node-To"))?;
    let input = parse_input(&input_h)?;
    for c in COMPONENTS {
        if !input.components.contains(&c) {
            return Err(SignError::NotCovered(c));
        }
    }
    if input.alg.is_some_and(|a| a != "ed25519") {
        return Err(SignError::Algorithm);
    }
    let keyid = input.keyid.ok_or(SignError::Missing("keyid"))?;
    let member = consortium.member(keyid).ok_or(SignError::UnknownKey)?;
    let created = input.created.ok_or(SignError::Missing("created"))?;
    if created.abs_diff(now) > window {
        return Err(SignError::Expired);
    }
    if to.trim() != consortium.node_id {
        return Err(SignError::WrongRecipient);
    }
    if digest.trim() != content_digest(body) {
        return Err(SignError::Digest);
    }
    let sig = parse_signature(&sig_h, input.label)?;
    let all = component_values(method, path_and_query, digest.trim(), to.trim());
    // The components in the order the signer listed them.
    let values: Vec<(&str, String)> = input
        .components
        .iter()
        .map(|c| {
            all.iter()
                .find(|(n, _)| n == c)
                .map(|(n, v)| (*n, v.clone()))
                .ok_or(SignError::Malformed("Signature-Input"))
        })
        .collect::<Result<_, _>>()?;
    let base = signature_base(&values, input.params);
    if !member.verifies(base.as_bytes(), &sig) {
        return Err(SignError::BadSignature);
    }
    Ok((
        VerifiedRequest {
            keyid: keyid.to_string(),
            created,
            nonce: input.nonce.map(str::to_string),
        },
        member,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumen_ledger::LogSigner;

    fn key(name: &str, b: u8) -> LogSigner {
        LogSigner::from_seed(name, [b; 32]).expect("key")
    }

    /// Node B's view: members A (key a) and C (key c).
    fn consortium_b(a: &LogSigner, c: &LogSigner) -> Consortium {
        let m = |id: &str, k: &LogSigner| {
            Member::new(id, None, &format!("http://{id}"), None, &k.vkey()).expect("member")
        };
        Consortium::new(
            "hospital-b",
            "Hospital B",
            vec![m("clinic-a", a), m("clinic-c", c)],
        )
        .expect("consortium")
    }

    const NOW: u64 = 1_700_000_000;

    fn signed(k: &LogSigner, keyid: &str, body: &[u8]) -> SignedHeaders {
        sign(
            k,
            keyid,
            "hospital-b",
            "post",
            "/consortium/shares?x=1",
            body,
            NOW,
            "n1",
        )
        .expect("sign")
    }

    fn check(
        c: &Consortium,
        h: &SignedHeaders,
        method: &str,
        target: &str,
        body: &[u8],
        now: u64,
    ) -> Result<String, SignError> {
        let get = |n: &str| {
            h.pairs()
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.to_string())
        };
        verify(c, method, target, get, body, now, 300).map(|(v, m)| {
            assert_eq!(v.keyid, m.id);
            m.id.clone()
        })
    }

    #[test]
    fn a_good_signature_verifies_and_names_the_member() {
        let (a, c) = (key("lumen.local/a", 1), key("lumen.local/c", 3));
        let cons = consortium_b(&a, &c);
        let h = signed(&a, "clinic-a", b"{}");
        assert!(h.signature_input.starts_with(
            "sig1=(\"@method\" \"@path\" \"@query\" \"content-digest\" \"lumen-node-to\");created=1700000000;keyid=\"clinic-a\";alg=\"ed25519\""
        ));
        assert_eq!(
            check(&cons, &h, "POST", "/consortium/shares?x=1", b"{}", NOW + 10),
            Ok("clinic-a".into())
        );
        // RFC 9530's example: the digest of an empty body.
        assert_eq!(
            content_digest(b""),
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
        );
    }

    #[test]
    fn a_signature_of_another_key_or_an_unknown_member_is_refused() {
        let (a, c) = (key("lumen.local/a", 1), key("lumen.local/c", 3));
        let cons = consortium_b(&a, &c);
        // C signs but claims to be A.
        let forged = signed(&c, "clinic-a", b"{}");
        assert_eq!(
            check(&cons, &forged, "POST", "/consortium/shares?x=1", b"{}", NOW),
            Err(SignError::BadSignature)
        );
        // Not a member at all.
        let outsider = key("lumen.local/x", 9);
        let h = signed(&outsider, "clinic-x", b"{}");
        assert_eq!(
            check(&cons, &h, "POST", "/consortium/shares?x=1", b"{}", NOW),
            Err(SignError::UnknownKey)
        );
    }

    #[test]
    fn tampering_expiry_and_replay_elsewhere_are_refused() {
        let (a, c) = (key("lumen.local/a", 1), key("lumen.local/c", 3));
        let cons = consortium_b(&a, &c);
        let h = signed(&a, "clinic-a", b"{\"a\":1}");
        let t = "/consortium/shares?x=1";
        assert_eq!(
            check(&cons, &h, "POST", t, b"{\"a\":2}", NOW),
            Err(SignError::Digest)
        );
        // The digest header changed with the body: the signature no longer matches.
        let mut h2 = h.clone();
        h2.content_digest = content_digest(b"{\"a\":2}");
        assert_eq!(
            check(&cons, &h2, "POST", t, b"{\"a\":2}", NOW),
            Err(SignError::BadSignature)
        );
        assert_eq!(
            check(&cons, &h, "DELETE", t, b"{\"a\":1}", NOW),
            Err(SignError::BadSignature)
        );
        assert_eq!(
            check(
                &cons,
                &h,
                "POST",
                "/consortium/shares?x=2",
                b"{\"a\":1}",
                NOW
            ),
            Err(SignError::BadSignature)
        );
        assert_eq!(
            check(&cons, &h, "POST", t, b"{\"a\":1}", NOW + 301),
            Err(SignError::Expired)
        );
        assert_eq!(
            check(&cons, &h, "POST", t, b"{\"a\":1}", NOW - 301),
            Err(SignError::Expired)
        );
        // Signed for hospital-b, presented to clinic-c.
        let cons_c = Consortium::new(
            "clinic-c",
            "C",
            vec![Member::new("clinic-a", None, "http://a", None, &a.vkey()).expect("m")],
        )
        .expect("c");
        assert_eq!(
            check(&cons_c, &h, "POST", t, b"{\"a\":1}", NOW),
            Err(SignError::WrongRecipient)
        );
        // The headers alone already tell an outsider, a stale or a misaddressed request.
        let get = |h: &SignedHeaders| {
            let pairs: Vec<(String, String)> = h
                .pairs()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        };
        assert_eq!(precheck(&cons, get(&h), NOW, 300), Ok(()));
        assert_eq!(
            precheck(&cons, get(&h), NOW + 301, 300),
            Err(SignError::Expired)
        );
        assert_eq!(
            precheck(&cons_c, get(&h), NOW, 300),
            Err(SignError::WrongRecipient)
        );
        let outsider = sign(
            &key("x", 9),
            "clinic-x",
            "hospital-b",
            "POST",
            t,
            b"",
            NOW,
            "n",
        )
        .expect("sign");
        assert_eq!(
            precheck(&cons, get(&outsider), NOW, 300),
            Err(SignError::UnknownKey)
        );
        // A signature covering less than the scheme asks is refused.
        let mut h3 = h.clone();
        h3.signature_input = h3.signature_input.replace(" \"lumen-node-to\"", "");
        assert_eq!(
            check(&cons, &h3, "POST", t, b"{\"a\":1}", NOW),
            Err(SignError::NotCovered("lumen-node-to"))
        );
        let mut h4 = h.clone();
        h4.signature = "sig1=:AAAA:".into();
        assert_eq!(
            check(&cons, &h4, "POST", t, b"{\"a\":1}", NOW),
            Err(SignError::BadSignature)
        );
    }

    #[test]
    fn members_need_ed25519_keys_and_unique_ids() {
        let a = key("lumen.local/a", 1);
        assert!(Member::new("a", None, "http://a", None, "not a key").is_err());
        assert!(Member::new("a b", None, "http://a", None, &a.vkey()).is_err());
        assert!(Member::new("a", None, "ftp://a", None, &a.vkey()).is_err());
        let m = || Member::new("a", None, "http://a/", None, &a.vkey()).expect("m");
        assert_eq!(m().url, "http://a");
        assert!(Consortium::new("b", "B", vec![m(), m()]).is_err());
        // The node's own entry is dropped from its list.
        let c = Consortium::new("a", "A", vec![m()]).expect("c");
        assert!(c.members.is_empty());
    }
}
