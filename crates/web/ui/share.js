// "Share with…": share the open study with a consortium member (purpose, the patient's
// separate consent or an emergency), and the study's shares with their revocation.
import { t } from './i18n.js';
import * as api from './api.js';
import { toast } from './toast.js';

/** Adds the share button to `head` when the user may share and the node has members. */
export async function shareButton(head, study) {
  let data;
  try {
    data = await api.getJson(`/api/shares?study=${encodeURIComponent(study)}`);
  } catch (_) {
    return; // not allowed, or no consortium
  }
  if (!data.members || data.members.length === 0) return;
  const btn = document.createElement('button');
  btn.className = 'share-open';
  btn.textContent = t('share.open');
  head.append(btn);
  btn.addEventListener('click', () => openDialog(study, data.members));
}

function openDialog(study, members) {
  const dlg = document.createElement('dialog');
  dlg.className = 'share-dialog';
  dlg.innerHTML = `
    <form method="dialog">
      <h3></h3>
      <label><span class="l-to"></span> <select name="to"></select></label>
      <label><span class="l-purpose"></span> <input name="purpose" required maxlength="500"></label>
      <label class="check"><input type="checkbox" name="consent"> <span class="l-consent"></span></label>
      <label class="check"><input type="checkbox" name="emergency"> <span class="l-emergency"></span></label>
      <div class="actions"><button value="cancel" class="cancel"></button> <button value="share" class="ok"></button></div>
      <h4 class="l-list"></h4>
      <ul class="shares"></ul>
    </form>`;
  dlg.querySelector('h3').textContent = t('share.title');
  dlg.querySelector('.l-to').textContent = t('share.to');
  dlg.querySelector('.l-purpose').textContent = t('share.purpose');
  dlg.querySelector('.l-consent').textContent = t('share.consent');
  dlg.querySelector('.l-emergency').textContent = t('share.emergency');
  dlg.querySelector('.cancel').textContent = t('share.cancel');
  dlg.querySelector('.ok').textContent = t('share.submit');
  dlg.querySelector('.l-list').textContent = t('share.list');
  const sel = dlg.querySelector('select');
  for (const m of members) {
    const o = document.createElement('option');
    o.value = m.id;
    o.textContent = m.name;
    sel.append(o);
  }
  const names = Object.fromEntries(members.map((m) => [m.id, m.name]));
  const list = dlg.querySelector('.shares');
  const refresh = async () => {
    const d = await api.getJson(`/api/shares?study=${encodeURIComponent(study)}`);
    list.replaceChildren();
    for (const s of d.shares) {
      const li = document.createElement('li');
      li.textContent = `${names[s.to] || s.to} · ${s.purpose} · ${t(`share.status.${s.status}`)}`
        + (s.status === 'active' && s.pending ? ` · ${t('share.pending', { n: s.pending })}` : '')
        + (s.failed ? ` · ${t('share.failed', { n: s.failed })}` : '')
        + (s.reported_by ? ` · ${t('share.reportedBy', { name: s.reported_by })}` : '');
      if (s.status === 'active') {
        const rv = document.createElement('button');
        rv.type = 'button';
        rv.textContent = t('share.revoke');
        rv.addEventListener('click', async () => {
          try {
            await api.sendJson('DELETE', `/api/shares/${encodeURIComponent(s.id)}`);
            toast(t('share.revoked'));
            refresh();
          } catch (e) { toast(e.message); }
        });
        li.append(' ', rv);
      }
      list.append(li);
    }
  };
  dlg.querySelector('.ok').addEventListener('click', async (e) => {
    e.preventDefault();
    const f = dlg.querySelector('form').elements;
    if (!f.consent.checked && !f.emergency.checked) {
      toast(t('share.needConsent'));
      return;
    }
    try {
      await api.sendJson('POST', '/api/shares', {
        study_uid: study, to: f.to.value, purpose: f.purpose.value.trim(),
        consent: f.consent.checked, emergency: f.emergency.checked,
      });
      toast(t('share.done', { name: names[f.to.value] || f.to.value }));
      refresh();
    } catch (err) { toast(err.message); }
  });
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  refresh().catch(() => {});
  dlg.showModal();
}
