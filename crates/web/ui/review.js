// The findings panel: the AI's nodules and the doctor's, each accepted, rejected or
// corrected (type, location, long and short axis redrawn with the line tool), and findings
// the AI missed added with the same tools. The AI's original stays beside the doctor's version.

import { t, fmtDateTime } from './i18n.js';
import * as api from './api.js';
import { toast } from './toast.js';

const TYPES = ['solid', 'part-solid', 'ground-glass', 'calcified'];
const LOBES = ['RUL', 'RML', 'RLL', 'LUL', 'LLL'];

const fmt = (x, d = 1) => (Number.isFinite(x) ? Number(x).toFixed(d) : '—');

/** The review panel of one study. */
export class ReviewPanel {
  constructor(el, study) {
    this.el = el;
    this.study = study;
    this.data = null;
    this.selectedId = null;
    this.editing = null; // { id|null, type, location, long, short }
    this.viewer = null;
    this.onChange = null;
    this.onFocus = null;
    this.onRender = null;
    this.busy = false;
  }

  async load() {
    this.data = await api.review(this.study);
    const list = this.findings();
    if (!this.selectedId && list.length) this.selectedId = list[0].id;
    this.render();
    return this.data;
  }

  findings() {
    return (this.data && this.data.findings) || [];
  }

  selected() {
    return this.findings().find((f) => f.id === this.selectedId) || null;
  }

  destroy() {
    if (this.viewer) this.viewer.cancelLine();
  }

  /** Selects a finding; `jump` moves the viewer to it. */
  select(id, jump = true) {
    this.selectedId = id;
    this.render();
    const f = this.selected();
    if (jump && f && this.onFocus) this.onFocus(f);
    const li = this.el.querySelector(`[data-finding-id="${CSS.escape(id)}"]`);
    if (li) li.scrollIntoView({ block: 'nearest' });
  }

  step(d) {
    const list = this.findings();
    if (!list.length) return;
    const i = list.findIndex((f) => f.id === this.selectedId);
    const n = list[(i + d + list.length) % list.length];
    this.select(n.id, true);
  }

  replace(f) {
    const list = this.findings();
    const i = list.findIndex((x) => x.id === f.id);
    if (i >= 0) list[i] = f; else list.push(f);
  }

  async act(fn) {
    if (this.busy) return;
    this.busy = true;
    this.el.classList.add('busy');
    try {
      await fn();
      // Refetch: the study's Lung-RADS and the other findings may have changed too.
      await this.load();
      if (this.onChange) this.onChange();
    } catch (e) {
      toast(e.status === 409 ? t('review.signedConflict') : `${t('error.save')}: ${e.message}`);
    } finally {
      this.busy = false;
      this.el.classList.remove('busy');
      this.render();
    }
  }

  accept(id) { return this.act(async () => this.replace(await api.accept(this.study, id))); }

  reject(id) { return this.act(async () => this.replace(await api.reject(this.study, id))); }

  startEdit(id) {
    const f = id ? this.findings().find((x) => x.id === id) : null;
    const m = f ? f.current || f.ai : null;
    this.editing = {
      id, type: m ? m.type : 'solid', location: m ? m.location || '' : '', long: null, short: null,
      solid: m && m.solid_component_mm != null ? String(m.solid_component_mm) : '',
    };
    if (f) this.select(f.id, true);
    this.render();
  }

  cancelEdit() {
    this.editing = null;
    if (this.viewer) {
      this.viewer.cancelLine();
      this.viewer.lines = this.viewer.lines.filter((l) => !l.edit);
      this.viewer.requestRender();
    }
    this.render();
  }

  draw(which) {
    if (!this.viewer || !this.editing) return;
    const ed = this.editing;
    this.el.querySelector(`[data-draw="${which}"]`)?.classList.add('active');
    this.viewer.drawLine((line) => {
      if (this.editing !== ed) return;
      ed[which] = line;
      this.viewer.lines = this.viewer.lines.filter((l) => !(l.edit && l.which === which));
      this.viewer.lines.push({ ...line, edit: true, which, color: which === 'long' ? '#ff6b6b' : '#4fd1c5', label: t(`review.${which}`) });
      this.render();
    });
  }

  async save() {
    const ed = this.editing;
    if (!ed) return;
    if (!ed.id && (!ed.long || !ed.short)) {
      toast(t('review.needLines'));
      return;
    }
    const body = { type: ed.type };
    if (ed.location) body.location = ed.location;
    if (ed.long) body.long_axis_line = ed.long.world;
    if (ed.short) body.short_axis_line = ed.short.world;
    // Lung-RADS grades a part-solid nodule by its solid component.
    if (ed.type === 'part-solid' && ed.solid !== '') {
      const mm = Number(ed.solid);
      if (!(mm > 0)) {
        toast(t('review.solidInvalid'));
        return;
      }
      body.solid_component_mm = mm;
    }
    await this.act(async () => {
      let f;
      if (ed.id) f = await api.correct(this.study, ed.id, body);
      else f = await api.addFinding(this.study, { ...body, sop_instance_uid: ed.long.sop });
      this.replace(f);
      this.selectedId = f.id;
      this.editing = null;
      if (this.viewer) this.viewer.lines = this.viewer.lines.filter((l) => !l.edit);
    });
  }

  /** Review keys: A accept, R reject, C correct, N/B next/previous, + add. */
  key(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return false;
    const f = this.selected();
    switch (e.key) {
      case 'n': case 'N': case 'j': this.step(1); return true;
      case 'b': case 'B': case 'k': this.step(-1); return true;
      case 'a': case 'A': if (f) this.accept(f.id); return !!f;
      case 'r': case 'R': if (f) this.reject(f.id); return !!f;
      case 'c': case 'C': if (f) this.startEdit(f.id); return !!f;
      case '+': this.startEdit(null); return true;
      case 'Enter': if (f && this.onFocus) this.onFocus(f); return !!f;
      default: return false;
    }
  }

  measuresText(m) {
    if (!m) return '';
    const parts = [
      `${t(`type.${m.type}`)}`,
      m.location ? t(`lobe.${m.location}`, {}, m.location) : '',
      `${fmt(m.long_axis_mm)} × ${fmt(m.short_axis_mm)} mm (${t('review.mean')} ${fmt(m.mean_diameter_mm)} mm)`,
      m.solid_component_mm != null ? `${t('review.solid')} ${fmt(m.solid_component_mm)} mm` : '',
      m.volume_mm3 != null ? `${fmt(m.volume_mm3, 0)} mm³` : '',
      m.mean_hu != null ? `${fmt(m.mean_hu, 0)} HU` : '',
    ];
    return parts.filter(Boolean).join(' · ');
  }

  render() {
    const el = this.el;
    if (!this.data) {
      el.innerHTML = `<p class="hint">${t('study.loading')}</p>`;
      return;
    }
    const d = this.data;
    el.textContent = '';
    const head = document.createElement('div');
    head.className = 'panel-head';
    const h = document.createElement('h2');
    h.textContent = t('review.title');
    const lr = document.createElement('span');
    lr.className = 'study-lr';
    lr.textContent = d.lung_rads ? `${t('review.studyLungRads')}: ${d.lung_rads}` : '';
    const add = document.createElement('button');
    add.className = 'add';
    add.textContent = t('review.add');
    add.title = '+';
    add.addEventListener('click', () => this.startEdit(null));
    head.append(h, lr, add);
    el.append(head);
    if (d.ai_status && d.ai_status !== 'done') {
      const p = document.createElement('p');
      p.className = 'hint';
      p.textContent = t(`review.ai.${d.ai_status}`, {}, t(`ai.${d.ai_status}`));
      el.append(p);
    }
    const ol = document.createElement('ol');
    ol.className = 'findings';
    const list = this.findings();
    if (!list.length && d.ai_status === 'done') {
      const p = document.createElement('p');
      p.className = 'hint';
      p.textContent = t('review.none');
      el.append(p);
    }
    list.forEach((f, i) => {
      const li = document.createElement('li');
      li.dataset.findingId = f.id;
      li.dataset.status = f.status;
      li.classList.toggle('selected', f.id === this.selectedId);
      const top = document.createElement('div');
      top.className = 'f-top';
      const num = document.createElement('span');
      num.className = 'f-num';
      num.textContent = String(i + 1);
      const origin = document.createElement('span');
      origin.className = 'f-origin';
      origin.textContent = t(`review.origin.${f.origin}`);
      const st = document.createElement('span');
      st.className = `badge st-${f.status}`;
      st.textContent = t(`review.status.${f.status}`);
      const cur = f.current || f.ai;
      const lrb = document.createElement('span');
      lrb.className = `badge lr lr-${String(cur?.lung_rads || '').toLowerCase()}`;
      lrb.textContent = cur?.lung_rads ? `Lung-RADS ${cur.lung_rads}` : '';
      top.append(num, origin, st, lrb);
      const meas = document.createElement('div');
      meas.className = 'f-meas';
      meas.textContent = this.measuresText(cur);
      li.append(top, meas);
      if (f.ai && (f.status === 'corrected')) {
        const orig = document.createElement('div');
        orig.className = 'f-ai';
        orig.textContent = `${t('review.aiOriginal')}: ${this.measuresText(f.ai)} · Lung-RADS ${f.ai.lung_rads}`;
        li.append(orig);
      }
      if (f.ai && f.ai.score != null && f.origin === 'ai') {
        const sc = document.createElement('div');
        sc.className = 'f-score';
        sc.textContent = `${t('review.score')} ${fmt(f.ai.score, 2)}`;
        li.append(sc);
      }
      if (f.edited_by) {
        const by = document.createElement('div');
        by.className = 'f-by';
        by.textContent = `${f.edited_by} · ${fmtDateTime(f.edited_at)}`;
        li.append(by);
      }
      const actions = document.createElement('div');
      actions.className = 'f-actions';
      const btn = (label, cls, key, fn, disabled) => {
        const b = document.createElement('button');
        b.textContent = t(label);
        b.className = cls;
        b.title = key;
        b.disabled = !!disabled;
        b.addEventListener('click', (e) => { e.stopPropagation(); fn(); });
        actions.append(b);
      };
      btn('review.accept', 'accept', 'A', () => this.accept(f.id), f.status === 'accepted' || f.status === 'added');
      btn('review.reject', 'reject', 'R', () => this.reject(f.id), f.status === 'rejected');
      btn('review.correct', 'correct', 'C', () => this.startEdit(f.id));
      li.append(actions);
      if (this.editing && this.editing.id === f.id) li.append(this.editor());
      li.addEventListener('click', () => this.select(f.id, true));
      ol.append(li);
    });
    el.append(ol);
    if (this.editing && !this.editing.id) {
      const box = document.createElement('div');
      box.className = 'new-finding';
      const h3 = document.createElement('h3');
      h3.textContent = t('review.addTitle');
      box.append(h3, this.editor());
      el.append(box);
    }
    const legend = document.createElement('p');
    legend.className = 'hint';
    legend.textContent = t('review.keys');
    el.append(legend);
    if (this.onRender) this.onRender();
  }

  editor() {
    const ed = this.editing;
    const box = document.createElement('div');
    box.className = 'editor';
    box.addEventListener('click', (e) => e.stopPropagation());
    const typeSel = document.createElement('select');
    typeSel.name = 'type';
    for (const ty of TYPES) typeSel.add(new Option(t(`type.${ty}`), ty, false, ty === ed.type));
    typeSel.addEventListener('change', () => { ed.type = typeSel.value; this.render(); });
    const locSel = document.createElement('select');
    locSel.name = 'location';
    locSel.add(new Option('—', ''));
    for (const l of LOBES) locSel.add(new Option(t(`lobe.${l}`), l, false, l === ed.location));
    if (ed.location && !LOBES.includes(ed.location)) locSel.add(new Option(ed.location, ed.location, false, true));
    locSel.addEventListener('change', () => { ed.location = locSel.value; });
    const row = (label, input) => {
      const l = document.createElement('label');
      const s = document.createElement('span');
      s.textContent = t(label);
      l.append(s, input);
      box.append(l);
    };
    row('review.type', typeSel);
    if (ed.type === 'part-solid') {
      const solid = document.createElement('input');
      solid.name = 'solid_component_mm';
      solid.type = 'number';
      solid.min = '0.1';
      solid.step = '0.1';
      solid.value = ed.solid;
      solid.placeholder = 'mm';
      solid.addEventListener('input', () => { ed.solid = solid.value; });
      row('review.solid', solid);
    }
    row('review.location', locSel);
    for (const which of ['long', 'short']) {
      const b = document.createElement('button');
      b.dataset.draw = which;
      b.textContent = `${t(`review.draw.${which}`)}${ed[which] ? ` (${ed[which].mm.toFixed(1)} mm)` : ''}`;
      b.addEventListener('click', () => this.draw(which));
      box.append(b);
    }
    const hint = document.createElement('p');
    hint.className = 'hint';
    hint.textContent = t('review.drawHint');
    const save = document.createElement('button');
    save.className = 'primary save';
    save.textContent = t('review.save');
    save.addEventListener('click', () => this.save());
    const cancel = document.createElement('button');
    cancel.className = 'ghost';
    cancel.textContent = t('review.cancel');
    cancel.addEventListener('click', () => this.cancelEdit());
    box.append(hint, save, cancel);
    return box;
  }
}
