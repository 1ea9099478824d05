//! Association negotiation as an acceptor: AE title check, presentation contexts, max PDU.
//!
//! [`negotiate`] is a pure function from an A-ASSOCIATE-RQ to either an A-ASSOCIATE-AC
//! with the accepted contexts, or an A-ASSOCIATE-RJ.

use dicom_ul::pdu::{
    AssociationAC, AssociationRJ, AssociationRJResult, AssociationRJServiceProviderASCEReason,
    AssociationRJServiceUserReason, AssociationRJSource, AssociationRQ, PresentationContextResult,
    PresentationContextResultReason, UserVariableItem,
};

use crate::server::ServerConfig;
use crate::sop::{VERIFICATION, is_storage_sop_class, trim_uid};

/// The DICOM application context name.
pub const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";
/// Lumen's implementation class UID (the same as lumen-dicom's file meta).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.302952401372104766339389127548203593837";
/// Lumen's implementation version name (at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("LUMEN_", env!("CARGO_PKG_VERSION"));

/// A presentation context accepted for this association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedContext {
    /// Presentation context ID (odd, 1..=255).
    pub id: u8,
    /// Abstract syntax (SOP class UID).
    pub abstract_syntax: String,
    /// The one transfer syntax accepted for it.
    pub transfer_syntax: String,
}

/// The outcome of a successful negotiation.
#[derive(Debug)]
pub struct Negotiated {
    /// The A-ASSOCIATE-AC to send.
    pub ac: AssociationAC,
    /// Accepted contexts.
    pub contexts: Vec<AcceptedContext>,
    /// Number of proposed contexts that were rejected.
    pub rejected: usize,
    /// The requestor's maximum PDU length (0: unlimited).
    pub peer_max_pdu: u32,
}

fn reject(result: AssociationRJResult, source: AssociationRJSource) -> AssociationRJ {
    AssociationRJ { result, source }
}

/// Whether the SCP supports this abstract syntax under `config`.
fn abstract_syntax_supported(config: &ServerConfig, uid: &str) -> bool {
    uid == VERIFICATION
        || config.sop_classes.iter().any(|c| c == uid)
        || (config.accept_any_storage_class && is_storage_sop_class(uid))
}

/// Decide on an association request.
pub fn negotiate(config: &ServerConfig, rq: &AssociationRQ) -> Result<Negotiated, AssociationRJ> {
    if rq.protocol_version & 1 == 0 {
        return Err(reject(
            AssociationRJResult::Permanent,
            AssociationRJSource::ServiceProviderASCE(
                AssociationRJServiceProviderASCEReason::ProtocolVersionNotSupported,
            ),
        ));
    }
    if trim_uid(&rq.application_context_name) != APPLICATION_CONTEXT {
        return Err(reject(
            AssociationRJResult::Permanent,
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::ApplicationContextNameNotSupported,
            ),
        ));
    }
    if !config.accept_any_called_ae && rq.called_ae_title.trim() != config.ae_title {
        return Err(reject(
            AssociationRJResult::Permanent,
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CalledAETitleNotRecognized,
            ),
        ));
    }
    let peer_max_pdu = rq
        .user_variables
        .iter()
        .find_map(|v| match v {
            UserVariableItem::MaxLength(n) => Some(*n),
            _ => None,
        })
        .unwrap_or(0);

    let mut results = Vec::with_capacity(rq.presentation_contexts.len());
    let mut contexts = Vec::new();
    let mut rejected = 0;
    for pc in &rq.presentation_contexts {
        let abstract_syntax = trim_uid(&pc.abstract_syntax);
        let (reason, ts) = if !abstract_syntax_supported(config, abstract_syntax) {
            (
                PresentationContextResultReason::AbstractSyntaxNotSupported,
                None,
            )
        } else {
            // The requestor's order of preference decides among syntaxes we accept.
            let chosen = pc
                .transfer_syntaxes
                .iter()
                .map(|ts| trim_uid(ts))
                .find(|ts| config.transfer_syntaxes.iter().any(|ours| ours == ts));
            match chosen {
                Some(ts) => (PresentationContextResultReason::Acceptance, Some(ts)),
                None => (
                    PresentationContextResultReason::TransferSyntaxesNotSupported,
                    None,
                ),
            }
        };
        match ts {
            Some(ts) => contexts.push(AcceptedContext {
                id: pc.id,
                abstract_syntax: abstract_syntax.to_string(),
                transfer_syntax: ts.to_string(),
            }),
            None => rejected += 1,
        }
        results.push(PresentationContextResult {
            id: pc.id,
            reason,
            transfer_syntax: ts.unwrap_or(crate::sop::IMPLICIT_VR_LE).to_string(),
        });
    }

    let ac = AssociationAC {
        protocol_version: 1,
        calling_ae_title: rq.calling_ae_title.clone(),
        called_ae_title: rq.called_ae_title.clone(),
        application_context_name: APPLICATION_CONTEXT.to_string(),
        presentation_contexts: results,
        user_variables: vec![
            UserVariableItem::MaxLength(config.max_pdu_length),
            UserVariableItem::ImplementationClassUID(IMPLEMENTATION_CLASS_UID.to_string()),
            UserVariableItem::ImplementationVersionName(IMPLEMENTATION_VERSION_NAME.to_string()),
        ],
    };
    Ok(Negotiated {
        ac,
        contexts,
        rejected,
        peer_max_pdu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_ul::pdu::PresentationContextProposed;

    fn rq(called: &str, contexts: Vec<(&str, Vec<&str>)>) -> AssociationRQ {
        AssociationRQ {
            protocol_version: 1,
            calling_ae_title: "SCU".into(),
            called_ae_title: called.into(),
            application_context_name: APPLICATION_CONTEXT.into(),
            presentation_contexts: contexts
                .into_iter()
                .enumerate()
                .map(|(i, (a, ts))| PresentationContextProposed {
                    id: (2 * i + 1) as u8,
                    abstract_syntax: a.into(),
                    transfer_syntaxes: ts.into_iter().map(String::from).collect(),
                })
                .collect(),
            user_variables: vec![UserVariableItem::MaxLength(16384)],
        }
    }

    #[test]
    fn called_ae_checked_unless_any() {
        let mut config = ServerConfig::default();
        let err = negotiate(&config, &rq("OTHER", vec![])).unwrap_err();
        assert_eq!(
            err.source,
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CalledAETitleNotRecognized
            )
        );
        assert_eq!(err.result, AssociationRJResult::Permanent);
        assert!(negotiate(&config, &rq("LUMEN", vec![])).is_ok());
        config.accept_any_called_ae = true;
        assert!(negotiate(&config, &rq("OTHER", vec![])).is_ok());
    }

    #[test]
    fn contexts() {
        let mut config = ServerConfig::default();
        let ct = "1.2.840.10008.5.1.4.1.1.2";
        let request = rq(
            "LUMEN",
            vec![
                (ct, vec!["1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.1"]),
                ("1.2.3.4.5.6", vec!["1.2.840.10008.1.2"]),
                (ct, vec!["1.2.3.999"]),
                (VERIFICATION, vec!["1.2.840.10008.1.2"]),
                // Ophthalmic Thickness Map: a storage class not in the default list.
                ("1.2.840.10008.5.1.4.1.1.81.1", vec!["1.2.840.10008.1.2"]),
            ],
        );
        let n = negotiate(&config, &request).unwrap();
        let reasons: Vec<_> =
            n.ac.presentation_contexts
                .iter()
                .map(|r| r.reason.clone())
                .collect();
        use PresentationContextResultReason::*;
        assert_eq!(
            reasons,
            [
                Acceptance,
                AbstractSyntaxNotSupported,
                TransferSyntaxesNotSupported,
                Acceptance,
                AbstractSyntaxNotSupported
            ]
        );
        assert_eq!(n.contexts[0].transfer_syntax, "1.2.840.10008.1.2.4.70");
        assert_eq!(n.contexts[1].id, 7);
        assert_eq!(n.rejected, 3);
        assert_eq!(n.peer_max_pdu, 16384);
        config.accept_any_storage_class = true;
        let n = negotiate(&config, &request).unwrap();
        assert_eq!(n.contexts.len(), 3);
    }
}
