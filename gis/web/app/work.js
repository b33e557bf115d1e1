/**
 * My work: the cases of my grids (GET /incidents answers a grid member with exactly those)
 * and the errands (跑小二) assigned to me (GET /errands), newest first with their deadlines.
 * Opening one offers the workflow's own allowed actions among those a member takes in the
 * field — accept, start, resolve; collect, submit, deliver — with a note and photos.
 */

import { ROOT, call, uploadPhoto } from './api.js';
import { errorText, statusLabel, t } from './i18n.js';

const CASE_ACTIONS = ['accept', 'start', 'resolve'];
const ERRAND_ACTIONS = ['collect', 'submit', 'deliver'];
const $ = (id) => document.getElementById(id);

export function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function card(title, due, open, onClick) {
  const li = document.createElement('li');
  const button = document.createElement('button');
  button.type = 'button';
  const name = document.createElement('span');
  name.textContent = title;
  const when = document.createElement('span');
  when.className = 'due';
  const late = open && due && new Date(due) < new Date();
  if (late) when.classList.add('overdue');
  when.textContent = `${t('due')} ${formatTime(due)}${late ? ` · ${t('overdue')}` : ''}`;
  button.append(name, when);
  button.addEventListener('click', onClick);
  li.append(button);
  return li;
}

function facts(list, pairs) {
  list.replaceChildren();
  for (const [key, value] of pairs) {
    const dt = document.createElement('dt');
    dt.textContent = t(key);
    const dd = document.createElement('dd');
    dd.textContent = value ?? '—';
    list.append(dt, dd);
  }
}

/** The photos of every action in a log (a case's or an errand's), kept in each event's data. */
function logPhotos(events) {
  return events.flatMap((e) => (e.data && e.data.photos) || []);
}

export class MyWork {
  constructor(show) {
    this.show = show;
    this.photos = [];
    this.current = null;
    $('item-photo-input').addEventListener('change', (event) => {
      for (const file of event.target.files) {
        this.photos.push(file);
        const img = document.createElement('img');
        img.src = URL.createObjectURL(file);
        $('item-photo-previews').append(img);
      }
      event.target.value = '';
    });
    $('item-back').addEventListener('click', () => { this.show('work'); this.load(); });
  }

  async load() {
    const cases = $('case-list');
    const errands = $('errand-list');
    try {
      const [found, mine] = await Promise.all([call('/incidents?limit=50'), call('/errands?limit=50')]);
      cases.replaceChildren(...found.features.map((f) => {
        const p = f.properties;
        const open = !['resolved', 'closed', 'cancelled', 'duplicate'].includes(p.status);
        return card(`#${p.id} ${statusLabel(p.status)} · ${p.description || p.category}`, p.due_at, open,
          () => this.openCase(p.id));
      }));
      errands.replaceChildren(...mine.map((e) => card(
        `#${e.id} ${statusLabel(e.status)} · ${e.service_name} · ${e.applicant_name}`, e.due_at,
        !['delivered', 'cancelled'].includes(e.status), () => this.openErrand(e.id),
      )));
    } catch (error) {
      cases.replaceChildren(Object.assign(document.createElement('li'), { className: 'error', textContent: errorText(error) }));
      return;
    }
    for (const list of [cases, errands]) {
      if (!list.children.length) list.append(Object.assign(document.createElement('li'), { textContent: t('nothing'), className: 'dup' }));
    }
  }

  reset() {
    this.photos = [];
    $('item-note').value = '';
    $('item-error').textContent = '';
    $('item-photo-previews').replaceChildren();
    $('item-photos').replaceChildren();
    $('item-trips-row').hidden = true;
  }

  /** The thumbnails of the stored photos among refs (a report's, and every action's in the log). */
  showPhotos(refs) {
    for (const ref of refs.filter((r) => r.startsWith('media:'))) {
      const img = document.createElement('img');
      img.src = `${ROOT}/media/${ref.slice(6)}/thumbnail`;
      img.alt = ref;
      $('item-photos').append(img);
    }
  }

  /** Upload the photos picked for the next action (a case's or an errand's); their refs. */
  async uploadPicked() {
    const photos = [];
    for (const file of this.photos) photos.push((await uploadPhoto(file, file.name)).ref);
    return photos;
  }

  async openCase(id) {
    this.reset();
    const [detail, log] = await Promise.all([call(`/incidents/${id}`), call(`/incidents/${id}/events`)]);
    this.current = { kind: 'case', id };
    $('item-title').textContent = `${t('caseNo')} #${id} · ${detail.category.name}`;
    facts($('item-facts'), [
      ['status', statusLabel(detail.status)],
      ['grid', detail.grid ? detail.grid.name || detail.grid.code : t('noGrid')],
      ['unit', detail.unit ? detail.unit.name : t('noUnit')],
      ['due', formatTime(detail.due_at)],
      ['description', detail.description || '—'],
    ]);
    this.showPhotos([...detail.photos, ...logPhotos(log.events)]);
    this.actions(log.allowed_actions.filter((a) => CASE_ACTIONS.includes(a)));
    this.show('item');
  }

  async openErrand(id) {
    this.reset();
    const errand = await call(`/errands/${id}`);
    this.current = { kind: 'errand', id };
    $('item-title').textContent = `${t('errands')} #${id} · ${errand.service_name}`;
    facts($('item-facts'), [
      ['status', statusLabel(errand.status)],
      ['grid', errand.grid_code],
      ['due', formatTime(errand.due_at)],
      ['description', `${errand.applicant_name} ${errand.applicant_phone}`],
    ]);
    this.showPhotos(logPhotos(errand.events));
    const allowed = errand.allowed_actions.filter((a) => ERRAND_ACTIONS.includes(a));
    $('item-trips-row').hidden = !allowed.includes('deliver');
    this.actions(allowed);
    this.show('item');
  }

  actions(allowed) {
    const box = $('item-actions');
    box.replaceChildren(...allowed.map((action) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'primary';
      button.dataset.action = action;
      button.textContent = t(action);
      button.addEventListener('click', () => this.act(action, button));
      return button;
    }));
  }

  async act(action, button) {
    const { kind, id } = this.current;
    const note = $('item-note').value.trim() || null;
    button.disabled = true;
    $('item-error').textContent = '';
    try {
      const photos = await this.uploadPicked();
      if (kind === 'case') {
        await call(`/incidents/${id}/actions`, { method: 'POST', json: { action, note, photos } });
        await this.openCase(id);
      } else {
        const body = { action, note, photos };
        if (action === 'deliver') body.applicant_trips = Number($('item-trips').value || 0);
        await call(`/errands/${id}/actions`, { method: 'POST', json: body });
        await this.openErrand(id);
      }
      $('item-error').textContent = '';
      $('item-error').className = 'ok';
      $('item-error').textContent = `✓ ${t(action)}`;
    } catch (error) {
      $('item-error').className = 'error';
      $('item-error').textContent = errorText(error);
      button.disabled = false;
    }
  }
}
