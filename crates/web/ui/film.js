// The patient's cloud film (云胶片): a read-only, non-diagnostic viewer of one study and its
// signed report, opened by a patient link without an account. Everything it loads comes
// from the link's own endpoints (`/film/<token>/...`); it shows no patient name or ID, so
// that a link seen by someone else tells them as little as possible.

import { t, lang, setLang, fmtDateTime } from './i18n.js';

const base = location.pathname.replace(/\/+$/, '');

async function getJson(path) {
  const r = await fetch(`${base}${path}`, { credentials: 'omit', cache: 'no-store' });
  if (!r.ok) {
    const e = new Error(`HTTP ${r.status}`);
    e.status = r.status;
    throw e;
  }
  return r.json();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function imageUrl(series, sop) {
  return `${base}/series/${encodeURIComponent(series)}/instances/${encodeURIComponent(sop)}/rendered`;
}

/** One series: its image and a slice slider (arrow keys, wheel). */
function seriesView(s, i) {
  const n = s.instances.length;
  let at = Math.floor(n / 2);
  const img = el('img', { class: 'film-image', alt: t('film.imageAlt', { n: i + 1 }), draggable: 'false' });
  const slider = el('input', {
    type: 'range', min: '0', max: String(Math.max(0, n - 1)), value: String(at),
    class: 'film-slider', 'aria-label': t('film.slice'),
  });
  const pos = el('span', { class: 'film-pos' });
  const show = () => {
    img.src = imageUrl(s.series_uid, s.instances[at]);
    pos.textContent = t('film.sliceOf', { i: at + 1, n });
    slider.value = String(at);
  };
  slider.addEventListener('input', () => { at = Number(slider.value); show(); });
  img.addEventListener('wheel', (e) => {
    e.preventDefault();
    at = Math.min(n - 1, Math.max(0, at + Math.sign(e.deltaY)));
    show();
  }, { passive: false });
  const title = [
    s.number != null ? t('film.seriesNo', { n: s.number }) : t('film.seriesNo', { n: i + 1 }),
    s.modality, s.description,
  ].filter(Boolean).join(' · ');
  show();
  return el('article', { class: 'film-card', 'data-series': s.series_uid },
    el('h3', { text: title }),
    el('div', { class: 'film-frame' }, img),
    el('div', { class: 'film-controls' }, n > 1 ? slider : null, pos));
}

let data = null;

function render() {
  document.documentElement.lang = lang();
  document.title = `${t('film.title')} — Lumen`;
  document.getElementById('film-title').textContent = t('film.title');
  document.getElementById('film-notice').textContent = t('film.notice');
  const study = document.getElementById('film-study');
  const report = document.getElementById('film-report');
  const list = document.getElementById('film-series');
  const expiry = document.getElementById('film-expiry');
  if (!data) return;
  document.getElementById('film-institution').textContent = data.institution || '';
  study.replaceChildren(
    el('h2', { text: data.description || t('film.study') }),
    el('div', { class: 'film-muted', text: [data.study_date, data.modalities.join(', ')].filter(Boolean).join(' · ') }),
  );
  report.replaceChildren(data.report_signed
    ? el('a', { id: 'film-report-link', class: 'film-button', href: `${base}/report.pdf`, target: '_blank', rel: 'noopener noreferrer', text: t('film.report') })
    : el('span', { class: 'film-muted', text: t('film.noReport') }));
  list.replaceChildren(...(data.series.length
    ? data.series.map(seriesView)
    : [el('p', { class: 'film-muted', text: t('film.noImages') })]));
  expiry.textContent = t('film.expires', { time: fmtDateTime(data.expires_at) });
}

async function load() {
  try {
    data = await getJson('/api/study');
    render();
  } catch (e) {
    data = null;
    render();
    const msg = e.status === 404 ? t('film.invalid') : `${t('film.error')} (${e.message})`;
    document.getElementById('film-study').replaceChildren(el('p', { id: 'film-error', class: 'film-error', text: msg }));
  }
}

for (const b of document.querySelectorAll('[data-lang]')) {
  b.addEventListener('click', () => { setLang(b.dataset.lang); render(); });
}
render();
load();
