//! Association negotiation as an acceptor: AE title check, presentation contexts, max PDU.
//!
//! [`negotiate`] is a pure function from an A-ASSOCIATE-RQ to either an A-ASSOCIATE-AC
//! with the accepted contexts, or an A-ASSOCIATE-RJ.

use dicom_ul::pdu::{
    AssociationAC, AssociationRJ, AssociationRJResult, AssociationRJServiceProviderASCEReason,
    AssociationRJServiceUserReason, AssociationRJSource, AssociationRQ, PresentationContextResult,
    PresentationContextResultReason, RequestorRoles, UserVariableItem,
};

use crate::server::ServerConfig;
use crate::sop::{Service, VERIFICATION, query_retrieve_service, trim_uid};

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
    /// Storage SOP classes for which the requestor takes the SCP role (SCP/SCU role
    /// selection, for C-GET).
    pub scp_role_classes: Vec<String>,
}

fn reject(result: AssociationRJResult, source: AssociationRJSource) -> AssociationRJ {
    AssociationRJ { result, source }
}

/// The service of an abstract syntax the SCP supports under `config`, if it does.
fn service_of(config: &ServerConfig, uid: &str) -> Option<Service> {
    if uid == VERIFICATION {
        Some(Service::Echo)
    } else if config.sop_classes.iter().any(|c| c == uid)
        || config
            .accept_storage_class
            .is_some_and(|accept| accept(uid))
    {
        Some(Service::Store)
    } else {
        query_retrieve_service(uid)
    }
}

/// Decide on an association request. `known_caller`: the calling AE title (and address,
/// if checked) is one of the configured peers.
///
/// Access control per service ([`ServerConfig::access`]): a context whose service the caller
/// may not use is rejected (user rejection). When that leaves nothing accepted, the whole
/// association is rejected with "calling AE title not recognized" (permanent).
/// Storage contexts for which the requestor asks the SCP role (C-GET) follow C-GET's rule
/// when C-STORE's does not allow them.
pub fn negotiate(
    config: &ServerConfig,
    rq: &AssociationRQ,
    known_caller: bool,
) -> Result<Negotiated, AssociationRJ> {
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

    let roles: Vec<(&str, RequestorRoles)> = rq
        .user_variables
        .iter()
        .filter_map(|v| match v {
            UserVariableItem::ScuScpRoleSelectionSubItem(uid, r) => Some((trim_uid(uid), *r)),
            _ => None,
        })
        .collect();
    let wants_scp_role = |uid: &str| roles.iter().any(|(u, r)| *u == uid && r.scp);
    let mut results = Vec::with_capacity(rq.presentation_contexts.len());
    let mut contexts = Vec::new();
    let mut rejected = 0;
    let mut denied = 0;
    for pc in &rq.presentation_contexts {
        let abstract_syntax = trim_uid(&pc.abstract_syntax);
        let service = service_of(config, abstract_syntax);
        let allowed = service.is_some_and(|s| {
            config.access.of(s).allows(known_caller)
                || (s == Service::Store
                    && wants_scp_role(abstract_syntax)
                    && config.access.get.allows(known_caller))
        });
        let (reason, ts) = if service.is_none() {
            (
                PresentationContextResultReason::AbstractSyntaxNotSupported,
                None,
            )
        } else if !allowed {
            denied += 1;
            (PresentationContextResultReason::UserRejection, None)
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

    if contexts.is_empty() && denied > 0 {
        return Err(reject(
            AssociationRJResult::Permanent,
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CallingAETitleNotRecognized,
            ),
        ));
    }
    // Answer each role selection for an accepted context with the roles proposed.
    let mut user_variables = vec![
        UserVariableItem::MaxLength(config.max_pdu_length),
        UserVariableItem::ImplementationClassUID(IMPLEMENTATION_CLASS_UID.to_string()),
    ];
    let mut scp_role_classes: Vec<String> = Vec::new();
    for (uid, r) in &roles {
        if contexts.iter().any(|c| c.abstract_syntax == *uid)
            && !user_variables.iter().any(
                |v| matches!(v, UserVariableItem::ScuScpRoleSelectionSubItem(u, _) if u == uid),
            )
        {
            user_variables.push(UserVariableItem::ScuScpRoleSelectionSubItem(
                uid.to_string(),
                *r,
            ));
            if r.scp {
                scp_role_classes.push(uid.to_string());
            }
        }
    }
    user_variables.push(UserVariableItem::ImplementationVersionName(
        IMPLEMENTATION_VERSION_NAME.to_string(),
    ));
    let ac = AssociationAC {
        protocol_version: 1,
        calling_ae_title: rq.calling_ae_title.clone(),
        called_ae_title: rq.called_ae_title.clone(),
        application_context_name: APPLICATION_CONTEXT.to_string(),
        presentation_contexts: results,
        user_variables,
    };
    Ok(Negotiated {
        ac,
        contexts,
        rejected,
        peer_max_pdu,
        scp_role_classes,
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
        let err = negotiate(&config, &rq("OTHER", vec![]), false).unwrap_err();
        assert_eq!(
            err.source,
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CalledAETitleNotRecognized
            )
        );
        assert_eq!(err.result, AssociationRJResult::Permanent);
        assert!(negotiate(&config, &rq("LUMEN", vec![]), false).is_ok());
        config.accept_any_called_ae = true;
        assert!(negotiate(&config, &rq("OTHER", vec![]), false).is_ok());
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
        let n = negotiate(&config, &request, false).unwrap();
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
        config.accept_storage_class = Some(|uid| uid.starts_with("1.2.840.10008.5.1.4.1.1."));
        let n = negotiate(&config, &request, false).unwrap();
        assert_eq!(n.contexts.len(), 3);
    }

    #[test]
    fn query_retrieve_only_from_known_callers() {
        use crate::sop::{STUDY_ROOT_FIND, STUDY_ROOT_GET};
        let config = ServerConfig::default();
        let qr_only = rq("LUMEN", vec![(STUDY_ROOT_FIND, vec!["1.2.840.10008.1.2"])]);
        let err = negotiate(&config, &qr_only, false).unwrap_err();
        assert_eq!(
            err.source,
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CallingAETitleNotRecognized
            )
        );
        assert_eq!(err.result, AssociationRJResult::Permanent);
        let n = negotiate(&config, &qr_only, true).unwrap();
        assert_eq!(n.contexts.len(), 1);

        // Mixed: the Q/R context alone is refused.
        let mixed = rq(
            "LUMEN",
            vec![
                (STUDY_ROOT_FIND, vec!["1.2.840.10008.1.2"]),
                (VERIFICATION, vec!["1.2.840.10008.1.2"]),
            ],
        );
        let n = negotiate(&config, &mixed, false).unwrap();
        assert_eq!(n.contexts.len(), 1);
        assert_eq!(n.contexts[0].abstract_syntax, VERIFICATION);
        assert_eq!(
            n.ac.presentation_contexts[0].reason,
            PresentationContextResultReason::UserRejection
        );

        // C-GET with SCP role selection for CT: the role is answered.
        let ct = "1.2.840.10008.5.1.4.1.1.2";
        let mut get = rq(
            "LUMEN",
            vec![
                (STUDY_ROOT_GET, vec!["1.2.840.10008.1.2"]),
                (ct, vec!["1.2.840.10008.1.2"]),
            ],
        );
        get.user_variables
            .push(UserVariableItem::ScuScpRoleSelectionSubItem(
                ct.into(),
                RequestorRoles {
                    scu: false,
                    scp: true,
                },
            ));
        let n = negotiate(&config, &get, true).unwrap();
        assert_eq!(n.contexts.len(), 2);
        assert_eq!(n.scp_role_classes, [ct]);
        assert!(n.ac.user_variables.iter().any(|v| matches!(
            v,
            UserVariableItem::ScuScpRoleSelectionSubItem(u, r) if u == ct && r.scp && !r.scu
        )));
    }
}
