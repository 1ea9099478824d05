// Entry of Lumen's web app: hash routing (`#/` worklist, `#/study/{uid}` viewer, review and
// report), the language switch (`?lang=en|zh-CN`, else the browser's language), the keyboard
// shortcut overlay and notifications.

import { t, lang, setLang, relabel } from './i18n.js';
import { showWorklist } from './worklist.js';
import { showStudy } from './study.js';
import { showAdmin } from './admin.js';
import * as api from './api.js';

let page = null;

const SHORTCUTS = [
  ['help.k.worklist', [['/', 'help.search'], ['↑ ↓ / J K', 'help.moveRow'], ['Enter', 'help.openStudy']]],
  ['help.k.viewer', [
    ['↑ ↓ / wheel', 'help.scroll'], ['PgUp PgDn', 'help.page'], ['Home End', 'help.ends'],
    ['1 2 3', 'help.presets'], ['W P Z L', 'help.tools'], ['S', 'help.seg'], ['M', 'help.markers'],
    ['0', 'help.reset'], ['Ctrl + wheel', 'help.zoomWheel'], ['Esc', 'help.escape'],
  ]],
  ['help.k.review', [
    ['N B', 'help.next'], ['A', 'help.accept'], ['R', 'help.reject'], ['C', 'help.correct'],
    ['+', 'help.add'], ['Enter', 'help.jump'], ['F E', 'help.tabs'], ['Ctrl+S', 'help.saveReport'],
    ['Backspace', 'help.back'],
  ]],
  ['help.k.general', [['?', 'help.toggle'], ['Alt+L', 'help.lang']]],
];

function renderHelp() {
  const el = document.getElementById('help');
  el.textContent = '';
  const box = document.createElement('div');
  box.className = 'modal-box';
  const h = document.createElement('h2');
  h.textContent = t('help.title');
  box.append(h);
  for (const [group, rows] of SHORTCUTS) {
    const h3 = document.createElement('h3');
    h3.textContent = t(group);
    const table = document.createElement('table');
    for (const [k, label] of rows) {
      const tr = table.insertRow();
      const kc = tr.insertCell();
      const kbd = document.createElement('kbd');
      kbd.textContent = k;
      kc.append(kbd);
      tr.insertCell().textContent = t(label);
    }
    box.append(h3, table);
  }
  const close = document.createElement('button');
  close.textContent = t('help.close');
  close.addEventListener('click', () => toggleHelp(false));
  box.append(close);
  el.append(box);
}

function toggleHelp(show) {
  const el = document.getElementById('help');
  const on = show ?? el.hidden;
  if (on) renderHelp();
  el.hidden = !on;
}

function hideToast() {
  document.getElementById('toast').hidden = true;
}

function route() {
  hideToast();
  if (page) page.destroy();
  page = null;
  const main = document.getElementById('main');
  const hash = location.hash || '#/';
  const m = /^#\/study\/([^?]+)/.exec(hash);
  const admin = hash.startsWith('#/admin');
  document.getElementById('nav-worklist').classList.toggle('active', !m && !admin);
  document.getElementById('nav-admin').classList.toggle('active', admin);
  if (admin) {
    page = showAdmin(main);
  } else if (m) {
    page = showStudy(main, decodeURIComponent(m[1]));
  } else {
    const q = hash.indexOf('?');
    page = showWorklist(main, new URLSearchParams(q >= 0 ? hash.slice(q + 1) : ''));
  }
  relabel(document.body);
}

function changeLang(l) {
  hideToast();
  setLang(l);
  const u = new URL(location.href);
  u.searchParams.set('lang', lang());
  history.replaceState(null, '', u);
  document.getElementById('lang-select').value = lang();
  relabel(document.body);
  if (page && page.relabel) page.relabel();
  if (!document.getElementById('help').hidden) renderHelp();
}

// Who is signed in: shown in the top bar; admins get the administration page, whose
// users see no patient data (and land there).
async function showUser() {
  const me = await api.me();
  const name = document.getElementById('user-name');
  name.textContent = `${me.display_name} · ${me.org_name}`;
  name.dataset.username = me.username;
  name.dataset.role = me.role;
  if (me.must_change_password) location.href = '/login';
  if (me.role === 'admin') {
    document.getElementById('nav-admin').hidden = false;
    document.getElementById('nav-worklist').hidden = true;
    if (!location.hash.startsWith('#/admin')) location.hash = '#/admin';
  }
  return me;
}

async function init() {
  document.getElementById('logout-button').addEventListener('click', async () => {
    try { await api.logout(); } finally { location.href = '/login'; }
  });
  try {
    await showUser();
  } catch (_) {
    return; // 401: api.js sends the browser to the sign-in page
  }
  const select = document.getElementById('lang-select');
  select.value = lang();
  select.addEventListener('change', () => changeLang(select.value));
  document.getElementById('help-button').addEventListener('click', () => toggleHelp());
  document.getElementById('help').addEventListener('click', (e) => {
    if (e.target.id === 'help') toggleHelp(false);
  });
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented) return;
    const typing = e.target instanceof Element && e.target.closest('input[type=text], input[type=search], input[type=date], textarea');
    if (e.key === '?' && !typing) {
      toggleHelp();
      e.preventDefault();
      return;
    }
    if (e.key === 'Escape' && !document.getElementById('help').hidden) {
      toggleHelp(false);
      return;
    }
    if (e.altKey && (e.key === 'l' || e.key === 'L' || e.code === 'KeyL')) {
      changeLang(lang() === 'en' ? 'zh-CN' : 'en');
      e.preventDefault();
      return;
    }
    if (page && page.key && !typing && page.key(e)) e.preventDefault();
  });
  window.addEventListener('hashchange', route);
  route();
  document.body.dataset.ready = 'true';
}

init();
