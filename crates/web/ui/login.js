// The sign-in page: posts the form to /api/auth/login as JSON (the session cookie comes
// back), asks for a new password when the account must change it, then opens the app.

import { t, relabel } from './i18n.js';
import { csrfToken } from './api.js';

const form = document.getElementById('login-form');
const pwForm = document.getElementById('password-form');
let current = '';

function showError(el, msg) {
  el.textContent = msg;
  el.hidden = false;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = document.getElementById('login-error');
  err.hidden = true;
  const username = form.username.value.trim();
  current = form.password.value;
  let r;
  try {
    r = await fetch('/api/auth/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username, password: current }),
    });
  } catch (e) {
    showError(err, t('login.offline'));
    return;
  }
  if (r.status === 429) return showError(err, t('login.throttled'));
  if (!r.ok) return showError(err, t('login.failed'));
  const j = await r.json();
  if (j.user && j.user.must_change_password) {
    form.hidden = true;
    pwForm.hidden = false;
    document.getElementById('new-password').focus();
    return;
  }
  location.href = '/';
});

pwForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = document.getElementById('password-error');
  err.hidden = true;
  const next = pwForm.new_password.value;
  if (next !== pwForm.repeat.value) return showError(err, t('login.mismatch'));
  const r = await fetch('/api/auth/password', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
    body: JSON.stringify({ current_password: current, new_password: next }),
  });
  if (!r.ok) {
    let msg = t('login.changeFailed');
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    return showError(err, msg);
  }
  location.href = '/';
});

const params = new URLSearchParams(location.search);
if (params.get('error') === 'throttled') showError(document.getElementById('login-error'), t('login.throttled'));
else if (params.get('error')) showError(document.getElementById('login-error'), t('login.failed'));
relabel(document.body);
