// Patient links (云胶片) in the report panel of a signed study: create a link for the
// patient (its URL and QR code are shown once, here), print the patient's copy of the report
// with the QR code, and see and revoke the study's links.

import { t, fmtDateTime } from './i18n.js';
import * as api from './api.js';
import { toast } from './toast.js';

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

/** The patient-link box of one study. */
export class PatientLinks {
  constructor(study) {
    this.study = study;
    this.created = null;
    this.links = [];
    this.open = false;
    this.el = el('details', { class: 'plink' });
    this.el.addEventListener('toggle', () => {
      this.open = this.el.open;
      if (this.open) this.reload();
    });
  }

  async reload() {
    try {
      this.links = await api.patientLinks(this.study);
    } catch (e) {
      this.links = [];
      toast(`${t('error.load')}: ${e.message}`);
    }
    this.render();
  }

  hours() {
    const v = Number(this.el.querySelector('input[name="plink-hours"]')?.value || 72);
    return Number.isInteger(v) ? v : 72;
  }

  async create() {
    try {
      this.created = await api.createPatientLink(this.study, this.hours());
      await this.reload();
    } catch (e) {
      toast(`${t('error.save')}: ${e.message}`);
    }
  }

  async copy() {
    try {
      const blob = await api.patientCopy(this.study, this.hours());
      const a = el('a', { href: URL.createObjectURL(blob), download: `patient-copy-${this.study}.pdf` });
      document.body.append(a);
      a.click();
      a.remove();
      await this.reload();
    } catch (e) {
      toast(`${t('error.save')}: ${e.message}`);
    }
  }

  async revoke(id) {
    try {
      await api.revokePatientLink(id);
      if (this.created?.id === id) this.created = null;
      toast(t('plink.revoked'));
      await this.reload();
    } catch (e) {
      toast(`${t('error.save')}: ${e.message}`);
    }
  }

  render() {
    const hours = this.el.querySelector('input[name="plink-hours"]')?.value || '72';
    this.el.open = this.open;
    this.el.replaceChildren(el('summary', { class: 'plink-button', text: t('plink.button') }));
    this.el.append(el('p', { class: 'hint', text: t('plink.hint') }));
    const input = el('input', { type: 'number', name: 'plink-hours', min: '1', max: '720', step: '1', value: hours });
    const create = el('button', { class: 'primary plink-create', type: 'button', text: t('plink.create') });
    create.addEventListener('click', () => this.create());
    const copy = el('button', { class: 'ghost plink-copy', type: 'button', text: t('plink.copy') });
    copy.addEventListener('click', () => this.copy());
    this.el.append(el('div', { class: 'r-actions' },
      el('label', {}, el('span', { text: `${t('plink.hours')} ` }), input), create, copy));
    if (this.created) {
      const c = this.created;
      const qr = el('div', { class: 'plink-qr' });
      // The server's own SVG (one rect and one path).
      const svg = new DOMParser().parseFromString(c.qr_svg, 'image/svg+xml').documentElement;
      if (svg && svg.nodeName === 'svg') qr.append(document.importNode(svg, true));
      this.el.append(el('div', { class: 'plink-new' },
        qr,
        el('div', {},
          el('div', { class: 'hint', text: t('plink.url') }),
          el('a', { class: 'plink-url', href: c.url, target: '_blank', rel: 'noopener noreferrer', text: c.url }),
          el('div', { class: 'hint', text: t('plink.expires', { time: fmtDateTime(c.expires_at) }) }))));
    }
    if (this.links.length) {
      const list = el('ul', { class: 'plink-list' });
      for (const l of this.links) {
        const li = el('li', { 'data-link': l.id, 'data-state': l.state },
          el('span', { text: `${t(`plink.state.${l.state}`)} · ${t('plink.expires', { time: fmtDateTime(l.expires_at) })} · ${l.created_by}` }));
        if (l.state === 'active') {
          const b = el('button', { class: 'ghost plink-revoke', type: 'button', text: t('plink.revoke') });
          b.addEventListener('click', () => this.revoke(l.id));
          li.append(b);
        }
        list.append(li);
      }
      this.el.append(el('div', { class: 'hint', text: t('plink.list') }), list);
    }
  }
}
