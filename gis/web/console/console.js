// The dispatcher's console: loads the queue, the unit board and the town, follows the event
// stream, and wires the panels together. Every read and every action is a public API call
// (docs/console.md); the keyboard drives the common path: j / k move in the queue, Enter
// assigns the first suggestion.

import { ApiError, makeApi } from './api.js';
import { renderBoard } from './board.js';
import { escapeHtml, UNIT_STATUS } from './format.js';
import { ConsoleMap, loadLeaflet } from './map.js';
import { markSelected, renderCounts, renderQueue } from './queue.js';
import { choices, renderResponders } from './responders.js';

performance.mark('console-module');
const config = JSON.parse(document.getElementById('gis-config').textContent);
const api = makeApi(config.root);
const $ = (id) => document.getElementById(id);
const REFRESH_MS = 400; // live events arrive in bursts: one refresh per burst

const state = {
  items: [],
  selectedId: null,
  responders: null, // the answer for the selected case
  placeOf: null, // the case whose place (village, grids, cameras) is drawn
  board: [],
  assigning: false,
  token: 0, // the newest selection; answers for older ones are dropped
  queueSeq: 0, // the newest queue request; answers for older ones are dropped
  timings: { firstPaint: null, responders: [] },
};

function say(text, kind = '') {
  const message = $('console-message');
  message.textContent = text;
  message.className = kind;
}

function selected() {
  return state.items.find((item) => item.id === state.selectedId) || null;
}

// --- queue -----------------------------------------------------------------------------------

async function loadQueue() {
  // Filters changed in quick succession send several requests: only the newest answer is drawn.
  const seq = ++state.queueSeq;
  const data = await api('/dispatch/queue', {
    query: {
      town: config.town,
      platform: $('filter-platform').value,
      category: $('filter-category').value,
      sort: $('sort').value,
    },
  });
  if (seq !== state.queueSeq) return data;
  const index = state.items.findIndex((item) => item.id === state.selectedId);
  state.items = data.items;
  renderCounts($('queue-counts'), $('queue-total'), data);
  // The selected case stays selected; if it left the queue, the one now in its place is.
  let next = selected();
  if (!next && state.items.length) next = state.items[Math.min(Math.max(index, 0), state.items.length - 1)];
  renderQueue($('queue'), state.items, next ? next.id : null, select);
  if (!next) {
    state.selectedId = null;
    showCase(null);
  } else if (next.id !== state.selectedId) {
    select(next.id);
  }
  return data;
}

// --- the selected case -------------------------------------------------------------------------

function showCase(item) {
  const detail = $('case-detail');
  map.showCase(item);
  state.responders = null;
  renderResponders($('responders'), $('excluded'), null);
  if (!item) {
    detail.innerHTML = '';
    return;
  }
  detail.innerHTML =
    `<b>#${item.id} ${escapeHtml(item.category_zh)}</b> <span lang="en">${escapeHtml(item.category_en)}</span>` +
    ` · 网格 Grid ${escapeHtml(item.grid_code || '—')} · 村社 Village ${escapeHtml(item.village_code || '—')}` +
    (item.description ? `<br>${escapeHtml(item.description)}` : '');
}

async function select(id) {
  state.selectedId = id;
  const token = ++state.token;
  markSelected($('queue'), id);
  const item = selected();
  showCase(item);
  if (!item) return;
  const started = performance.now();
  try {
    const data = await api(`/incidents/${id}/responders`, { query: { k: 5 } });
    if (token !== state.token) return;
    state.responders = data;
    renderResponders($('responders'), $('excluded'), data, assign);
    map.showResponders(item, data);
    state.timings.responders.push(performance.now() - started);
  } catch (error) {
    if (token === state.token) say(`${error.message}`, 'error');
  }
  // The place and its cameras after the responders: the list a dispatcher acts on comes
  // first, without those requests competing for the server.
  if (token === state.token) loadPlace(item, token);
}

async function loadPlace(item, token) {
  const [village, grids, seeing] = await Promise.all([
    item.village_code ? api(`/regions/${item.village_code}`).catch(() => null) : null,
    item.village_code ? api('/grids', { query: { village: item.village_code } }).catch(() => null) : null,
    api('/cameras/seeing', { query: { lon: item.lon, lat: item.lat } }).catch(() => ({ cameras: [] })),
  ]);
  if (token !== state.token) return;
  map.showArea(village, grids, item.grid_code);
  map.showCameras(seeing.cameras, (code) => api(`/cameras/${encodeURIComponent(code)}`));
  state.placeOf = item.id; // the case whose village, grids and cameras are shown
}

function move(step) {
  if (!state.items.length) return;
  const index = state.items.findIndex((item) => item.id === state.selectedId);
  const next = Math.min(Math.max(index + step, 0), state.items.length - 1);
  if (state.items[next].id !== state.selectedId) select(state.items[next].id);
}

// --- assigning ---------------------------------------------------------------------------------

async function assign(unit) {
  const item = selected();
  if (!item || state.assigning) return;
  state.assigning = true;
  const note = $('assign-note').value.trim() || '调度台派遣 Dispatched from the console';
  // assign from reported or escalated; a case already with a unit is reassigned (with a reason).
  const fresh = item.status === 'reported' || item.status === 'escalated';
  const body = {
    action: fresh ? 'assign' : 'reassign',
    unit_id: unit.id,
    note,
    expected_unit_id: item.unit_id ?? 0,
  };
  if (!fresh) body.reason = note;
  say(`派遣中 Assigning #${item.id} → ${unit.name}…`);
  try {
    await api(`/incidents/${item.id}/actions`, { method: 'POST', body });
    say(`已派遣 Assigned #${item.id} → ${unit.name}`, 'done');
    $('assign-note').value = '';
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) {
      say(`未派遣 Not assigned: ${error.message}`, 'error');
    } else {
      say(`派遣失败 Assignment failed: ${error.message}`, 'error');
    }
  } finally {
    state.assigning = false;
  }
  // Either way the queue, the board and the responders are what the service says now.
  await Promise.all([loadQueue(), loadBoard()]);
  if (state.selectedId === item.id) select(item.id);
}

// --- unit board --------------------------------------------------------------------------------

async function loadBoard() {
  const data = await api('/dispatch/board', { query: { town: config.town } });
  state.board = data.units;
  renderBoard($('board').tBodies[0], $('board-total'), data.units, setStatus, data.jurisdiction);
  map.showUnits(data.units);
}

async function setStatus(unit, status) {
  try {
    await api(`/units/${unit.id}`, { method: 'PATCH', body: { status } });
    say(`${unit.name}: ${UNIT_STATUS[status]}`, 'done');
  } catch (error) {
    say(`状态未改 Status not changed: ${error.message}`, 'error');
  }
  await loadBoard();
  if (state.selectedId !== null) select(state.selectedId);
}

// --- live updates ------------------------------------------------------------------------------

function debounced(fn) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(() => fn().catch((error) => say(error.message, 'error')), REFRESH_MS);
  };
}

const refreshQueue = debounced(loadQueue);
const refreshBoard = debounced(loadBoard);

function onEvent(type) {
  if (type.startsWith('case.')) refreshQueue();
  else refreshBoard();
}

// --- start -------------------------------------------------------------------------------------

const map = new ConsoleMap($('map'));

function startMap() {
  loadLeaflet(config.leafletCss, config.leafletJs)
    .then(() => map.attach())
    .catch((error) => say(`地图未加载 Map not loaded: ${error.message}`, 'error'));
}

async function loadCategories() {
  const categories = await api('/categories');
  const select = $('filter-category');
  for (const category of categories) {
    const option = document.createElement('option');
    option.value = category.code;
    option.textContent = `${category.name_zh} ${category.name_en}`;
    select.appendChild(option);
  }
}

function onKey(event) {
  const tag = event.target.tagName;
  if (tag === 'INPUT' || tag === 'SELECT' || tag === 'TEXTAREA' || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === 'j') move(1);
  else if (event.key === 'k') move(-1);
  else if (event.key === 'Enter' && choices(state.responders).length) {
    assign(choices(state.responders)[0]);
  } else return;
  event.preventDefault();
}

async function start() {
  $('town-name').textContent = [config.townName, config.townNameEn].filter(Boolean).join(' ');
  document.title = `调度台 Dispatcher console · ${config.townName}`;
  if (config.user) $('console-user').textContent = config.user;
  for (const id of ['filter-platform', 'filter-category', 'sort']) {
    $(id).addEventListener('change', () => loadQueue().catch((error) => say(error.message, 'error')));
  }
  document.addEventListener('keydown', onKey);
  try {
    const [queue] = await Promise.all([loadQueue(), loadBoard()]);
    performance.mark('console-drawn');
    state.timings.firstPaint = performance.now();
    document.body.dataset.ready = 'true';
    // The event stream's module is fetched after the first paint: nothing before it needs it.
    const { connectStream } = await import('../common/live.js');
    window.gisConsoleStream = connectStream({
      stream: config.stream,
      after: queue.after,
      types: ['case.created', 'case.assigned', 'case.status', 'case.overdue', 'unit.moved', 'unit.status'],
      onEvent,
      onReload: () => Promise.all([loadQueue(), loadBoard()]),
    });
  } catch (error) {
    say(`加载失败 Loading failed: ${error.message}`, 'error');
  }
  // After the first paint: the map (Leaflet's 150 kB would otherwise be fetched and run
  // before it) and the category filter's list.
  startMap();
  loadCategories().catch((error) => say(error.message, 'error'));
  api(`/regions/${config.town}`)
    .then((town) => map.showTown(town))
    .then(() => {
      const item = selected();
      if (item) map.showCase(item);
      if (item && state.responders) map.showResponders(item, state.responders);
    })
    .catch(() => {});
  window.addEventListener('resize', () => map.invalidate());
}

window.gisConsole = { state, map, select, assign, loadQueue, loadBoard };
start();
