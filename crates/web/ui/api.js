// Calls to Lumen's JSON API (/api) and DICOMweb (/dicom-web), with errors as exceptions
// that carry the server's message.

/** An HTTP error with the status and the server's `error` text. */
export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The CSRF token of this session (the `lumen_csrf` cookie), sent with every change. */
export function csrfToken() {
  const m = /(?:^|;\s*)lumen_csrf=([^;]*)/.exec(document.cookie);
  return m ? m[1] : '';
}

async function check(r) {
  if (r.ok) return r;
  if (r.status === 401 && !location.pathname.startsWith('/login')) {
    // The session ended (logout elsewhere, expiry, password change): sign in again.
    location.href = '/login';
  }
  let msg = `${r.status} ${r.statusText}`;
  try {
    const j = await r.json();
    if (j && j.error) msg = j.error;
  } catch (_) { /* not JSON */ }
  throw new HttpError(r.status, msg);
}

/** GET a JSON document. */
export async function getJson(url, opts = {}) {
  const r = await check(await fetch(url, { headers: { Accept: 'application/json' }, ...opts }));
  return r.json();
}

/** Sends JSON with `method` and returns the JSON answer. */
export async function sendJson(method, url, body) {
  const r = await check(await fetch(url, {
    method,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  }));
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

const enc = encodeURIComponent;

/** The worklist with filters (see the API contract). */
export async function worklist(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v != null) q.set(k, v);
  try {
    return await getJson(`/api/worklist?${q}`);
  } catch (e) {
    if (e.status !== 404) throw e;
    return qidoWorklist(params);
  }
}

// An archive without the worklist API (an older server): the study list from QIDO-RS alone.
async function qidoWorklist(params) {
  const q = new URLSearchParams({ includefield: '00081030,00080061,00201208', limit: String(params.limit || 50) });
  if (params.offset) q.set('offset', String(params.offset));
  if (params.modality) q.set('ModalitiesInStudy', params.modality);
  if (params.date_from || params.date_to) q.set('StudyDate', `${params.date_from || ''}-${params.date_to || ''}`);
  if (params.q) q.set('PatientName', `*${params.q}*`);
  const res = await getJson(`/dicom-web/studies?${q}`, { headers: { Accept: 'application/dicom+json' } });
  const v = (ds, tag) => (ds[tag] && ds[tag].Value ? ds[tag].Value[0] : undefined);
  const items = res.map((ds) => ({
    study_uid: v(ds, '0020000D'), patient_name: v(ds, '00100010'), patient_id: v(ds, '00100020'),
    study_date: v(ds, '00080020'), study_time: v(ds, '00080030'), study_description: v(ds, '00081030'),
    modalities: (ds['00080061'] && ds['00080061'].Value) || [], num_instances: v(ds, '00201208'),
    ai_status: 'none', lung_rads: null, report_status: 'unread',
  }));
  items.sort((a, b) => `${b.study_date}${b.study_time}`.localeCompare(`${a.study_date}${a.study_time}`));
  return { total: items.length, items };
}

export const review = (study) => getJson(`/api/studies/${enc(study)}/review`);
export const segOverlay = (study) => getJson(`/api/studies/${enc(study)}/seg-overlay`);
export const aiStatus = (study) => getJson(`/api/studies/${enc(study)}/ai`);
export const accept = (study, id) => sendJson('POST', `/api/studies/${enc(study)}/findings/${enc(id)}/accept`);
export const reject = (study, id) => sendJson('POST', `/api/studies/${enc(study)}/findings/${enc(id)}/reject`);
export const correct = (study, id, body) => sendJson('PUT', `/api/studies/${enc(study)}/findings/${enc(id)}`, body);
export const addFinding = (study, body) => sendJson('POST', `/api/studies/${enc(study)}/findings`, body);
export const report = (study, lang) => getJson(`/api/studies/${enc(study)}/report?lang=${enc(lang)}`);
export const saveReport = (study, body) => sendJson('PUT', `/api/studies/${enc(study)}/report`, body);
export const signReport = (study, lang) => sendJson('POST', `/api/studies/${enc(study)}/report/sign`, { lang });
export const addAddendum = (study, text) => sendJson('POST', `/api/studies/${enc(study)}/report/addenda`, { text });
export const me = () => getJson('/api/auth/me');
export const logout = () => sendJson('POST', '/api/auth/logout');
export const changePassword = (current_password, new_password) =>
  sendJson('POST', '/api/auth/password', { current_password, new_password });
export const users = () => getJson('/api/users');
export const createUser = (body) => sendJson('POST', '/api/users', body);
export const updateUser = (name, body) => sendJson('PUT', `/api/users/${enc(name)}`, body);
export const auditLog = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return getJson(`/api/audit?${q}`);
};
export const reportPdfUrl = (study) => `/api/studies/${enc(study)}/report.pdf`;

/** Patient links (云胶片): create one (its URL and QR code are shown once), list, revoke. */
export const createPatientLink = (study, hours) =>
  sendJson('POST', `/api/studies/${enc(study)}/patient-link`, { expires_in_hours: hours });
export const patientLinks = (study) => getJson(`/api/studies/${enc(study)}/patient-links`);
export const revokePatientLink = (id) => sendJson('DELETE', `/api/patient-links/${enc(id)}`);

/** The patient's copy of the signed report (a new link's QR code on its last page): a Blob. */
export async function patientCopy(study, hours) {
  const r = await check(await fetch(`/api/studies/${enc(study)}/patient-copy`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
    body: JSON.stringify({ expires_in_hours: hours }),
  }));
  return r.blob();
}

/** QIDO-RS: the series of a study. */
export const studySeries = (study) =>
  getJson(`/dicom-web/studies/${enc(study)}/series?includefield=0008103E`, { headers: { Accept: 'application/dicom+json' } });

/** WADO-RS: the metadata of every instance of a series. */
export const seriesMetadata = (study, series) =>
  getJson(`/dicom-web/studies/${enc(study)}/series/${enc(series)}/metadata`, { headers: { Accept: 'application/dicom+json' } });

/**
 * WADO-RS: frame 1 of an instance, decompressed little-endian pixels, as an ArrayBuffer
 * (the single part of the multipart/related answer).
 */
export async function rawFrame(study, series, sop, signal) {
  const r = await check(await fetch(
    `/dicom-web/studies/${enc(study)}/series/${enc(series)}/instances/${enc(sop)}/frames/1`,
    { headers: { Accept: 'multipart/related; type="application/octet-stream"' }, signal },
  ));
  const ct = r.headers.get('content-type') || '';
  const buf = new Uint8Array(await r.arrayBuffer());
  if (!ct.startsWith('multipart/')) return buf.buffer;
  return firstPart(ct, buf);
}

/** The body of the first part of a multipart body. */
export function firstPart(contentType, buf) {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) throw new Error('multipart answer without a boundary');
  const delim = new TextEncoder().encode(`--${m[1]}`);
  const start = indexOf(buf, delim, 0);
  if (start < 0) throw new Error('multipart answer without parts');
  const headEnd = indexOf(buf, new Uint8Array([13, 10, 13, 10]), start + delim.length);
  if (headEnd < 0) throw new Error('multipart part without headers');
  const bodyStart = headEnd + 4;
  const close = new Uint8Array(delim.length + 2);
  close.set([13, 10]);
  close.set(delim, 2);
  // One part: it ends at the last delimiter (searched from the end; the body is large).
  const end = lastIndexOf(buf, close, bodyStart);
  const stop = end < 0 ? buf.length : end;
  return buf.slice(bodyStart, stop).buffer;
}

function indexOf(hay, needle, from) {
  const first = needle[0];
  const last = hay.length - needle.length;
  outer: for (let i = from; i <= last; i++) {
    if (hay[i] !== first) continue;
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function lastIndexOf(hay, needle, min) {
  outer: for (let i = hay.length - needle.length; i >= min; i--) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
