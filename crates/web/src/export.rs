//! The export API: `GET /api/studies/{study}/export`, an HTTP translation of
//! `lumen_app::export`: a ZIP archive (entries stored, not compressed) with one Part-10
//! file per instance, plus `warnings.json` when any instance needs caution (burned-in
//! annotation...). The archive is streamed: instances are read, de-identified and written
//! one at a time.

use std::io::Write;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lumen_app::export::StudyExport;
use serde::Deserialize;
use zip::write::SimpleFileOptions;

use crate::actor::CurrentUser;
use crate::{ApiError, AppState};

/// The query of an export: de-identified unless `deidentify=false`, with the options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Apply the PS3.15 Annex E Basic Application Level Confidentiality Profile (default
    /// true: an export through the web is de-identified unless asked otherwise).
    #[serde(default = "yes")]
    deidentify: bool,
    /// Retain Longitudinal Temporal Information with Modified Dates.
    #[serde(default)]
    retain_dates: bool,
    /// Retain UIDs.
    #[serde(default)]
    retain_uids: bool,
    /// Clean Descriptors.
    #[serde(default)]
    clean_descriptors: bool,
}

fn yes() -> bool {
    true
}

/// `GET /api/studies/{study}/export?deidentify=&retain_dates=&retain_uids=&clean_descriptors=`.
pub async fn export(
    State(s): State<AppState>,
    Path(study): Path<String>,
    Query(q): Query<ExportParams>,
    CurrentUser(actor): CurrentUser,
) -> Result<Response, ApiError> {
    if !q.deidentify && (q.retain_dates || q.retain_uids || q.clean_descriptors) {
        return Err(ApiError::BadRequest(
            "retain_dates, retain_uids and clean_descriptors need deidentify=true".into(),
        ));
    }
    let options = q.deidentify.then(|| lumen_deid::Options {
        retain_longitudinal_modified_dates: q.retain_dates,
        retain_uids: q.retain_uids,
        clean_descriptors: q.clean_descriptors,
        safe_private: Vec::new(),
    });
    // Errors known before the first byte (no such study...) are answered as such.
    let export = s.app.export_study(&actor, &study, options).await?;
    let name = export.exported_uid(&study);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = write_zip(export, &handle, &tx) {
            // The client sees a broken body rather than a truncated archive that looks whole.
            tracing::warn!(study = %study, "export failed: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.zip\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Sends what is written in chunks of about 1 MiB through the channel.
struct ChannelWriter<'a> {
    tx: &'a tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 1 << 20;

impl ChannelWriter<'_> {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

fn write_zip(
    mut export: StudyExport,
    handle: &tokio::runtime::Handle,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), String> {
    let mut zip = zip::ZipWriter::new_stream(ChannelWriter {
        tx,
        buf: Vec::with_capacity(CHUNK),
    });
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let mut warnings = Vec::new();
    while let Some(next) = handle.block_on(export.next()) {
        let inst = next.map_err(|e| e.to_string())?;
        zip.start_file(format!("{}.dcm", inst.sop_instance_uid), opts)
            .map_err(|e| e.to_string())?;
        zip.write_all(&inst.bytes).map_err(|e| e.to_string())?;
        warnings.extend(inst.warnings);
    }
    if !warnings.is_empty() {
        let json = serde_json::to_vec_pretty(&warnings).map_err(|e| e.to_string())?;
        zip.start_file("warnings.json", opts)
            .map_err(|e| e.to_string())?;
        zip.write_all(&json).map_err(|e| e.to_string())?;
    }
    let mut w = zip.finish().map_err(|e| e.to_string())?;
    w.flush().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;

    use axum::http::{Request, StatusCode};
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    use lumen_store::{Origin, Store, StoreConfig};
    use tower::ServiceExt;

    use crate::{AppState, WebConfig, router};

    fn ct(sop: &str) -> Vec<u8> {
        let el = |t, vr, v: &str| DataElement::new(t, vr, PrimitiveValue::from(v));
        let obj = InMemDicomObject::from_element_iter([
            el(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.2"),
            el(tags::SOP_INSTANCE_UID, VR::UI, sop),
            el(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.826.0.1.3680043.99.1"),
            el(
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                "1.2.826.0.1.3680043.99.1.1",
            ),
            el(tags::MODALITY, VR::CS, "CT"),
            el(tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
            el(tags::PATIENT_ID, VR::LO, "PID-7"),
            el(tags::STUDY_DATE, VR::DA, "20200101"),
        ]);
        let file = obj
            .with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1"))
            .expect("meta");
        let mut out = Vec::new();
        file.write_all(&mut out).expect("write");
        out
    }

    async fn get(app: &axum::Router, uri: &str, token: &str) -> (StatusCode, String, Vec<u8>) {
        let res = app
            .clone()
            .oneshot(
                Request::get(uri)
                    .header("Authorization", format!("Bearer {token}"))
                    .body(axum::body::Body::empty())
                    .expect("req"),
            )
            .await
            .expect("response");
        let status = res.status();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, ct, body.to_vec())
    }

    #[tokio::test]
    async fn export_answers_a_zip_of_deidentified_instances() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(StoreConfig::new(tmp.path()))
            .await
            .expect("store");
        for sop in [
            "1.2.826.0.1.3680043.99.1.1.1",
            "1.2.826.0.1.3680043.99.1.1.2",
        ] {
            store
                .ingest(ct(sop).into(), Origin::Import)
                .await
                .expect("ingest");
        }
        let use_cases = lumen_app::App::new(store.clone(), lumen_app::Settings::default());
        use_cases
            .create_user(
                &lumen_app::Actor::command_line("local"),
                &lumen_app::auth::CreateUser {
                    username: "dr-export".into(),
                    display_name: None,
                    role: "radiologist".into(),
                    org: None,
                    password: "a-long-password-1".into(),
                    must_change_password: Some(false),
                },
            )
            .await
            .expect("user");
        let token = use_cases
            .login(
                "dr-export",
                "a-long-password-1",
                lumen_app::AuditChannel::Http,
                None,
            )
            .await
            .expect("login")
            .token;
        let app = router(AppState {
            app: use_cases,
            store,
            config: Arc::new(WebConfig::default()),
        });
        let (status, ctype, body) = get(
            &app,
            "/api/studies/1.2.826.0.1.3680043.99.1/export?retain_dates=true",
            &token,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, "application/zip");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).expect("zip");
        assert_eq!(zip.len(), 2, "two instances, no warnings.json for CT");
        let mut studies = Vec::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).expect("entry");
            let name = f.name().expect("name").to_string();
            assert!(
                name.starts_with("2.25.") && name.ends_with(".dcm"),
                "{name}"
            );
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).expect("read");
            let obj = lumen_dicom::part10::parse(&bytes).expect("part 10");
            let text = |t| obj.element(t).expect("el").to_str().expect("s").to_string();
            assert_eq!(text(tags::PATIENT_IDENTITY_REMOVED), "YES");
            assert_ne!(text(tags::PATIENT_ID), "PID-7");
            assert_ne!(text(tags::STUDY_DATE), "20200101");
            studies.push(text(tags::STUDY_INSTANCE_UID));
        }
        assert_eq!(studies[0], studies[1], "one new study UID");
        assert!(studies[0].starts_with("2.25."));

        let (status, _, _) = get(&app, "/api/studies/1.2.3/export", &token).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(
            &app,
            "/api/studies/1.2.826.0.1.3680043.99.1/export?deidentify=false&retain_uids=true",
            &token,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _, body) = get(
            &app,
            "/api/studies/1.2.826.0.1.3680043.99.1/export?deidentify=false",
            &token,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let zip = zip::ZipArchive::new(std::io::Cursor::new(body)).expect("zip");
        let names: Vec<String> = zip
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.to_string()))
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n == "1.2.826.0.1.3680043.99.1.1.1.dcm"),
            "{names:?}"
        );
    }
}
