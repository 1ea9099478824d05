//! DICOM audit messages: one [`AuditEvent`] as the XML of DICOM PS3.15 Annex A.5 (the
//! schema derived from RFC 3881 that IHE ATNA's Record Audit Event [ITI-20] carries).
//!
//! [`audit_message`] is a pure function: the same event and [`AuditSource`] always give the
//! same bytes. The message follows the schema of PS3.15 A.5.1 (checked in as
//! `schema/audit-message.rnc` and `.rng`; `tests/schema.rs` validates every action and
//! outcome against it with `xmllint --relaxng`) and the message tables of A.5.3.
//!
//! # Event IDs
//!
//! | [`AuditAction`] | EventID (DCM) | EventTypeCode | EventActionCode | Active participants | Participant objects |
//! |---|---|---|---|---|---|
//! | `Query` | 110112 Query | | E | user (requestor, 110153 Source), node (110152 Destination) | query (see below); study, patient when known |
//! | `Retrieve` | 110104 DICOM Instances Transferred | | R | node (110153 Source), user (requestor, 110152 Destination) | study, patient |
//! | `View` | 110103 DICOM Instances Accessed | | R | user (requestor) | study, patient |
//! | `Store` (HTTP, DICOM, system) | 110104 DICOM Instances Transferred | | C | user (requestor, 110153 Source), node (110152 Destination) | study, patient |
//! | `Store` (command line) | 110107 Data Import | | C | user (requestor), node (110152 Destination) | study, patient |
//! | `Review` | 110103 DICOM Instances Accessed | | U | user (requestor) | study, patient |
//! | `Sign` | 110103 DICOM Instances Accessed | | C | user (requestor) | study, patient |
//! | `Addendum` | 110103 DICOM Instances Accessed | | C | user (requestor) | study, patient |
//! | `Export` | 110106 Data Export | | R | user (requestor), node (110153 Source) | study, patient |
//! | `Login` | 110114 User Authentication | 110122 Login | E | user (requestor), node | |
//! | `LoginFailed` | 110114 User Authentication | 110122 Login | E | user (requestor), node | |
//! | `Logout` | 110114 User Authentication | 110123 Logout | E | user (requestor), node | |
//! | `PasswordChange` | 110113 Security Alert | 110137 User Security Attributes Changed | E | user (requestor), node | the user (alert subject) |
//! | `UserCreate` | 110113 Security Alert | 110137 User Security Attributes Changed | E | user (requestor), node | the account (alert subject) |
//! | `UserChange` | 110113 Security Alert | 110137 User Security Attributes Changed | E | user (requestor), node | the account (alert subject) |
//! | `OrgChange` | 110113 Security Alert | 110129 Security Configuration | E | user (requestor), node | the organisation (alert subject) |
//! | `AuditRead` | 110101 Audit Log Used | | R | user (requestor), node | the audit log |
//! | `AccessDenied` | 110113 Security Alert | 110132 Use of Restricted Function | E | user (requestor), node | what was refused; study, patient when known |
//! | `Forget` | 110110 Patient Record | | D | user (requestor) | study |
//! | `PatientLink` | 110110 Patient Record | | U | user (requestor) | study, patient |
//!
//! "User" is the actor ([`AuditEvent::user`]: UserID, UserIsRequestor true, its
//! [`AuditEvent::role`] as an extra RoleIDCode in code system `99LUMEN`, and the source address
//! as NetworkAccessPointID, type 2 for an IP address, 1 otherwise). "Node" is this Lumen
//! ([`AuditSource::source_id`], UserIsRequestor false, [`AuditSource::host`] as its network
//! access point).
//!
//! # Outcomes
//!
//! EventOutcomeIndicator: success 0, denied 4 (minor failure), failure 8 (serious failure).
//! A `LoginFailed` event is at least 4 whatever its recorded outcome, since a failed login is
//! a failure by definition. Anything but success also carries EventOutcomeDescription
//! (`denied`, `failure`).
//!
//! # Participant objects
//!
//! - Study: ParticipantObjectTypeCode 2, role 3 (Report), IDTypeCode (110180, DCM, "Study
//!   Instance UID"), the UID as ID and, since the schema (after CP-2399) requires a name or a
//!   query, as ParticipantObjectName too; the series, when known, as a ParticipantObjectDetail
//!   `SeriesInstanceUID`.
//! - Patient: type 1, role 1, IDTypeCode (2, RFC-3881, "Patient Number"), the patient ID as
//!   ID and the patient's name (or, when unknown, the ID) as ParticipantObjectName.
//! - Query: type 2. From a DICOM peer (C-FIND): role 3, IDTypeCode (110181, DCM, "SOP Class
//!   UID") with the Study Root Query/Retrieve FIND SOP Class as ID (the event does not record
//!   which information model was used). Otherwise (QIDO-RS, the worklist): role 24 (Query),
//!   IDTypeCode (10, RFC-3881, "Search Criteria") with the request up to its `?` as ID. Either
//!   way ParticipantObjectQuery is the base64 of [`AuditEvent::detail`] (the query as Lumen
//!   recorded it, not the original DICOM data set) and a `QueryEncoding` detail says `UTF-8`.
//!
//! Text is escaped for XML: markup characters as entities, tab, line feed and carriage
//! return as character references (so a message is one line), other C0 controls and
//! non-characters (not allowed in XML 1.0, even escaped) replaced by U+FFFD, C1 controls and
//! DEL as character references.

use std::borrow::Cow;
use std::net::IpAddr;

use base64::Engine as _;
use lumen_model::{AuditAction, AuditChannel, AuditEvent, AuditOutcome};
use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Who reports: this Lumen node, as the audit message's AuditSourceIdentification and, where
/// the event's message has one, as the node's ActiveParticipant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSource {
    /// AuditSourceID and the node participant's UserID: the node name or AE title
    /// (`LUMEN`).
    pub source_id: String,
    /// AuditEnterpriseSiteID: the hospital or site, when configured.
    pub enterprise_site_id: Option<String>,
    /// The node's NetworkAccessPointID: its DNS name or IP address, when known.
    pub host: Option<String>,
}

impl AuditSource {
    /// A source with just its ID (no site, no host).
    pub fn new(source_id: impl Into<String>) -> Self {
        AuditSource {
            source_id: source_id.into(),
            enterprise_site_id: None,
            host: None,
        }
    }
}

/// A coded value: `csd-code`, `codeSystemName`, `originalText`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The code value (`110112`).
    pub code: &'static str,
    /// The code system name (`DCM`, `RFC-3881`).
    pub system: &'static str,
    /// The code meaning (`Query`).
    pub text: &'static str,
}

const fn dcm(code: &'static str, text: &'static str) -> Code {
    Code {
        code,
        system: "DCM",
        text,
    }
}

const fn rfc3881(code: &'static str, text: &'static str) -> Code {
    Code {
        code,
        system: "RFC-3881",
        text,
    }
}

const EV_AUDIT_LOG_USED: Code = dcm("110101", "Audit Log Used");
const EV_INSTANCES_ACCESSED: Code = dcm("110103", "DICOM Instances Accessed");
const EV_INSTANCES_TRANSFERRED: Code = dcm("110104", "DICOM Instances Transferred");
const EV_EXPORT: Code = dcm("110106", "Export");
const EV_IMPORT: Code = dcm("110107", "Import");
const EV_PATIENT_RECORD: Code = dcm("110110", "Patient Record");
const EV_QUERY: Code = dcm("110112", "Query");
const EV_SECURITY_ALERT: Code = dcm("110113", "Security Alert");
const EV_USER_AUTHENTICATION: Code = dcm("110114", "User Authentication");

const TYPE_LOGIN: Code = dcm("110122", "Login");
const TYPE_LOGOUT: Code = dcm("110123", "Logout");
const TYPE_SECURITY_CONFIGURATION: Code = dcm("110129", "Security Configuration");
const TYPE_RESTRICTED_FUNCTION: Code = dcm("110132", "Use of Restricted Function");
const TYPE_USER_ATTRIBUTES_CHANGED: Code = dcm("110137", "User Security Attributes Changed");

const ROLE_DESTINATION: Code = dcm("110152", "Destination Role ID");
const ROLE_SOURCE: Code = dcm("110153", "Source Role ID");

const ID_STUDY_UID: Code = dcm("110180", "Study Instance UID");
const ID_SOP_CLASS_UID: Code = dcm("110181", "SOP Class UID");
const ID_PATIENT_NUMBER: Code = rfc3881("2", "Patient Number");
const ID_SEARCH_CRITERIA: Code = rfc3881("10", "Search Criteria");
const ID_USER_IDENTIFIER: Code = rfc3881("11", "User Identifier");
const ID_URI: Code = rfc3881("12", "URI");
const ID_ORGANISATION: Code = Code {
    code: "organisation",
    system: "99LUMEN",
    text: "Organisation ID",
};

/// Study Root Query/Retrieve Information Model - FIND.
const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";

/// What an [`AuditAction`] becomes in the message's EventIdentification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCodes {
    /// EventID.
    pub event_id: Code,
    /// EventTypeCode, for the messages that have one.
    pub event_type: Option<Code>,
    /// EventActionCode: `C`, `R`, `U`, `D` or `E`.
    pub action: &'static str,
}

/// The EventID, EventTypeCode and EventActionCode of an action coming through a channel
/// (the table in this module's documentation).
pub fn event_codes(action: AuditAction, channel: AuditChannel) -> EventCodes {
    let (event_id, event_type, action) = match action {
        AuditAction::Query => (EV_QUERY, None, "E"),
        AuditAction::Retrieve => (EV_INSTANCES_TRANSFERRED, None, "R"),
        AuditAction::View => (EV_INSTANCES_ACCESSED, None, "R"),
        AuditAction::Store if channel == AuditChannel::Cli => (EV_IMPORT, None, "C"),
        AuditAction::Store => (EV_INSTANCES_TRANSFERRED, None, "C"),
        AuditAction::Review => (EV_INSTANCES_ACCESSED, None, "U"),
        AuditAction::Sign | AuditAction::Addendum => (EV_INSTANCES_ACCESSED, None, "C"),
        AuditAction::Export => (EV_EXPORT, None, "R"),
        AuditAction::Login | AuditAction::LoginFailed => {
            (EV_USER_AUTHENTICATION, Some(TYPE_LOGIN), "E")
        }
        AuditAction::Logout => (EV_USER_AUTHENTICATION, Some(TYPE_LOGOUT), "E"),
        AuditAction::PasswordChange | AuditAction::UserCreate | AuditAction::UserChange => {
            (EV_SECURITY_ALERT, Some(TYPE_USER_ATTRIBUTES_CHANGED), "E")
        }
        AuditAction::OrgChange => (EV_SECURITY_ALERT, Some(TYPE_SECURITY_CONFIGURATION), "E"),
        AuditAction::AuditRead => (EV_AUDIT_LOG_USED, None, "R"),
        AuditAction::AccessDenied => (EV_SECURITY_ALERT, Some(TYPE_RESTRICTED_FUNCTION), "E"),
        AuditAction::Forget => (EV_PATIENT_RECORD, None, "D"),
        AuditAction::PatientLink => (EV_PATIENT_RECORD, None, "U"),
    };
    EventCodes {
        event_id,
        event_type,
        action,
    }
}

/// The EventOutcomeIndicator of an event: 0, 4, 8 (see the module documentation).
pub fn outcome_indicator(action: AuditAction, outcome: AuditOutcome) -> u8 {
    let indicator = match outcome {
        AuditOutcome::Success => 0,
        AuditOutcome::Denied => 4,
        AuditOutcome::Failure => 8,
    };
    if action == AuditAction::LoginFailed {
        indicator.max(4)
    } else {
        indicator
    }
}

/// The event's time, read from [`AuditEvent::time`] (RFC 3339); the current time when it
/// cannot be read (logged with the event's seq).
pub(crate) fn event_time(event: &AuditEvent) -> OffsetDateTime {
    match OffsetDateTime::parse(&event.time, &Rfc3339) {
        Ok(t) => t.to_offset(time::UtcOffset::UTC),
        Err(_) => {
            tracing::warn!(
                seq = event.seq,
                "audit event time is not RFC 3339; the message carries the current time"
            );
            OffsetDateTime::now_utc()
        }
    }
}

/// The time as RFC 3339 in UTC with milliseconds (`2026-12-02T17:03:04.123Z`), a valid
/// `xsd:dateTime` and RFC 5424 TIMESTAMP.
pub(crate) fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    match t.format(&fmt) {
        Ok(s) if t.year() >= 0 => s,
        // Years outside 0000-9999 cannot be written as four digits.
        _ => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// The DICOM audit message (PS3.15 A.5) for an event, as a UTF-8 XML document on one line,
/// with its XML declaration and no byte order mark.
pub fn audit_message(event: &AuditEvent, source: &AuditSource) -> String {
    let codes = event_codes(event.action, event.channel);
    let indicator = outcome_indicator(event.action, event.outcome);
    let time = format_time(event_time(event));

    let mut w = Xml::new();
    w.open("AuditMessage", &[]);

    // EventIdentification
    w.open(
        "EventIdentification",
        &[
            ("EventActionCode", codes.action),
            ("EventDateTime", &time),
            ("EventOutcomeIndicator", &indicator.to_string()),
        ],
    );
    w.code("EventID", codes.event_id);
    if let Some(t) = codes.event_type {
        w.code("EventTypeCode", t);
    }
    if event.outcome != AuditOutcome::Success || indicator != 0 {
        let text = if event.outcome == AuditOutcome::Success {
            "failure"
        } else {
            event.outcome.as_str()
        };
        w.text_element("EventOutcomeDescription", text);
    }
    w.close("EventIdentification");

    // ActiveParticipants
    let user = Participant::user(event);
    let node = Participant::node(source);
    match event.action {
        AuditAction::Query => {
            w.participant(&user.with_role(ROLE_SOURCE));
            w.participant(&node.with_role(ROLE_DESTINATION));
        }
        AuditAction::Retrieve => {
            w.participant(&node.with_role(ROLE_SOURCE));
            w.participant(&user.with_role(ROLE_DESTINATION));
        }
        AuditAction::Store if event.channel == AuditChannel::Cli => {
            w.participant(&user);
            w.participant(&node.with_role(ROLE_DESTINATION));
        }
        AuditAction::Store => {
            w.participant(&user.with_role(ROLE_SOURCE));
            w.participant(&node.with_role(ROLE_DESTINATION));
        }
        AuditAction::View
        | AuditAction::Review
        | AuditAction::Sign
        | AuditAction::Addendum
        | AuditAction::Forget
        | AuditAction::PatientLink => {
            w.participant(&user);
        }
        AuditAction::Export => {
            w.participant(&user);
            w.participant(&node.with_role(ROLE_SOURCE));
        }
        AuditAction::Login
        | AuditAction::LoginFailed
        | AuditAction::Logout
        | AuditAction::PasswordChange
        | AuditAction::UserCreate
        | AuditAction::UserChange
        | AuditAction::OrgChange
        | AuditAction::AuditRead
        | AuditAction::AccessDenied => {
            w.participant(&user);
            w.participant(&node);
        }
    }

    // AuditSourceIdentification
    let mut attrs: Vec<(&str, &str)> = Vec::new();
    if let Some(site) = &source.enterprise_site_id {
        attrs.push(("AuditEnterpriseSiteID", site));
    }
    attrs.push(("AuditSourceID", &source.source_id));
    w.open("AuditSourceIdentification", &attrs);
    // 4: application server process.
    w.empty("AuditSourceTypeCode", &[("csd-code", "4")]);
    w.close("AuditSourceIdentification");

    // ParticipantObjectIdentifications
    match event.action {
        AuditAction::Query => w.query_object(event),
        AuditAction::PasswordChange | AuditAction::UserCreate | AuditAction::UserChange => {
            let subject = detail_subject(&event.detail, "user").unwrap_or(&event.user);
            w.alert_subject(event, "1", "11", ID_USER_IDENTIFIER, subject);
        }
        AuditAction::OrgChange => {
            let subject = detail_subject(&event.detail, "org")
                .or(Some(event.org.as_str()).filter(|o| !o.is_empty()))
                .unwrap_or("unknown");
            w.alert_subject(event, "3", "12", ID_ORGANISATION, subject);
        }
        AuditAction::AuditRead => {
            let id = request_without_query(&event.detail).unwrap_or("lumen:audit-trail");
            w.object(
                &[
                    ("ParticipantObjectID", id),
                    ("ParticipantObjectTypeCode", "2"),
                    ("ParticipantObjectTypeCodeRole", "13"),
                ],
                ID_URI,
                NameOrQuery::Name("Security Audit Log"),
                &[],
            );
        }
        AuditAction::AccessDenied => {
            let id = request_without_query(&event.detail).unwrap_or(event.channel.as_str());
            w.object(
                &[
                    ("ParticipantObjectID", id),
                    ("ParticipantObjectTypeCode", "2"),
                    ("ParticipantObjectTypeCodeRole", "13"),
                ],
                ID_URI,
                NameOrQuery::Name(id),
                &[("Alert Description", event.detail.as_bytes())],
            );
        }
        _ => {}
    }
    if !event.action.is_security_event() || event.action == AuditAction::AccessDenied {
        if let Some(study) = &event.study_uid {
            let series = event.series_uid.as_deref().map(str::as_bytes);
            let details: Vec<(&str, &[u8])> = series
                .map(|s| ("SeriesInstanceUID", s))
                .into_iter()
                .collect();
            w.object(
                &[
                    ("ParticipantObjectID", study),
                    ("ParticipantObjectTypeCode", "2"),
                    ("ParticipantObjectTypeCodeRole", "3"),
                ],
                ID_STUDY_UID,
                NameOrQuery::Name(study),
                &details,
            );
        }
        if let Some(pid) = &event.patient_id {
            let name = event.patient_name.as_deref().unwrap_or(pid);
            w.object(
                &[
                    ("ParticipantObjectID", pid),
                    ("ParticipantObjectTypeCode", "1"),
                    ("ParticipantObjectTypeCodeRole", "1"),
                ],
                ID_PATIENT_NUMBER,
                NameOrQuery::Name(name),
                &[],
            );
        }
    }

    w.close("AuditMessage");
    w.finish()
}

/// `dr-li` from `user dr-li role radiologist`, `create user dr-li ...` or `change user
/// dr-li: ...` (the word after `prefix` among the first two words), without a trailing `:`.
fn detail_subject<'a>(detail: &'a str, prefix: &str) -> Option<&'a str> {
    let words: Vec<&str> = detail.split_whitespace().take(3).collect();
    let at = words.iter().take(2).position(|w| *w == prefix)?;
    words.get(at + 1).map(|w| w.trim_end_matches(':'))
}

/// `GET /api/audit` from `GET /api/audit?user=x`, or `None` for an empty detail.
fn request_without_query(detail: &str) -> Option<&str> {
    let d = detail.split('?').next().unwrap_or("").trim();
    (!d.is_empty()).then_some(d)
}

/// An ActiveParticipant.
#[derive(Clone)]
struct Participant<'a> {
    user_id: &'a str,
    requestor: bool,
    access_point: Option<&'a str>,
    roles: Vec<Code>,
    lumen_role: Option<&'a str>,
}

impl<'a> Participant<'a> {
    fn user(event: &'a AuditEvent) -> Self {
        Participant {
            user_id: &event.user,
            requestor: true,
            access_point: event.source.as_deref().filter(|s| !s.is_empty()),
            roles: Vec::new(),
            lumen_role: Some(event.role.as_str()).filter(|r| !r.is_empty()),
        }
    }

    fn node(source: &'a AuditSource) -> Self {
        Participant {
            user_id: &source.source_id,
            requestor: false,
            access_point: source.host.as_deref().filter(|s| !s.is_empty()),
            roles: Vec::new(),
            lumen_role: None,
        }
    }

    fn with_role(&self, role: Code) -> Self {
        let mut p = self.clone();
        p.roles.push(role);
        p
    }
}

/// The network access point type: 2 for an IP address (with or without a port), 1 (machine
/// name) otherwise.
fn access_point_type(ap: &str) -> &'static str {
    if ap.parse::<IpAddr>().is_ok() || ap.parse::<std::net::SocketAddr>().is_ok() {
        "2"
    } else {
        "1"
    }
}

enum NameOrQuery<'a> {
    Name(&'a str),
    Query(&'a [u8]),
}

/// A small layer over quick-xml's writer that takes text unescaped and escapes it with
/// [`escape`] (quick-xml's own escaping leaves control characters as they are).
struct Xml {
    w: Writer<Vec<u8>>,
}

impl Xml {
    fn new() -> Self {
        let mut w = Writer::new(Vec::with_capacity(2048));
        Self::emit(
            &mut w,
            Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
        );
        Xml { w }
    }

    fn emit(w: &mut Writer<Vec<u8>>, event: Event<'_>) {
        // Writing into a Vec cannot fail.
        if let Err(e) = w.write_event(event) {
            tracing::error!(error = %e, "writing an audit message into memory failed");
        }
    }

    fn start<'b>(name: &'b str, attrs: &[(&str, &str)]) -> BytesStart<'b> {
        let mut start = BytesStart::new(name);
        for (k, v) in attrs {
            start.push_attribute(Attribute {
                key: QName(k),
                value: Cow::Owned(escape(v)),
            });
        }
        start
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        Self::emit(&mut self.w, Event::Start(Self::start(name, attrs)));
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        Self::emit(&mut self.w, Event::Empty(Self::start(name, attrs)));
    }

    fn close(&mut self, name: &str) {
        Self::emit(&mut self.w, Event::End(BytesEnd::new(name)));
    }

    fn text_element(&mut self, name: &str, text: &str) {
        self.open(name, &[]);
        let escaped = escape(text);
        Self::emit(&mut self.w, Event::Text(BytesText::from_escaped(escaped)));
        self.close(name);
    }

    fn code(&mut self, name: &str, code: Code) {
        self.empty(
            name,
            &[
                ("csd-code", code.code),
                ("codeSystemName", code.system),
                ("originalText", code.text),
            ],
        );
    }

    fn participant(&mut self, p: &Participant<'_>) {
        let mut attrs: Vec<(&str, &str)> = vec![
            ("UserID", p.user_id),
            (
                "UserIsRequestor",
                if p.requestor { "true" } else { "false" },
            ),
        ];
        if let Some(ap) = p.access_point {
            attrs.push(("NetworkAccessPointID", ap));
            attrs.push(("NetworkAccessPointTypeCode", access_point_type(ap)));
        }
        if p.roles.is_empty() && p.lumen_role.is_none() {
            self.empty("ActiveParticipant", &attrs);
            return;
        }
        self.open("ActiveParticipant", &attrs);
        for role in &p.roles {
            self.code("RoleIDCode", *role);
        }
        if let Some(role) = p.lumen_role {
            self.empty(
                "RoleIDCode",
                &[
                    ("csd-code", role),
                    ("codeSystemName", "99LUMEN"),
                    ("originalText", role),
                ],
            );
        }
        self.close("ActiveParticipant");
    }

    fn object(
        &mut self,
        attrs: &[(&str, &str)],
        id_type: Code,
        name: NameOrQuery<'_>,
        details: &[(&str, &[u8])],
    ) {
        self.open("ParticipantObjectIdentification", attrs);
        self.code("ParticipantObjectIDTypeCode", id_type);
        match name {
            NameOrQuery::Name(n) => self.text_element("ParticipantObjectName", n),
            NameOrQuery::Query(q) => self.text_element("ParticipantObjectQuery", &base64(q)),
        }
        for (t, v) in details {
            self.empty(
                "ParticipantObjectDetail",
                &[("type", t), ("value", &base64(v))],
            );
        }
        self.close("ParticipantObjectIdentification");
    }

    fn query_object(&mut self, event: &AuditEvent) {
        let (id, role, id_type) = if event.channel == AuditChannel::Dicom {
            (STUDY_ROOT_FIND, "3", ID_SOP_CLASS_UID)
        } else {
            let id = request_without_query(&event.detail).unwrap_or(event.channel.as_str());
            (id, "24", ID_SEARCH_CRITERIA)
        };
        self.object(
            &[
                ("ParticipantObjectID", id),
                ("ParticipantObjectTypeCode", "2"),
                ("ParticipantObjectTypeCodeRole", role),
            ],
            id_type,
            NameOrQuery::Query(event.detail.as_bytes()),
            &[("QueryEncoding", b"UTF-8")],
        );
    }

    fn alert_subject(
        &mut self,
        event: &AuditEvent,
        type_code: &str,
        role: &str,
        id_type: Code,
        subject: &str,
    ) {
        self.object(
            &[
                ("ParticipantObjectID", subject),
                ("ParticipantObjectTypeCode", type_code),
                ("ParticipantObjectTypeCodeRole", role),
            ],
            id_type,
            NameOrQuery::Name(subject),
            &[("Alert Description", event.detail.as_bytes())],
        );
    }

    fn finish(self) -> String {
        // Everything written came from &str or from escape(), so it is UTF-8.
        String::from_utf8_lossy(&self.w.into_inner()).into_owned()
    }
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// True for the characters XML 1.0 allows (`Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Escapes text for an XML attribute value or text node (see the module documentation).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' | '\u{7F}'..='\u{9F}' => {
                out.push_str(&format!("&#{};", c as u32));
            }
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn event(action: AuditAction, outcome: AuditOutcome) -> AuditEvent {
        AuditEvent {
            seq: 7,
            time: "2026-12-02T17:03:04.123Z".into(),
            user: "dr-li".into(),
            role: "radiologist".into(),
            org: "org-1".into(),
            action,
            outcome,
            channel: AuditChannel::Http,
            source: Some("192.0.2.7".into()),
            study_uid: Some("1.2.3.4".into()),
            series_uid: Some("1.2.3.4.5".into()),
            patient_id: Some("P-42".into()),
            patient_name: Some("Doe^Jane".into()),
            detail: "GET /dicom-web/studies?PatientName=Doe".into(),
        }
    }

    #[test]
    fn escapes_markup_controls_and_non_characters() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("x\ny\tz\r"), "x&#10;y&#9;z&#13;");
        assert_eq!(escape("\u{0}\u{1b}\u{FFFE}"), "\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(escape("\u{85}"), "&#133;");
        assert_eq!(escape("李^雷 😀"), "李^雷 😀");
    }

    #[test]
    fn query_message_has_query_object_and_codes() {
        let xml = audit_message(
            &event(AuditAction::Query, AuditOutcome::Success),
            &AuditSource::new("LUMEN"),
        );
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><AuditMessage>"));
        assert!(!xml.contains('\n'));
        assert!(
            xml.contains(
                r#"<EventID csd-code="110112" codeSystemName="DCM" originalText="Query"/>"#
            )
        );
        assert!(xml.contains(r#"EventActionCode="E""#));
        assert!(xml.contains(r#"EventOutcomeIndicator="0""#));
        assert!(xml.contains(r#"ParticipantObjectID="GET /dicom-web/studies""#));
        assert!(xml.contains(&format!(
            "<ParticipantObjectQuery>{}</ParticipantObjectQuery>",
            base64(b"GET /dicom-web/studies?PatientName=Doe")
        )));
        assert!(xml.contains(r#"NetworkAccessPointID="192.0.2.7" NetworkAccessPointTypeCode="2""#));
    }

    #[test]
    fn outcomes_map_to_indicators() {
        assert_eq!(
            outcome_indicator(AuditAction::View, AuditOutcome::Success),
            0
        );
        assert_eq!(
            outcome_indicator(AuditAction::View, AuditOutcome::Denied),
            4
        );
        assert_eq!(
            outcome_indicator(AuditAction::View, AuditOutcome::Failure),
            8
        );
        assert_eq!(
            outcome_indicator(AuditAction::LoginFailed, AuditOutcome::Success),
            4
        );
        let xml = audit_message(
            &event(AuditAction::LoginFailed, AuditOutcome::Success),
            &AuditSource::new("LUMEN"),
        );
        assert!(xml.contains(r#"EventOutcomeIndicator="4""#));
        assert!(xml.contains("<EventOutcomeDescription>failure</EventOutcomeDescription>"));
        assert!(xml.contains(r#"csd-code="110122""#));
        // Security events name no patient.
        assert!(!xml.contains("Doe^Jane"));
    }

    #[test]
    fn hostile_patient_name_is_escaped() {
        let mut e = event(AuditAction::View, AuditOutcome::Success);
        e.patient_name = Some("<x>&\u{0}\n\"".into());
        let xml = audit_message(&e, &AuditSource::new("LUMEN"));
        assert!(xml.contains(
            "<ParticipantObjectName>&lt;x&gt;&amp;\u{FFFD}&#10;&quot;</ParticipantObjectName>"
        ));
    }

    #[test]
    fn bad_time_falls_back_to_a_valid_one() {
        let mut e = event(AuditAction::View, AuditOutcome::Success);
        e.time = "yesterday".into();
        let xml = audit_message(&e, &AuditSource::new("LUMEN"));
        assert!(xml.contains("EventDateTime=\"2"));
        assert_eq!(
            format_time(event_time(&event(AuditAction::View, AuditOutcome::Success))),
            "2026-12-02T17:03:04.123Z"
        );
    }

    #[test]
    fn store_from_the_command_line_is_an_import() {
        let mut e = event(AuditAction::Store, AuditOutcome::Success);
        e.channel = AuditChannel::Cli;
        assert_eq!(event_codes(e.action, e.channel).event_id, EV_IMPORT);
        e.channel = AuditChannel::Dicom;
        assert_eq!(
            event_codes(e.action, e.channel).event_id,
            EV_INSTANCES_TRANSFERRED
        );
    }

    #[test]
    fn user_change_names_the_subject() {
        let mut e = event(AuditAction::UserChange, AuditOutcome::Success);
        e.detail = "user dr-wang role admin".into();
        let xml = audit_message(&e, &AuditSource::new("LUMEN"));
        assert!(xml.contains(r#"ParticipantObjectID="dr-wang" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="11""#));
    }
}
