// The worklist: the archive's studies, newest first, with AI status, highest Lung-RADS
// category and report status; search and filters kept in the URL hash so a reload keeps them.

import { t, fmtDate, fmtName } from './i18n.js';
import { worklist } from './api.js';

const PAGE = 50;

/** Renders the worklist into `main`; returns a cleanup function. */
export function showWorklist(main, params) {
  const state = {
    q: params.get('q') || '',
    modality: params.get('modality') || '',
    ai: params.get('ai') || '',
    report: params.get('report') || '',
    date_from: params.get('date_from') || '',
    date_to: params.get('date_to') || '',
    offset: Number(params.get('offset') || 0),
  };
  main.innerHTML = `
    <section class="worklist">
      <h1 data-i18n="worklist.title"></h1>
      <form class="filters" autocomplete="off">
        <input type="search" name="q" data-i18n-placeholder="worklist.search" data-i18n-title="worklist.searchHint">
        <label><span data-i18n="worklist.modality"></span>
          <select name="modality">
            <option value="" data-i18n="worklist.any"></option>
            <option value="CT">CT</option><option value="MR">MR</option><option value="CR">CR</option>
            <option value="DX">DX</option><option value="PT">PT</option><option value="US">US</option>
          </select></label>
        <label><span data-i18n="worklist.ai"></span>
          <select name="ai">
            <option value="" data-i18n="worklist.any"></option>
            <option value="queued" data-i18n="ai.queued"></option>
            <option value="running" data-i18n="ai.running"></option>
            <option value="done" data-i18n="ai.done"></option>
            <option value="failed" data-i18n="ai.failed"></option>
            <option value="none" data-i18n="ai.none"></option>
          </select></label>
        <label><span data-i18n="worklist.report"></span>
          <select name="report">
            <option value="" data-i18n="worklist.any"></option>
            <option value="unread" data-i18n="report.status.unread"></option>
            <option value="draft" data-i18n="report.status.draft"></option>
            <option value="signed" data-i18n="report.status.signed"></option>
          </select></label>
        <label><span data-i18n="worklist.from"></span><input type="date" name="date_from"></label>
        <label><span data-i18n="worklist.to"></span><input type="date" name="date_to"></label>
        <button type="reset" class="ghost" data-i18n="worklist.clear"></button>
      </form>
      <table class="studies">
        <thead><tr>
          <th data-i18n="worklist.col.patient"></th>
          <th data-i18n="worklist.col.patientId"></th>
          <th data-i18n="worklist.col.date"></th>
          <th data-i18n="worklist.col.modality"></th>
          <th data-i18n="worklist.col.description"></th>
          <th data-i18n="worklist.col.images"></th>
          <th data-i18n="worklist.col.ai"></th>
          <th data-i18n="worklist.col.lungRads"></th>
          <th data-i18n="worklist.col.report"></th>
        </tr></thead>
        <tbody></tbody>
      </table>
      <div class="pager">
        <button class="ghost prev" data-i18n="worklist.prev"></button>
        <span class="count"></span>
        <button class="ghost next" data-i18n="worklist.next"></button>
      </div>
      <p class="hint" data-i18n="worklist.keys"></p>
    </section>`;
  const form = main.querySelector('form');
  const tbody = main.querySelector('tbody');
  const count = main.querySelector('.count');
  const toIso = (d) => (d && d.length === 8 ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : '');
  for (const k of ['q', 'modality', 'ai', 'report']) form.elements[k].value = state[k];
  form.elements.date_from.value = toIso(state.date_from);
  form.elements.date_to.value = toIso(state.date_to);

  let items = [];
  let incoming = [];
  let cursor = -1;
  let timer = 0;
  let alive = true;
  let seq = 0;

  const load = async () => {
    const my = ++seq;
    try {
      const res = await worklist({ ...state, limit: PAGE });
      if (!alive || my !== seq) return;
      items = res.items || [];
      incoming = res.incoming || [];
      render(res.total ?? items.length);
      main.querySelector('.worklist').dataset.loaded = 'true';
    } catch (e) {
      if (!alive) return;
      tbody.innerHTML = `<tr><td colspan="9" class="error"></td></tr>`;
      tbody.querySelector('td').textContent = `${t('error.load')}: ${e.message}`;
    }
  };

  const render = (total) => {
    tbody.textContent = '';
    // Studies a member shared with this node, announced, whose images are on their way.
    for (const g of incoming) {
      const tr = tbody.insertRow();
      tr.className = 'incoming';
      tr.dataset.incoming = g.study_uid;
      const td = tr.insertCell();
      td.colSpan = 9;
      td.textContent = t('worklist.incoming', { name: g.from, purpose: g.purpose });
    }
    if (!items.length && !incoming.length) {
      const tr = tbody.insertRow();
      const td = tr.insertCell();
      td.colSpan = 9;
      td.className = 'empty';
      td.textContent = t('worklist.empty');
    }
    items.forEach((s, i) => {
      const tr = tbody.insertRow();
      tr.dataset.study = s.study_uid;
      tr.tabIndex = 0;
      tr.addEventListener('focus', () => { cursor = i; });
      const cell = (text, cls) => {
        const td = tr.insertCell();
        td.textContent = text ?? '';
        if (cls) td.className = cls;
        return td;
      };
      cell(fmtName(s.patient_name), 'patient');
      cell(s.patient_id);
      cell(fmtDate(s.study_date, s.study_time));
      cell((s.modalities || []).join(', '));
      cell(s.study_description);
      cell(String(s.num_instances ?? ''), 'num');
      const ai = cell('', 'ai');
      const badge = document.createElement('span');
      badge.className = `badge ai-${s.ai_status}`;
      badge.textContent = t(`ai.${s.ai_status || 'none'}`);
      ai.append(badge);
      const lr = cell('', 'lr');
      if (s.lung_rads) {
        const b = document.createElement('span');
        b.className = `badge lr lr-${String(s.lung_rads).toLowerCase()}`;
        b.textContent = s.lung_rads;
        b.title = t('worklist.lungRadsHint');
        lr.append(b);
      } else lr.textContent = '—';
      const rep = cell('', 'report');
      const rb = document.createElement('span');
      rb.className = `badge rep-${s.report_status}`;
      rb.textContent = t(`report.status.${s.report_status || 'unread'}`);
      rep.append(rb);
      // Shared studies: who sent it here, or which hospital reported it.
      for (const [key, name] of [['worklist.sharedFrom', s.shared_from], ['worklist.reportedBy', s.reported_by]]) {
        if (!name) continue;
        const sb = document.createElement('span');
        sb.className = 'badge shared';
        sb.textContent = t(key, { name });
        rep.append(' ', sb);
      }
      tr.addEventListener('click', () => open(s.study_uid));
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(s.study_uid); });
    });
    const from = total ? state.offset + 1 : 0;
    count.textContent = t('worklist.count', { from, to: state.offset + items.length, total });
    main.querySelector('.prev').disabled = state.offset === 0;
    main.querySelector('.next').disabled = state.offset + items.length >= total;
  };

  const open = (uid) => { location.hash = `#/study/${encodeURIComponent(uid)}`; };

  const update = () => {
    const f = form.elements;
    state.q = f.q.value.trim();
    state.modality = f.modality.value;
    state.ai = f.ai.value;
    state.report = f.report.value;
    state.date_from = f.date_from.value.replaceAll('-', '');
    state.date_to = f.date_to.value.replaceAll('-', '');
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(state)) if (v && !(k === 'offset' && v === 0)) p.set(k, v);
    const h = p.toString() ? `#/?${p}` : '#/';
    if (location.hash !== h && !(h === '#/' && location.hash === '')) history.replaceState(null, '', h);
    load();
  };
  let debounce = 0;
  form.addEventListener('input', () => {
    clearTimeout(debounce);
    state.offset = 0;
    debounce = setTimeout(update, 200);
  });
  form.addEventListener('submit', (e) => { e.preventDefault(); update(); });
  form.addEventListener('reset', () => setTimeout(() => { state.offset = 0; update(); }));
  main.querySelector('.prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - PAGE); update(); });
  main.querySelector('.next').addEventListener('click', () => { state.offset += PAGE; update(); });

  const onKey = (e) => {
    if (e.target instanceof Element && e.target.closest('input, select, textarea')) {
      if (e.key === 'Escape') e.target.blur();
      return;
    }
    if (e.key === '/') {
      e.preventDefault();
      form.elements.q.focus();
    } else if (e.key === 'j' || e.key === 'ArrowDown') {
      cursor = Math.min(items.length - 1, cursor + 1);
      e.preventDefault();
      tbody.rows[cursor]?.focus();
    } else if (e.key === 'k' || e.key === 'ArrowUp') {
      cursor = Math.max(0, cursor - 1);
      e.preventDefault();
      tbody.rows[cursor]?.focus();
    } else if (e.key === 'Enter' && items[cursor]) {
      open(items[cursor].study_uid);
    }
  };
  document.addEventListener('keydown', onKey);
  load();
  // Refresh while the page is open: AI and report states change on the server.
  timer = setInterval(() => { if (!document.hidden) load(); }, 5000);
  return {
    relabel: () => load(),
    destroy: () => {
      alive = false;
      clearInterval(timer);
      document.removeEventListener('keydown', onKey);
    },
  };
}
