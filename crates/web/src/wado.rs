//! WADO-RS: retrieving instances, metadata, frames, bulk data and rendered images
//! (PS3.18 10.4).

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use dicom_object::DefaultDicomObject;
use futures::StreamExt;
use lumen_dicom::pixel;
use lumen_store::{Scope, StoredInstance};
use serde_json::Value;

use crate::actor::Acting;
use crate::media::{self, Multipart};
use crate::{ApiError, base_url};

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

fn scope(study: String, series: Option<String>, sop: Option<String>) -> Result<Scope, ApiError> {
    for (uid, name) in [
        (Some(&study), "StudyInstanceUID"),
        (series.as_ref(), "SeriesInstanceUID"),
        (sop.as_ref(), "SOPInstanceUID"),
    ] {
        if let Some(uid) = uid {
            lumen_dicom::attrs::check_uid(name, uid)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        }
    }
    Ok(Scope {
        study_uid: Some(study),
        series_uid: series,
        sop_instance_uid: sop,
        org: None,
    })
}

async fn instances_in(state: &Acting, scope: &Scope) -> Result<Vec<StoredInstance>, ApiError> {
    let list = state
        .app
        .instances(&state.actor, scope, "WADO-RS retrieve")
        .await?;
    if list.is_empty() {
        return Err(ApiError::NotFound(
            "no such study, series or instance".into(),
        ));
    }
    Ok(list)
}

// ---------------------------------------------------------------- instances

/// The transfer syntax a retrieve must deliver: `None` = as stored.
fn wanted_syntax(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    for r in media::accept(headers) {
        if r.accepts_related("application/dicom", true) || r.essence == "application/dicom" {
            return Ok(r.transfer_syntax.filter(|t| t != "*"));
        }
    }
    Err(ApiError::NotAcceptable(
        "instances are served as multipart/related; type=\"application/dicom\"".into(),
    ))
}

async fn retrieve(state: Acting, headers: HeaderMap, scope: Scope) -> Result<Response, ApiError> {
    let ts = wanted_syntax(&headers)?;
    let list = instances_in(&state, &scope).await?;
    let mp = Multipart::new();
    let content_type = mp.content_type("application/dicom");
    let parts = futures::stream::iter(list)
        .map(move |inst| {
            let ts = ts.clone();
            async move {
                let bytes = inst.read().await.map_err(std::io::Error::other)?;
                match ts {
                    Some(t) if t != inst.transfer_syntax_uid => {
                        let out = tokio::task::spawn_blocking(move || {
                            transcode(&bytes, &t).map(|b| (b, t))
                        })
                        .await
                        .map_err(std::io::Error::other)??;
                        Ok((
                            format!("application/dicom; transfer-syntax={}", out.1),
                            out.0,
                        ))
                    }
                    _ => Ok((
                        format!(
                            "application/dicom; transfer-syntax={}",
                            inst.transfer_syntax_uid
                        ),
                        bytes,
                    )),
                }
            }
        })
        .buffered(2);
    Ok(([(header::CONTENT_TYPE, content_type)], mp.stream(parts)).into_response())
}

/// Transcodes Part-10 bytes to `ts` (lumen-dicom's transcoder, shared with C-GET/C-MOVE).
fn transcode(bytes: &[u8], ts: &str) -> Result<Bytes, std::io::Error> {
    let obj = lumen_dicom::transcode::transcode(bytes, ts).map_err(std::io::Error::other)?;
    let mut out = Vec::with_capacity(bytes.len());
    obj.write_all(&mut out)
        .map_err(|e| std::io::Error::other(format!("cannot transcode to {ts}: {e}")))?;
    Ok(out.into())
}

/// `GET /studies/{study}`
pub async fn study(s: Acting, Path(st): Path<String>, h: HeaderMap) -> Result<Response, ApiError> {
    retrieve(s, h, scope(st, None, None)?).await
}

/// `GET /studies/{study}/series/{series}`
pub async fn series(
    s: Acting,
    Path((st, se)): Path<(String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    retrieve(s, h, scope(st, Some(se), None)?).await
}

/// `GET /studies/{study}/series/{series}/instances/{sop}`
pub async fn instance(
    s: Acting,
    Path((st, se, i)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    retrieve(s, h, scope(st, Some(se), Some(i))?).await
}

// ---------------------------------------------------------------- metadata

async fn metadata(state: Acting, headers: HeaderMap, scope: Scope) -> Result<Response, ApiError> {
    let acceptable = media::accept(&headers);
    if !acceptable
        .iter()
        .any(|r| r.accepts("application/dicom+json") || r.accepts("application/json"))
    {
        return Err(ApiError::NotAcceptable(
            "metadata is served as application/dicom+json".into(),
        ));
    }
    let rows = state
        .app
        .metadata(&state.actor, &scope, "WADO-RS metadata")
        .await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(
            "no such study, series or instance".into(),
        ));
    }
    let base = base_url(&state.config, &headers);
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(inst, mut m)| {
            let url = format!(
                "{base}/studies/{}/series/{}/instances/{}",
                inst.study_uid, inst.series_uid, inst.sop_instance_uid
            );
            lumen_dicom::json::absolutize_bulk_uris(&mut m, &url);
            Value::Object(m)
        })
        .collect();
    let body = serde_json::to_vec(&items).map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/dicom+json"),
        )],
        body,
    )
        .into_response())
}

/// `GET /studies/{study}/metadata`
pub async fn study_metadata(
    s: Acting,
    Path(st): Path<String>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    metadata(s, h, scope(st, None, None)?).await
}

/// `GET /studies/{study}/series/{series}/metadata`
pub async fn series_metadata(
    s: Acting,
    Path((st, se)): Path<(String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    metadata(s, h, scope(st, Some(se), None)?).await
}

/// `GET /studies/{study}/series/{series}/instances/{sop}/metadata`
pub async fn instance_metadata(
    s: Acting,
    Path((st, se, i)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    metadata(s, h, scope(st, Some(se), Some(i))?).await
}

// ---------------------------------------------------------------- frames and bulk data

/// Parses a frame list (`1,3,5`, 1-based) into 0-based frame numbers.
fn frame_list(s: &str) -> Result<Vec<u32>, ApiError> {
    let mut out = Vec::new();
    for f in s.split(',') {
        let n: u32 = f
            .trim()
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("'{f}' is not a frame number")))?;
        if n == 0 {
            return Err(ApiError::BadRequest("frame numbers start at 1".into()));
        }
        out.push(n - 1);
    }
    if out.is_empty() {
        return Err(ApiError::BadRequest("empty frame list".into()));
    }
    Ok(out)
}

async fn load_one(state: &Acting, scope: &Scope) -> Result<(StoredInstance, Bytes), ApiError> {
    let inst = instances_in(state, scope).await?.remove(0);
    let bytes = inst.read().await?;
    Ok((inst, bytes))
}

fn parse_stored(bytes: &[u8]) -> Result<DefaultDicomObject, ApiError> {
    lumen_dicom::part10::parse(bytes)
        .map_err(|e| ApiError::internal(format!("stored object unreadable: {e}")))
}

fn pixel_error(e: pixel::PixelError) -> ApiError {
    match e {
        pixel::PixelError::FrameOutOfRange { .. } => ApiError::NotFound(e.to_string()),
        pixel::PixelError::Unsupported(_) => ApiError::NotAcceptable(e.to_string()),
        other => ApiError::internal(other),
    }
}

/// How frames are to be delivered.
enum FrameForm {
    /// Decompressed, little endian (`application/octet-stream`).
    Native,
    /// As stored, with this part media type.
    Stored(String),
}

fn frame_form(headers: &HeaderMap, stored_ts: &str) -> Result<FrameForm, ApiError> {
    let stored_media = pixel::media_type(stored_ts).unwrap_or("application/octet-stream");
    let encapsulated = pixel::Encoding::of(stored_ts).is_some_and(|e| e.is_encapsulated());
    for r in media::accept(headers) {
        let ts = r.transfer_syntax.as_deref();
        if r.accepts_related("application/octet-stream", true)
            || r.essence == "application/octet-stream"
        {
            match ts {
                Some("*") if encapsulated => {
                    return Ok(FrameForm::Stored(format!(
                        "application/octet-stream; transfer-syntax={stored_ts}"
                    )));
                }
                Some(t) if t != "*" && t != EXPLICIT_LE && t != stored_ts => continue,
                Some(t) if t == stored_ts && encapsulated => {
                    return Ok(FrameForm::Stored(format!(
                        "application/octet-stream; transfer-syntax={stored_ts}"
                    )));
                }
                _ => return Ok(FrameForm::Native),
            }
        }
        if encapsulated
            && r.related_type.is_some()
            && r.accepts_related(stored_media, false)
            && ts.is_none_or(|t| t == "*" || t == stored_ts)
        {
            return Ok(FrameForm::Stored(format!(
                "{stored_media}; transfer-syntax={stored_ts}"
            )));
        }
    }
    Err(ApiError::NotAcceptable(format!(
        "frames of this instance are available as application/octet-stream or {stored_media}"
    )))
}

/// `GET .../instances/{sop}/frames/{frames}`
pub async fn frames(
    s: Acting,
    Path((st, se, i, frames)): Path<(String, String, String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let frames = frame_list(&frames)?;
    let (inst, bytes) = load_one(&s, &scope(st, Some(se), Some(i))?).await?;
    let form = frame_form(&h, &inst.transfer_syntax_uid)?;
    let parts = tokio::task::spawn_blocking(move || {
        let obj = parse_stored(&bytes)?;
        frame_parts(&obj, &frames, &form, false)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(parts_response(parts))
}

/// The parts for `frames` (0-based) of an object, as `form` asks; `joined` puts native
/// frames in one part (bulk data of Pixel Data) rather than one part each.
fn frame_parts(
    obj: &DefaultDicomObject,
    frames: &[u32],
    form: &FrameForm,
    joined: bool,
) -> Result<Vec<(String, Bytes)>, ApiError> {
    let mut parts = Vec::with_capacity(frames.len());
    for &f in frames {
        parts.push(match form {
            FrameForm::Native => (
                format!("application/octet-stream; transfer-syntax={EXPLICIT_LE}"),
                Bytes::from(pixel::native_frame_bytes(obj, f).map_err(pixel_error)?),
            ),
            FrameForm::Stored(ct) => (
                ct.clone(),
                Bytes::from(Cow::into_owned(
                    pixel::encapsulated_frame(obj, f).map_err(pixel_error)?,
                )),
            ),
        });
    }
    if joined && matches!(form, FrameForm::Native) && parts.len() > 1 {
        let ct = parts[0].0.clone();
        let mut all = Vec::with_capacity(parts.iter().map(|(_, b)| b.len()).sum());
        for (_, b) in &parts {
            all.extend_from_slice(b);
        }
        return Ok(vec![(ct, Bytes::from(all))]);
    }
    Ok(parts)
}

/// A multipart/related response of parts sharing one media type.
fn parts_response(parts: Vec<(String, Bytes)>) -> Response {
    let mp = Multipart::new();
    let part_type = parts
        .first()
        .and_then(|(ct, _)| ct.split(';').next())
        .unwrap_or("application/octet-stream")
        .to_string();
    (
        [(header::CONTENT_TYPE, mp.content_type(&part_type))],
        mp.body(parts),
    )
        .into_response()
}

/// `GET .../instances/{sop}/bulkdata/{tag}`
pub async fn bulkdata(
    s: Acting,
    Path((st, se, i, tag)): Path<(String, String, String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let tag = lumen_dicom::json::parse_tag_key(&tag.to_ascii_uppercase())
        .ok_or_else(|| ApiError::BadRequest(format!("'{tag}' is not a tag (GGGGEEEE)")))?;
    let (inst, bytes) = load_one(&s, &scope(st, Some(se), Some(i))?).await?;
    if tag == dicom_dictionary_std::tags::PIXEL_DATA {
        let form = frame_form(&h, &inst.transfer_syntax_uid)?;
        let frames: Vec<u32> = (0..inst.frames).collect();
        let parts = tokio::task::spawn_blocking(move || {
            let obj = parse_stored(&bytes)?;
            frame_parts(&obj, &frames, &form, true)
        })
        .await
        .map_err(ApiError::internal)??;
        return Ok(parts_response(parts));
    }
    let value = tokio::task::spawn_blocking(move || -> Result<Bytes, ApiError> {
        let obj = parse_stored(&bytes)?;
        let elem = obj
            .element(tag)
            .map_err(|_| ApiError::NotFound("the instance has no such attribute".into()))?;
        let v = elem
            .value()
            .to_bytes()
            .map_err(|_| ApiError::NotFound("the attribute holds no bulk data".into()))?;
        Ok(Bytes::from(v.into_owned()))
    })
    .await
    .map_err(ApiError::internal)??;
    let mp = Multipart::new();
    Ok((
        [(
            header::CONTENT_TYPE,
            mp.content_type("application/octet-stream"),
        )],
        mp.body(vec![("application/octet-stream".into(), value)]),
    )
        .into_response())
}

// ---------------------------------------------------------------- rendered

/// Query parameters of rendered and thumbnail resources.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RenderParams {
    window: Option<String>,
    quality: Option<u8>,
    viewport: Option<String>,
}

/// The options of one render request.
fn render_options(
    headers: &HeaderMap,
    p: &RenderParams,
    thumbnail: bool,
) -> Result<lumen_dicom::render::RenderOptions, ApiError> {
    use lumen_dicom::render::{ImageFormat, RenderOptions, Window};
    let mut format = None;
    for r in media::accept(headers) {
        if r.accepts("image/jpeg") {
            format = Some(ImageFormat::Jpeg {
                quality: p.quality.unwrap_or(90).clamp(1, 100),
            });
            break;
        }
        if r.accepts("image/png") {
            format = Some(ImageFormat::Png);
            break;
        }
    }
    let format = format.ok_or_else(|| {
        ApiError::NotAcceptable("rendered images are image/jpeg or image/png".into())
    })?;
    if p.quality.is_some_and(|q| q == 0 || q > 100) {
        return Err(ApiError::BadRequest("quality must be 1..=100".into()));
    }
    let window = p
        .window
        .as_deref()
        .map(Window::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let viewport = match p.viewport.as_deref() {
        Some(v) => Some(parse_viewport(v)?),
        None if thumbnail => Some((128, 128)),
        None => None,
    };
    Ok(RenderOptions {
        window,
        format,
        viewport,
    })
}

fn parse_viewport(v: &str) -> Result<(u32, u32), ApiError> {
    let bad = || ApiError::BadRequest("viewport is width,height".into());
    let (w, h) = v.split_once(',').ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 8192 || h > 8192 {
        return Err(bad());
    }
    Ok((w, h))
}

fn content_type_of(opts: &lumen_dicom::render::RenderOptions) -> &'static str {
    match opts.format {
        lumen_dicom::render::ImageFormat::Png => "image/png",
        _ => "image/jpeg",
    }
}

async fn render_one(
    inst: &StoredInstance,
    frame: u32,
    opts: lumen_dicom::render::RenderOptions,
) -> Result<Bytes, ApiError> {
    let inst = inst.clone();
    tokio::task::spawn_blocking(move || -> Result<Bytes, ApiError> {
        let bytes = inst.read_blocking()?;
        let obj = parse_stored(&bytes)?;
        let img = lumen_dicom::render::render(&obj, frame, &opts).map_err(pixel_error)?;
        Ok(Bytes::from(img))
    })
    .await
    .map_err(ApiError::internal)?
}

fn image_response(ct: &'static str, data: Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(ct))],
        Body::from(data),
    )
        .into_response()
}

/// Picks the representative image of a study or series: the middle image of its first
/// series that has pixel data.
fn representative(list: &[StoredInstance]) -> Option<&StoredInstance> {
    let first = list.iter().find(|i| i.frames > 0)?;
    let same: Vec<&StoredInstance> = list
        .iter()
        .filter(|i| i.series_uid == first.series_uid && i.frames > 0)
        .collect();
    same.get(same.len() / 2).copied()
}

async fn rendered_single(
    state: Acting,
    headers: HeaderMap,
    scope: Scope,
    frame: u32,
    params: RenderParams,
    thumbnail: bool,
) -> Result<Response, ApiError> {
    let opts = render_options(&headers, &params, thumbnail)?;
    let ct = content_type_of(&opts);
    let list = instances_in(&state, &scope).await?;
    let inst =
        representative(&list).ok_or_else(|| ApiError::NotFound("no image to render".into()))?;
    let data = render_one(inst, frame, opts).await?;
    Ok(image_response(ct, data))
}

/// `GET .../instances/{sop}/rendered`: the first frame (PS3.18 allows one image here).
pub async fn instance_rendered(
    s: Acting,
    Path((st, se, i)): Path<(String, String, String)>,
    Query(p): Query<RenderParams>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    rendered_single(s, h, scope(st, Some(se), Some(i))?, 0, p, false).await
}

/// `GET .../instances/{sop}/thumbnail`
pub async fn instance_thumbnail(
    s: Acting,
    Path((st, se, i)): Path<(String, String, String)>,
    Query(p): Query<RenderParams>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    rendered_single(s, h, scope(st, Some(se), Some(i))?, 0, p, true).await
}

/// `GET .../frames/{frames}/rendered`: one frame as a single image; several as multipart.
pub async fn frames_rendered(
    s: Acting,
    Path((st, se, i, frames)): Path<(String, String, String, String)>,
    Query(p): Query<RenderParams>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    frames_image(s, h, scope(st, Some(se), Some(i))?, &frames, p, false).await
}

/// `GET .../frames/{frames}/thumbnail`
pub async fn frames_thumbnail(
    s: Acting,
    Path((st, se, i, frames)): Path<(String, String, String, String)>,
    Query(p): Query<RenderParams>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    frames_image(s, h, scope(st, Some(se), Some(i))?, &frames, p, true).await
}

async fn frames_image(
    state: Acting,
    headers: HeaderMap,
    scope: Scope,
    frames: &str,
    params: RenderParams,
    thumbnail: bool,
) -> Result<Response, ApiError> {
    let frames = frame_list(frames)?;
    let opts = render_options(&headers, &params, thumbnail)?;
    let ct = content_type_of(&opts);
    let inst = instances_in(&state, &scope).await?.remove(0);
    if frames.len() == 1 {
        let data = render_one(&inst, frames[0], opts).await?;
        return Ok(image_response(ct, data));
    }
    let mut parts = Vec::with_capacity(frames.len());
    for f in frames {
        parts.push((ct.to_string(), render_one(&inst, f, opts).await?));
    }
    let mp = Multipart::new();
    Ok((
        [(header::CONTENT_TYPE, mp.content_type(ct))],
        mp.body(parts),
    )
        .into_response())
}

async fn rendered_many(
    state: Acting,
    headers: HeaderMap,
    scope: Scope,
    params: RenderParams,
) -> Result<Response, ApiError> {
    let opts = render_options(&headers, &params, false)?;
    let ct = content_type_of(&opts);
    let list: Vec<StoredInstance> = instances_in(&state, &scope)
        .await?
        .into_iter()
        .filter(|i| i.frames > 0)
        .collect();
    if list.is_empty() {
        return Err(ApiError::NotFound("no image to render".into()));
    }
    let mp = Multipart::new();
    let content_type = mp.content_type(ct);
    let parts = futures::stream::iter(list)
        .map(move |inst| {
            let opts = opts;
            async move {
                render_one(&inst, 0, opts)
                    .await
                    .map(|d| (ct.to_string(), d))
                    .map_err(|e| std::io::Error::other(e.to_string()))
            }
        })
        .buffered(2);
    Ok(([(header::CONTENT_TYPE, content_type)], mp.stream(parts)).into_response())
}

/// `GET /studies/{study}/rendered`: every image of the study, rendered, as multipart.
pub async fn study_rendered(
    s: Acting,
    Path(st): Path<String>,
    Query(p): Query<RenderParams>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    rendered_many(s, h, scope(st, None, None)?, p).await
}

/// `GET /studies/{study}/series/{series}/rendered`
pub async fn series_rendered(
    s: Acting,
    Path((st, se)): Path<(String, String)>,
    Query(p): Query<RenderParams>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    rendered_many(s, h, scope(st, Some(se), None)?, p).await
}

/// `GET /studies/{study}/thumbnail`
pub async fn study_thumbnail(
    s: Acting,
    Path(st): Path<String>,
    Query(p): Query<RenderParams>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    rendered_single(s, h, scope(st, None, None)?, 0, p, true).await
}

/// `GET /studies/{study}/series/{series}/thumbnail`
pub async fn series_thumbnail(
    s: Acting,
    Path((st, se)): Path<(String, String)>,
    Query(p): Query<RenderParams>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    rendered_single(s, h, scope(st, Some(se), None)?, 0, p, true).await
}
