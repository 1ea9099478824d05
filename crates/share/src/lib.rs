//! The consortium of Lumen nodes as pure logic (no sockets, no files, no clock of its own):
//!
//! - [`member`]: this node's identity and the membership list, each member with its base URL
//!   and the verifier key of its ledger key (`name+keyid+base64`, signed-note form);
//! - [`httpsig`]: node-to-node requests signed and verified with RFC 9421 HTTP Message
//!   Signatures (Ed25519 over `@method`, `@path`, `@query`, `content-digest` (RFC 9530) and
//!   the recipient, with `created`, `keyid` and `nonce` parameters);
//! - [`wire`]: the JSON messages nodes exchange (share notice, revocation, status).
//!
//! Images themselves travel as STOW-RS (`multipart/related; type="application/dicom"`),
//! built and parsed by the application and web layers.

pub mod httpsig;
pub mod member;
pub mod wire;

pub use httpsig::{SignError, SignedHeaders, VerifiedRequest};
pub use member::{Consortium, Member, MemberError};
