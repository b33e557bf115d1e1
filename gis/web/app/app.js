/**
 * The grid member's app: screens, the outbox's status line and its flushes, the service
 * worker. The modules beside it do the work: report.js (the form), where.js (the map and the
 * grid), outbox.js (IndexedDB, sending), work.js (my cases and errands), i18n.js (labels).
 */

import { call } from './api.js';
import { applyLabels, errorText, setEnglish, isEnglish, t } from './i18n.js';
import * as outbox from './outbox.js';
import { ReportForm } from './report.js';
import { MyWork, formatTime } from './work.js';

const config = JSON.parse(document.getElementById('gis-config').textContent);
const $ = (id) => document.getElementById(id);
const FLUSH_EVERY_MS = 30000;

let form;
let work;
// The report the member is looking at: its reply is shown when the outbox sends it.
let awaiting = null;

function show(name) {
  document.querySelectorAll('.screen').forEach((s) => { s.hidden = s.id !== `screen-${name}`; });
  const tab = { reply: 'report', item: 'work' }[name] || name;
  document.querySelectorAll('#tabs button').forEach((b) => {
    if (b.dataset.screen === tab) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  });
  if (name === 'report') form.invalidateSize();
  window.scrollTo(0, 0);
}

async function drawOutbox() {
  const items = await outbox.items();
  const waiting = items.filter((i) => i.state === 'waiting').length;
  const status = $('outbox-status');
  status.hidden = waiting === 0;
  status.textContent = `${waiting} ${t('waiting')}`;
  status.dataset.count = String(waiting);
  let list = $('outbox-list');
  if (!list) {
    list = document.createElement('ul');
    list.id = 'outbox-list';
    list.className = 'cards';
    $('h-report').after(list);
  }
  list.replaceChildren(...items.filter((i) => i.state === 'failed').map(failedCard));
}

function failedCard(item) {
  const li = document.createElement('li');
  li.className = 'dup failed';
  const text = document.createElement('p');
  text.className = 'error';
  text.textContent = `${t('failed')}: ${errorText(item.error || {})}`;
  const edit = document.createElement('button');
  edit.type = 'button';
  edit.className = 'secondary';
  edit.textContent = t('edit');
  // Back into the form: choose another category (a retired one) and send again.
  edit.addEventListener('click', async () => {
    await outbox.remove(item.key);
    form.load(item);
    if (item.error && item.error.code === 'unknown_code') form.category = null;
    await drawOutbox();
  });
  const drop = document.createElement('button');
  drop.type = 'button';
  drop.className = 'secondary';
  drop.textContent = t('discard');
  drop.addEventListener('click', async () => { await outbox.discard(item); await drawOutbox(); });
  li.append(text, edit, drop);
  return li;
}

async function flush() {
  await outbox.flush(onSent, drawOutbox);
  // A category retired while a report waited: the picker must not offer it again.
  if ((await outbox.items()).some((i) => i.error && i.error.code === 'unknown_code')) {
    await form.loadCategories();
  }
}

function onSent(item, reply) {
  if (awaiting === item.key) {
    awaiting = null;
    showReply(reply);
  }
}

function showReply(reply) {
  const facts = $('reply-facts');
  facts.replaceChildren();
  const rows = [
    ['caseNo', `#${reply.id}`],
    ['grid', reply.grid ? `${reply.grid.name || reply.grid.code}` : t('noGrid')],
    ['member', reply.grid && reply.grid.member ? reply.grid.member.name : '—'],
    ['unit', reply.unit ? reply.unit.name : t('noUnit')],
    ['due', formatTime(reply.due_at)],
  ];
  for (const [key, value] of rows) {
    facts.append(Object.assign(document.createElement('dt'), { textContent: t(key) }));
    facts.append(Object.assign(document.createElement('dd'), { textContent: value, id: `reply-${key}` }));
  }
  const dups = reply.possible_duplicates || [];
  $('duplicates').hidden = dups.length === 0;
  $('duplicate-list').replaceChildren(...dups.map((d) => duplicateCard(reply, d)));
  show('reply');
}

function duplicateCard(reply, dup) {
  const li = document.createElement('li');
  li.className = 'dup';
  const text = document.createElement('p');
  text.textContent = `#${dup.id} · ${Math.round(dup.distance_m)} m · ${formatTime(dup.reported_at)}`;
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'secondary';
  button.dataset.duplicateOf = String(dup.id);
  button.textContent = `${t('attach')} #${dup.id}`;
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await call(`/incidents/${reply.id}/actions`, {
        method: 'POST',
        json: { action: 'mark_duplicate', duplicate_of: dup.id, reason: '网格员确认为同一事件 same case, confirmed by the grid member' },
      });
      text.textContent = `✓ ${t('attached')} #${dup.id}`;
      text.className = 'ok';
      button.remove();
    } catch (error) {
      text.textContent = errorText(error);
      button.disabled = false;
    }
  });
  li.append(text, button);
  return li;
}

async function send() {
  const made = form.body(config.user);
  if (made.missing) {
    $('report-error').textContent = made.missing;
    return;
  }
  $('send').disabled = true;
  try {
    const item = await outbox.enqueue(made.body, made.photos);
    awaiting = item.key;
    form.reset();
    await drawOutbox();
    await flush();
    if (awaiting === item.key) {
      const left = (await outbox.items()).find((i) => i.key === item.key);
      $('report-error').textContent = left && left.state === 'failed' ? `${t('failed')}: ${errorText(left.error)}` : t('queued');
      awaiting = null;
    }
  } finally {
    $('send').disabled = false;
  }
}

function relabel() {
  applyLabels(document);
  form.drawCategories();
  drawOutbox();
}

async function registerWorker() {
  if (!('serviceWorker' in navigator)) return;
  try {
    const registration = await navigator.serviceWorker.register(config.sw, { scope: config.scope });
    await navigator.serviceWorker.ready;
    // The worker keeps the page's files, Leaflet included, for a start without signal.
    const urls = [...document.querySelectorAll('link[href], script[src]')].map((el) => el.href || el.src);
    (registration.active || navigator.serviceWorker.controller)?.postMessage({ keep: [location.pathname, ...urls] });
  } catch (error) {
    console.warn('service worker not registered', error);
  }
}

function start() {
  form = new ReportForm(config);
  work = new MyWork(show);
  $('send').addEventListener('click', send);
  $('reply-done').addEventListener('click', () => show('report'));
  document.querySelectorAll('#tabs button').forEach((b) => b.addEventListener('click', () => {
    show(b.dataset.screen);
    if (b.dataset.screen === 'work') work.load();
  }));
  $('english').checked = isEnglish();
  $('english').addEventListener('change', (e) => { setEnglish(e.target.checked); relabel(); });
  $('who').textContent = config.user ? `${config.user.name} (${config.user.role})` : '';
  relabel();
  show('report');
  form.loadCategories();
  form.locate();
  // Safari has no Background Sync: flush on start, when the signal returns, and on a timer.
  window.addEventListener('online', flush);
  setInterval(() => { if (navigator.onLine) flush(); }, FLUSH_EVERY_MS);
  flush();
  registerWorker();
  document.body.dataset.ready = 'true';
}

start();
