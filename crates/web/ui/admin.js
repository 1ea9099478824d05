// The administration page (`#/admin`, admins only): the audit trail searched by study,
// user and time, and the organisation's users (create, disable, change role).

import { t } from './i18n.js';
import * as api from './api.js';

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...children);
  return e;
}

function input(id, label, type = 'text') {
  const i = el('input', { id, type });
  return [el('label', {}, el('span', { textContent: t(label) }), i), i];
}

/** Shows the administration page in `main`. */
export function showAdmin(main) {
  main.textContent = '';
  const auditBox = el('section', { className: 'admin-audit' });
  const usersBox = el('section', { className: 'admin-users' });
  main.append(auditBox, usersBox);

  // The audit trail.
  const [studyL, study] = input('audit-study', 'admin.study');
  const [userL, user] = input('audit-user', 'admin.user');
  const [fromL, from] = input('audit-from', 'admin.from', 'date');
  const [toL, to] = input('audit-to', 'admin.to', 'date');
  const go = el('button', { id: 'audit-search', type: 'submit', textContent: t('admin.search') });
  const form = el('form', { className: 'filters' }, studyL, userL, fromL, toL, go);
  const table = el('table', { id: 'audit-table', className: 'list' });
  auditBox.append(el('h2', { textContent: t('admin.audit') }), form, table);
  const cols = ['time', 'user', 'org', 'action', 'outcome', 'source', 'study', 'patient', 'detail'];
  async function search() {
    const rows = await api.auditLog({ study: study.value.trim(), user: user.value.trim(), from: from.value, to: to.value });
    table.textContent = '';
    const head = table.createTHead().insertRow();
    for (const c of cols) head.append(el('th', { textContent: t(`admin.col.${c}`) }));
    const body = table.createTBody();
    if (!rows.length) body.insertRow().insertCell().textContent = t('admin.none');
    for (const r of rows) {
      const tr = body.insertRow();
      tr.dataset.action = r.action;
      const patient = [r.patient_name, r.patient_id].filter(Boolean).join(' · ');
      for (const v of [r.time, r.user, r.org, r.action, r.outcome, r.source || '', r.study_uid || '', patient, r.detail]) {
        tr.insertCell().textContent = v;
      }
    }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); search().catch(showError); });

  // Users.
  const utable = el('table', { id: 'users-table', className: 'list' });
  const [nameL, name] = input('new-username', 'admin.user');
  const [pwL, pw] = input('new-password', 'login.password', 'password');
  const role = el('select', { id: 'new-role' });
  for (const r of ['radiologist', 'technologist', 'referrer', 'admin']) role.append(el('option', { value: r, textContent: r }));
  const create = el('button', { type: 'submit', textContent: t('admin.create') });
  const uform = el('form', { className: 'filters' }, nameL, pwL, el('label', {}, el('span', { textContent: t('admin.col.role') }), role), create);
  usersBox.append(el('h2', { textContent: t('admin.users') }), utable, el('h3', { textContent: t('admin.newUser') }), uform);
  async function listUsers() {
    const list = await api.users();
    utable.textContent = '';
    const head = utable.createTHead().insertRow();
    for (const c of ['user', 'name', 'role', 'org', 'state']) head.append(el('th', { textContent: t(`admin.col.${c}`) }));
    const body = utable.createTBody();
    for (const u of list) {
      const tr = body.insertRow();
      for (const v of [u.username, u.display_name, u.role, u.org_name]) tr.insertCell().textContent = v;
      const state = el('button', { className: 'ghost', textContent: t(u.disabled ? 'admin.disabled' : 'admin.active') });
      state.addEventListener('click', async () => {
        await api.updateUser(u.username, { disabled: !u.disabled }).catch(showError);
        listUsers().catch(showError);
      });
      tr.insertCell().append(state);
    }
  }
  uform.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api.createUser({ username: name.value.trim(), password: pw.value, role: role.value });
      name.value = '';
      pw.value = '';
      showError(t('admin.created'));
      await listUsers();
    } catch (err) { showError(err); }
  });

  function showError(e) {
    const toast = document.getElementById('toast');
    toast.textContent = typeof e === 'string' ? e : e.message;
    toast.hidden = false;
  }
  search().catch(showError);
  listUsers().catch(showError);
  return { destroy() {} };
}
