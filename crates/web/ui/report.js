// The report panel: the structured draft written from the accepted findings in the selected
// language, marked as an AI draft until a doctor edits or signs it; free-text editing; signing
// (final and immutable); addenda with their own signature; the signed PDF.

import { t, lang, fmtDateTime } from './i18n.js';
import * as api from './api.js';
import { toast } from './toast.js';
import { PatientLinks } from './plink.js';

const SECTIONS = ['findings', 'impression', 'recommendation'];

/** The report panel of one study. */
export class ReportPanel {
  constructor(el, study) {
    this.el = el;
    this.study = study;
    this.data = null;
    this.dirty = false;
    this.confirming = false;
    this.loading = null;
  }

  /** Reloads the report (in the current language) unless the doctor has unsaved edits. */
  async refresh() {
    if (this.dirty) return;
    const my = (this.loading = api.report(this.study, lang()));
    try {
      const d = await my;
      if (this.loading !== my) return;
      this.data = d;
      this.render();
    } catch (e) {
      if (this.loading !== my) return;
      this.el.textContent = `${t('error.load')}: ${e.message}`;
    }
  }

  sections() {
    const out = {};
    for (const s of SECTIONS) {
      const ta = this.el.querySelector(`textarea[name="${s}"]`);
      out[s] = ta ? ta.value : (this.data?.sections?.[s] || '');
    }
    return out;
  }

  async run(fn) {
    this.el.classList.add('busy');
    try {
      await fn();
    } catch (e) {
      toast(e.status === 409 ? t('report.conflict') : `${t('error.save')}: ${e.message}`);
    } finally {
      this.el.classList.remove('busy');
    }
  }

  save() {
    return this.run(async () => {
      this.data = await api.saveReport(this.study, { lang: lang(), sections: this.sections() });
      this.dirty = false;
      this.render();
      toast(t('report.saved'));
    });
  }

  regenerate() {
    if (!this.data?.generated) return;
    for (const s of SECTIONS) {
      const ta = this.el.querySelector(`textarea[name="${s}"]`);
      if (ta) ta.value = this.data.generated[s] || '';
    }
    this.dirty = true;
    this.markDirty();
  }

  sign() {
    if (!this.confirming) {
      this.confirming = true;
      this.render();
      return undefined;
    }
    this.confirming = false;
    return this.run(async () => {
      if (this.dirty || this.data?.ai_draft) {
        this.data = await api.saveReport(this.study, { lang: lang(), sections: this.sections() });
        this.dirty = false;
      }
      this.data = await api.signReport(this.study, lang());
      this.render();
      toast(t('report.signedToast'));
    });
  }

  addendum() {
    const ta = this.el.querySelector('textarea[name="addendum"]');
    const text = ta ? ta.value.trim() : '';
    if (!text) return undefined;
    return this.run(async () => {
      this.data = await api.addAddendum(this.study, text);
      this.render();
      toast(t('report.addendumSigned'));
    });
  }

  markDirty() {
    const s = this.el.querySelector('.report-state');
    if (s) s.textContent = t('report.unsaved');
  }

  render() {
    const el = this.el;
    const d = this.data;
    if (!d) {
      el.innerHTML = `<p class="hint">${t('study.loading')}</p>`;
      return;
    }
    const keep = this.dirty ? this.sections() : null;
    el.textContent = '';
    el.dataset.status = d.status;
    const signed = d.status === 'signed';
    const banner = document.createElement('div');
    banner.className = `banner ${signed ? 'signed' : 'draft'}`;
    banner.textContent = signed
      ? t('report.signedBy', { who: d.signed_by || '', when: fmtDateTime(d.signed_at) })
      : (d.ai_draft ? t('report.aiDraft') : t('report.draft'));
    el.append(banner);
    if (signed && d.ledger?.length) {
      // Each signature's entry on the node's ledger, its inclusion checked here.
      const box = document.createElement('div');
      box.className = 'ledger hint';
      for (const ref of d.ledger) {
        const line = document.createElement('div');
        line.dataset.ledger = 'pending';
        line.textContent = t('report.ledger.pending', { n: ref.index });
        box.append(line);
        checkLedger(ref, line, 8);
      }
      el.append(box);
    }
    const state = document.createElement('div');
    state.className = 'report-state hint';
    state.textContent = t(`report.status.${d.status}`);
    el.append(state);
    for (const s of SECTIONS) {
      const label = document.createElement('label');
      label.className = 'section';
      const span = document.createElement('span');
      span.textContent = t(`report.section.${s}`);
      const ta = document.createElement('textarea');
      ta.name = s;
      ta.rows = s === 'findings' ? 8 : 4;
      ta.value = keep ? keep[s] : (d.sections?.[s] || '');
      ta.readOnly = signed;
      ta.addEventListener('input', () => { this.dirty = true; this.markDirty(); });
      ta.addEventListener('keydown', (e) => {
        if ((e.ctrlKey || e.metaKey) && e.key === 's') { e.preventDefault(); this.save(); }
      });
      label.append(span, ta);
      el.append(label);
    }
    const actions = document.createElement('div');
    actions.className = 'r-actions';
    const btn = (key, cls, fn, title) => {
      const b = document.createElement('button');
      b.textContent = t(key);
      b.className = cls;
      if (title) b.title = title;
      b.addEventListener('click', fn);
      actions.append(b);
      return b;
    };
    if (!signed) {
      btn('report.save', 'save', () => this.save(), 'Ctrl+S');
      btn('report.regenerate', 'ghost regenerate', () => this.regenerate());
      if (this.confirming) {
        const p = document.createElement('span');
        p.className = 'confirm-text';
        p.textContent = t('report.confirmSign');
        actions.append(p);
        btn('report.confirm', 'primary confirm-sign', () => this.sign());
        btn('review.cancel', 'ghost', () => { this.confirming = false; this.render(); });
      } else {
        btn('report.sign', 'primary sign', () => this.sign());
      }
    } else if (d.pdf_url || signed) {
      const a = document.createElement('a');
      a.className = 'button pdf';
      a.href = d.pdf_url || api.reportPdfUrl(this.study);
      a.download = `report-${this.study}.pdf`;
      a.textContent = t('report.pdf');
      actions.append(a);
    }
    el.append(actions);
    if (signed) {
      const h = document.createElement('h3');
      h.textContent = t('report.addenda');
      el.append(h);
      const ol = document.createElement('ol');
      ol.className = 'addenda';
      for (const a of d.addenda || []) {
        const li = document.createElement('li');
        const p = document.createElement('p');
        p.textContent = a.text;
        const by = document.createElement('div');
        by.className = 'f-by';
        by.textContent = t('report.signedBy', { who: a.signed_by || '', when: fmtDateTime(a.signed_at) });
        li.append(p, by);
        ol.append(li);
      }
      el.append(ol);
      const ta = document.createElement('textarea');
      ta.name = 'addendum';
      ta.rows = 3;
      ta.placeholder = t('report.addendumPlaceholder');
      el.append(ta);
      const b = document.createElement('button');
      b.className = 'primary add-addendum';
      b.textContent = t('report.signAddendum');
      b.addEventListener('click', () => this.addendum());
      el.append(b);
      // Patient links (云胶片): kept across re-renders, so that a new link stays shown.
      this.links = this.links || new PatientLinks(this.study);
      el.append(this.links.el);
      this.links.render();
    }
  }
}

/** Shows whether a ledger entry is in the latest checkpoint, checking its inclusion proof
 *  in this browser; an entry not yet published is asked again (`tries` times). */
function checkLedger(ref, line, tries) {
  api.getJson(ref.proof_url).then(async (p) => {
    const ok = await inclusionVerifies(p);
    const state = ok === null ? 'unchecked' : (ok ? 'verified' : 'failed');
    line.dataset.ledger = state;
    line.textContent = t(`report.ledger.${state}`, { n: ref.index, size: p.tree_size });
  }).catch((e) => {
    if (e.status === 404 && tries > 0 && line.isConnected) {
      setTimeout(() => checkLedger(ref, line, tries - 1), 1500);
    } else if (e.status !== 404) {
      line.dataset.ledger = 'failed';
      line.textContent = t('report.ledger.failed', { n: ref.index });
    }
  });
}

/** RFC 9162 section 2.1.3.2: whether the audit path leads from the entry's leaf hash to
 *  the checkpoint's root. `null` where the browser cannot hash (not a secure context). */
async function inclusionVerifies(p) {
  if (!globalThis.crypto?.subtle) return null;
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const sha = async (...parts) => {
    const buf = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
    let o = 0;
    for (const x of parts) { buf.set(x, o); o += x.length; }
    return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
  };
  let r = await sha(Uint8Array.of(0), new TextEncoder().encode(p.entry));
  let fn = p.index;
  let sn = p.tree_size - 1;
  for (const h of p.inclusion_proof.map(b64)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha(Uint8Array.of(1), h, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await sha(Uint8Array.of(1), r, h);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  const root = b64(p.root_hash);
  return sn === 0 && r.length === root.length && r.every((x, i) => x === root[i]);
}
