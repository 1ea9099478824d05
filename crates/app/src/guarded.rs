//! The study-scoped use cases as the front doors call them: each checks the actor's
//! permission and organisation ([`crate::policy`]), runs, and writes its audit record with
//! the outcome. The unchecked bodies live beside their domain (`review.rs`, `report.rs`).

use std::future::Future;

use lumen_report::draft::Lang;
use lumen_store::{ReportStatus, Scope, StoredInstance};
use serde_json::{Map, Value};

use crate::policy::Permission;
use crate::report::{ReportSections, ReportView};
use crate::review::{Correction, NewFinding, ReviewView};
use crate::{Actor, App, AppError, AuditAction, AuditOutcome, Finding};

pub(crate) fn outcome<T>(r: &Result<T, AppError>) -> AuditOutcome {
    match r {
        Ok(_) => AuditOutcome::Success,
        Err(AppError::Forbidden(_) | AppError::NotFound(_)) => AuditOutcome::Denied,
        Err(_) => AuditOutcome::Failure,
    }
}

impl App {
    /// Authorizes `actor` for `p` on `study`, runs `f` and audits its outcome.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn audited<T>(
        &self,
        actor: &Actor,
        p: Permission,
        action: AuditAction,
        study: &str,
        series: Option<&str>,
        detail: &str,
        f: impl Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        let access = self
            .authorize_study(actor, p, action, study, detail)
            .await?;
        let r = f.await;
        self.audit_study(actor, action, outcome(&r), &access, series, detail)
            .await;
        if r.is_ok() && matches!(p, Permission::View | Permission::Retrieve) {
            self.note_cross_site_view(actor, study).await;
        }
        r
    }

    /// The review of a study (findings, AI state, slice order).
    pub async fn review(&self, study: &str, actor: &Actor) -> Result<ReviewView, AppError> {
        let f = self.review_inner(study);
        self.audited(
            actor,
            Permission::View,
            AuditAction::View,
            study,
            None,
            "open review",
            f,
        )
        .await
    }

    /// Accepts a finding.
    pub async fn accept(&self, study: &str, id: &str, actor: &Actor) -> Result<Finding, AppError> {
        let detail = format!("accept finding {}", clip(id));
        let f = self.accept_inner(study, id, actor);
        self.audited(
            actor,
            Permission::Review,
            AuditAction::Review,
            study,
            None,
            &detail,
            f,
        )
        .await
    }

    /// Rejects a finding.
    pub async fn reject(&self, study: &str, id: &str, actor: &Actor) -> Result<Finding, AppError> {
        let detail = format!("reject finding {}", clip(id));
        let f = self.reject_inner(study, id, actor);
        self.audited(
            actor,
            Permission::Review,
            AuditAction::Review,
            study,
            None,
            &detail,
            f,
        )
        .await
    }

    /// Corrects a finding's measures or type.
    pub async fn correct(
        &self,
        study: &str,
        id: &str,
        c: &Correction,
        actor: &Actor,
    ) -> Result<Finding, AppError> {
        let detail = format!("correct finding {}", clip(id));
        let f = self.correct_inner(study, id, c, actor);
        self.audited(
            actor,
            Permission::Review,
            AuditAction::Review,
            study,
            None,
            &detail,
            f,
        )
        .await
    }

    /// Adds a finding the AI missed.
    pub async fn add(
        &self,
        study: &str,
        f: &NewFinding,
        actor: &Actor,
    ) -> Result<Finding, AppError> {
        let fut = self.add_inner(study, f, actor);
        self.audited(
            actor,
            Permission::Review,
            AuditAction::Review,
            study,
            None,
            "add finding",
            fut,
        )
        .await
    }

    /// The SEG overlay the viewer draws.
    pub async fn seg_overlay(&self, study: &str, actor: &Actor) -> Result<Value, AppError> {
        let f = self.seg_overlay_inner(study);
        self.audited(
            actor,
            Permission::View,
            AuditAction::View,
            study,
            None,
            "open segmentation",
            f,
        )
        .await
    }

    /// A study's report. Who may not read drafts (referrers) sees only a signed report;
    /// until there is one, the study has no report for them.
    pub async fn report(
        &self,
        study: &str,
        lang: Option<Lang>,
        actor: &Actor,
    ) -> Result<ReportView, AppError> {
        let drafts = actor.role.may(Permission::ReadDraft);
        let f = async {
            let v = self.report_inner(study, lang).await?;
            if !drafts && v.status != ReportStatus::Signed {
                return Err(AppError::NotFound("the report is not signed".into()));
            }
            Ok(v)
        };
        self.audited(
            actor,
            Permission::ReadReport,
            AuditAction::View,
            study,
            None,
            "open report",
            f,
        )
        .await
    }

    /// Saves the doctor's text (status draft).
    pub async fn edit_report(
        &self,
        study: &str,
        lang: Lang,
        sections: &ReportSections,
        actor: &Actor,
    ) -> Result<ReportView, AppError> {
        let f = self.edit_report_inner(study, lang, sections, actor);
        self.audited(
            actor,
            Permission::Review,
            AuditAction::Review,
            study,
            None,
            "edit report",
            f,
        )
        .await
    }

    /// Signs the report.
    pub async fn sign_report(
        &self,
        study: &str,
        lang: Option<Lang>,
        actor: &Actor,
    ) -> Result<ReportView, AppError> {
        let f = self.sign_report_inner(study, lang, actor);
        self.audited(
            actor,
            Permission::Sign,
            AuditAction::Sign,
            study,
            None,
            "sign report",
            f,
        )
        .await
    }

    /// Signs an addendum to a signed report.
    pub async fn add_addendum(
        &self,
        study: &str,
        text: &str,
        actor: &Actor,
    ) -> Result<ReportView, AppError> {
        let f = self.add_addendum_inner(study, text, actor);
        self.audited(
            actor,
            Permission::Sign,
            AuditAction::Addendum,
            study,
            None,
            "sign addendum",
            f,
        )
        .await
    }

    /// The PDF of the latest signed version, and that version's number.
    pub async fn report_pdf(&self, study: &str, actor: &Actor) -> Result<(Vec<u8>, i64), AppError> {
        let f = self.report_pdf_inner(study);
        self.audited(
            actor,
            Permission::ReadReport,
            AuditAction::Retrieve,
            study,
            None,
            "report PDF",
            f,
        )
        .await
    }

    /// The stored instances within `scope` (WADO-RS): the study must be the actor's.
    pub async fn instances(
        &self,
        actor: &Actor,
        scope: &Scope,
        detail: &str,
    ) -> Result<Vec<StoredInstance>, AppError> {
        self.retrieval(actor, scope, detail, |store, scope| async move {
            Ok(store.instances(&scope).await?)
        })
        .await
    }

    /// The stored instances within `scope` with their metadata (WADO-RS metadata).
    pub async fn metadata(
        &self,
        actor: &Actor,
        scope: &Scope,
        detail: &str,
    ) -> Result<Vec<(StoredInstance, Map<String, Value>)>, AppError> {
        self.retrieval(actor, scope, detail, |store, scope| async move {
            Ok(store.metadata(&scope).await?)
        })
        .await
    }

    /// A read of a study's objects: authorised and audited as a retrieval, within the
    /// actor's organisation.
    async fn retrieval<T, F>(
        &self,
        actor: &Actor,
        scope: &Scope,
        detail: &str,
        read: impl FnOnce(lumen_store::Store, Scope) -> F,
    ) -> Result<T, AppError>
    where
        F: Future<Output = Result<T, AppError>>,
    {
        let study = scope
            .study_uid
            .clone()
            .ok_or_else(|| AppError::Invalid("a study is required".into()))?;
        let scope = Scope {
            org: self.org_scope(actor),
            ..scope.clone()
        };
        let series = scope.series_uid.clone();
        let f = read(self.store.clone(), scope);
        self.audited(
            actor,
            Permission::Retrieve,
            AuditAction::Retrieve,
            &study,
            series.as_deref(),
            detail,
            f,
        )
        .await
    }

    /// The AI jobs of a study (`GET /api/studies/{uid}/ai`).
    pub async fn ai_jobs(
        &self,
        study: &str,
        actor: &Actor,
    ) -> Result<Vec<lumen_store::AiJobStatus>, AppError> {
        let f = async { Ok(self.store.ai_jobs(study).await?) };
        self.audited(
            actor,
            Permission::View,
            AuditAction::View,
            study,
            None,
            "AI results",
            f,
        )
        .await
    }

    /// Queues a study's CT series for the AI again; how many were queued.
    pub async fn requeue_ai(&self, study: &str, actor: &Actor) -> Result<u64, AppError> {
        let f = async { Ok(self.store.requeue_ai(study).await?) };
        self.audited(
            actor,
            Permission::RequeueAi,
            AuditAction::Review,
            study,
            None,
            "AI requeued",
            f,
        )
        .await
    }
}

/// An identifier from a request, shortened for a record.
fn clip(s: &str) -> String {
    s.chars().take(32).collect()
}
