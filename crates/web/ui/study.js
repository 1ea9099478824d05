// The study page: the CT viewer with the AI's findings (review panel), coronal and sagittal
// reformats through the finding under review, and the report panel.

import { t, fmtDate, fmtName, relabel } from './i18n.js';
import * as api from './api.js';
import { Volume, val } from './volume.js';
import { Viewer, drawReformat, STATUS_COLOR } from './viewer.js';
import { ReviewPanel } from './review.js';
import { ReportPanel } from './report.js';
import { toast } from './toast.js';
import { shareButton } from './share.js';
import { studyNotes } from './priors.js';

/** The CT series to show: the one the AI analysed, else the CT (or any) series with most images. */
async function pickSeries(study, review) {
  if (review && review.source_series_uid) return review.source_series_uid;
  const series = await api.studySeries(study);
  const image = series.filter((s) => !['SEG', 'SR', 'DOC', 'KO', 'PR'].includes(val(s, '00080060')));
  image.sort((a, b) => (val(b, '00080060') === 'CT') - (val(a, '00080060') === 'CT')
    || Number(val(b, '00201209') || 0) - Number(val(a, '00201209') || 0));
  if (!image.length) throw new Error(t('study.noImages'));
  return String(val(image[0], '0020000E'));
}

/** Renders the study page into `main`; returns { destroy, relabel, key }. */
export function showStudy(main, study) {
  main.innerHTML = `
    <section class="study">
      <div class="study-head">
        <a href="#/" class="back" data-i18n="study.back"></a>
        <span class="patient"></span>
        <span class="meta"></span>
        <span class="ai-state"></span>
        <span class="spacer"></span>
        <span class="citation"></span>
      </div>
      <div class="study-body">
        <div class="viewport"><div class="placeholder" data-i18n="study.loading"></div></div>
        <aside class="side">
          <div class="reformats">
            <figure><canvas class="coronal"></canvas><figcaption data-i18n="viewer.coronal"></figcaption></figure>
            <figure><canvas class="sagittal"></canvas><figcaption data-i18n="viewer.sagittal"></figcaption></figure>
          </div>
          <div class="tabs" role="tablist">
            <button role="tab" data-tab="findings" class="active" data-i18n="tab.findings"></button>
            <button role="tab" data-tab="report" data-i18n="tab.report"></button>
          </div>
          <div class="tab-body findings-panel" data-tab-body="findings"></div>
          <div class="tab-body report-panel" data-tab-body="report" hidden></div>
        </aside>
      </div>
    </section>`;
  const root = main.querySelector('.study');
  let alive = true;
  let viewer = null;
  let volume = null;
  const review = new ReviewPanel(main.querySelector('.findings-panel'), study);
  const report = new ReportPanel(main.querySelector('.report-panel'), study);
  review.onChange = () => report.refresh();
  review.onFocus = (f) => { if (viewer) viewer.focusFinding(f); };

  const tabs = main.querySelectorAll('[data-tab]');
  const showTab = (name) => {
    tabs.forEach((b) => b.classList.toggle('active', b.dataset.tab === name));
    main.querySelectorAll('[data-tab-body]').forEach((d) => { d.hidden = d.dataset.tabBody !== name; });
    if (name === 'report') report.refresh();
  };
  tabs.forEach((b) => b.addEventListener('click', () => showTab(b.dataset.tab)));

  const cor = main.querySelector('canvas.coronal');
  const sag = main.querySelector('canvas.sagittal');
  const reformat = () => {
    if (!viewer) return;
    const f = review.selected();
    const m = f && (f.current || f.ai);
    const mark = m ? viewer.voxelOf(m) : [volume.cols / 2, volume.rows / 2, viewer.slice];
    const color = f ? STATUS_COLOR[f.status] : '#ffe066';
    drawReformat(cor, volume, 'coronal', mark[1], viewer.lut, mark, color);
    drawReformat(sag, volume, 'sagittal', mark[0], viewer.lut, mark, color);
  };
  for (const [c, plane] of [[cor, 'coronal'], [sag, 'sagittal']]) {
    // Clicking a reformat jumps the axial view to that height.
    c.addEventListener('click', (e) => {
      if (!viewer) return;
      const r = c.getBoundingClientRect();
      const hmm = volume.n * volume.sliceSpacing;
      const wmm = (plane === 'coronal' ? volume.cols * volume.colSpacing : volume.rows * volume.rowSpacing);
      const s = Math.min(r.width / wmm, r.height / hmm);
      const top = (r.height - hmm * s) / 2;
      const frac = (e.clientY - r.top - top) / (hmm * s);
      if (frac >= 0 && frac <= 1) viewer.setSlice(volume.n - 1 - Math.floor(frac * volume.n));
    });
  }

  const head = async () => {
    try {
      const res = await api.getJson(`/dicom-web/studies?StudyInstanceUID=${encodeURIComponent(study)}&includefield=00081030`,
        { headers: { Accept: 'application/dicom+json' } });
      const s = res[0];
      if (!s || !alive) return;
      main.querySelector('.patient').textContent = `${fmtName(val(s, '00100010'))}  ${val(s, '00100020') || ''}`;
      main.querySelector('.meta').textContent = [fmtDate(val(s, '00080020'), val(s, '00080030')),
        val(s, '00081030') || ''].filter(Boolean).join(' · ');
    } catch (_) { /* the header stays empty */ }
  };

  const start = async () => {
    head();
    shareButton(main.querySelector('.study-head'), study);
    studyNotes(main.querySelector('.study-head'), study);
    let rv = null;
    try {
      rv = await review.load();
    } catch (e) {
      toast(`${t('error.load')}: ${e.message}`);
    }
    if (!alive) return;
    aiBadge();
    try {
      const series = await pickSeries(study, rv);
      const order = rv && rv.source_series_uid === series ? rv.slice_order || [] : [];
      volume = await Volume.open(study, series, order);
    } catch (e) {
      main.querySelector('.placeholder').textContent = `${t('error.load')}: ${e.message}`;
      return;
    }
    if (!alive) return;
    const vp = main.querySelector('.viewport');
    vp.innerHTML = '';
    const vroot = document.createElement('div');
    vp.append(vroot);
    viewer = new Viewer(vroot, volume);
    relabel(vroot);
    window.lumenViewer = viewer;
    viewer.onReformat = reformat;
    viewer.onSelect = (f) => review.select(f.id, false);
    review.viewer = viewer;
    review.onRender = () => {
      viewer.setFindings(review.findings(), review.selectedId);
      viewer.reformatDirty = true;
      viewer.requestRender();
    };
    review.onRender();
    const first = review.selected() || review.findings()[0];
    const m = first && (first.current || first.ai);
    const startSlice = m ? Math.round(viewer.voxelOf(m)[2]) : volume.n >> 1;
    viewer.setSlice(startSlice);
    relabelPage();
    volume.load(startSlice).catch((e) => { if (alive && e.name !== 'AbortError') toast(`${t('error.load')}: ${e.message}`); });
    loadSeg();
    // While the AI is still reading, look again every few seconds; show its findings and SEG
    // as soon as it is done.
    if (['queued', 'running'].includes(rv?.ai_status)) {
      poll = setInterval(async () => {
        if (!alive || document.hidden || review.editing) return;
        try {
          const now = await review.load();
          if (!['queued', 'running'].includes(now.ai_status)) {
            clearInterval(poll);
            aiBadge();
            loadSeg();
          }
        } catch (_) { /* try again at the next tick */ }
      }, 5000);
    }
  };

  const loadSeg = () => api.segOverlay(study).then((ov) => {
    if (alive && viewer && ov && ov.source_series_uid === volume.series) viewer.setSegOverlay(ov);
  }).catch(() => { /* no SEG yet: the outline toggle just shows nothing */ });
  let poll = 0;

  const aiBadge = () => {
    const rv = review.data;
    const el = main.querySelector('.ai-state');
    el.textContent = '';
    if (!rv) return;
    const b = document.createElement('span');
    b.className = `badge ai-${rv.ai_status}`;
    b.textContent = `${t('worklist.col.ai')}: ${t(`ai.${rv.ai_status || 'none'}`)}`;
    el.append(b);
    main.querySelector('.citation').textContent = rv.citation || '';
    main.querySelector('.citation').title = rv.citation || '';
  };

  const relabelPage = () => {
    relabel(root);
    aiBadge();
    review.render();
    report.render();
    if (viewer) viewer.requestRender();
  };

  start();
  return {
    destroy: () => {
      alive = false;
      clearInterval(poll);
      if (volume) volume.close();
      if (viewer) viewer.destroy();
      review.destroy();
      window.lumenViewer = undefined;
    },
    relabel: () => {
      relabelPage();
      report.refresh();
    },
    key: (e) => {
      const el = e.target instanceof Element ? e.target : null;
      if (el && el.closest('input[type=text], input[type=search], textarea, select')) return false;
      if (review.key(e)) return true;
      if (viewer && viewer.key(e)) return true;
      if (e.key === 'f' || e.key === 'F') { showTab('findings'); return true; }
      if (e.key === 'e' || e.key === 'E') { showTab('report'); return true; }
      if (e.key === 'Backspace' || (e.key === 'ArrowLeft' && e.altKey)) { location.hash = '#/'; return true; }
      return false;
    },
    showTab,
    root,
  };
}
