// Under the study header: for a study shared with this node, who sent it and what of it
// has arrived (and that its origin does not answer, while it is down); and the patient's
// prior studies here, this node's own and those members shared, through the consortium
// patient index.
import { t, fmtDate } from './i18n.js';
import * as api from './api.js';

/** Fills a notes row after `head` for `study`; nothing is shown when there is nothing to say. */
export async function studyNotes(head, study) {
  const notes = document.createElement('div');
  notes.className = 'study-notes';
  notes.hidden = true;
  head.after(notes);
  const enc = encodeURIComponent(study);
  const [shared, priors] = await Promise.all([
    api.getJson(`/api/studies/${enc}/shared`).catch(() => null),
    api.getJson(`/api/studies/${enc}/priors`).catch(() => null),
  ]);
  const s = shared && shared.shared;
  if (s) {
    const p = document.createElement('p');
    p.className = 'shared-status' + (s.missing > 0 || !s.origin_reachable ? ' warn' : '');
    const parts = [t('shared.from', { name: s.origin_name, purpose: s.purpose })];
    if (s.expected != null) {
      parts.push(t('shared.received', { received: s.received, expected: s.expected }));
    }
    if (!s.origin_reachable) {
      const since = new Date(s.origin_confirmed_ms).toISOString();
      parts.push(t(s.missing > 0 ? 'shared.unreachableMissing' : 'shared.unreachable',
        { name: s.origin_name, since: since.slice(11, 16) }));
    }
    p.textContent = parts.join(' · ');
    notes.append(p);
  }
  const list = (priors && priors.priors) || [];
  if (list.length > 0) {
    const p = document.createElement('p');
    p.className = 'priors';
    p.append(`${t('priors.title')}: `);
    list.forEach((x, i) => {
      if (i > 0) p.append(' · ');
      const a = document.createElement('a');
      a.href = `#/study/${encodeURIComponent(x.study_uid)}`;
      a.textContent = [fmtDate(x.study_date), x.modalities.replaceAll('\\', '/'), x.description || '']
        .filter(Boolean).join(' ');
      a.title = x.shared_from ? t('priors.sharedBy', { name: x.shared_from }) : t('priors.own');
      p.append(a);
      if (x.shared_from) {
        const b = document.createElement('span');
        b.className = 'badge shared';
        b.textContent = t('worklist.sharedFrom', { name: x.shared_from });
        p.append(' ', b);
      }
    });
    notes.append(p);
  }
  notes.hidden = notes.childElementCount === 0;
}
