// Live updates: `connectStream` listens to GET /events/stream for any page (the dispatcher's
// console uses it directly); `startLive` redraws the command-room map's cases, counters, units
// and cameras without a reload (gis/maps/live.py puts the call in the page). ES module, no build
// step, no dependencies beyond Leaflet.

const OPEN = new Set(['reported', 'assigned', 'accepted', 'in_progress', 'returned', 'escalated']);
const RECLASSIFY_MS = 60_000;

// The indicator (#gis-live): connected, reconnecting or offline, in Chinese and English.
const STATES = {
  connected: '● 实时 live',
  reconnecting: '◌ 重连中 reconnecting…',
  offline: '○ 离线 offline',
};

function setState(element, state) {
  element.dataset.state = state;
  element.textContent = STATES[state];
}

function escapeHtml(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Local time in China (UTC+8), as the rest of the page writes it.
function chinaTime(iso) {
  if (!iso) return '—';
  const t = new Date(Date.parse(iso) + 8 * 3600_000);
  return t.toISOString().slice(0, 16).replace('T', ' ');
}

// A case's class on the page: null (not shown), 'open' or 'overdue' (past its deadline).
export function classify(data, now = Date.now()) {
  if (!data || !OPEN.has(data.status)) return null;
  const late = data.overdue || (data.due_at && Date.parse(data.due_at) < now);
  return late ? 'overdue' : 'open';
}

// The class the page had for a case it has no marker of: from the event's previous status.
function classBefore(data, now) {
  if (!data.from_status || !OPEN.has(data.from_status)) return null;
  return classify({ ...data, status: data.from_status }, now);
}

class Counters {
  constructor(root) {
    this.spans = {};
    for (const span of root.querySelectorAll('[data-gis-count]')) {
      this.spans[span.dataset.gisCount] = span;
    }
  }

  add(kind, delta) {
    const span = this.spans[kind];
    if (!span || !delta) return;
    const value = Number(span.textContent.replace(/[^0-9]/g, '')) + delta;
    span.textContent = Math.max(0, value).toLocaleString('en-US');
  }
}

export class LiveMap {
  constructor(options, layers) {
    this.options = options;
    this.layers = layers;
    this.counters = new Counters(document);
    this.seen = new Set(options.seen);
    this.cases = new Map(); // case id -> {marker, cls}
    this.units = new Map(); // unit code -> marker
    for (const [cls, layer] of [['open', layers.open], ['overdue', layers.overdue]]) {
      for (const marker of layer.getLayers()) {
        if (marker.options.caseId !== undefined) {
          this.cases.set(marker.options.caseId, { marker, cls });
        }
      }
    }
    layers.units.eachLayer((marker) => {
      if (marker.options.unitCode) this.units.set(marker.options.unitCode, marker);
    });
    this.grids = new Map(); // grid code -> its polygon (tooltip figures: open_now, overdue_now)
    layers.grids.eachLayer((layer) => {
      if (layer.feature) this.grids.set(layer.feature.properties.code, layer);
    });
  }

  // The grid's tooltip figures follow its cases (the tooltip reads them when it opens).
  countInGrid(code, field, delta) {
    const grid = this.grids.get(code);
    if (!grid || !delta) return;
    const properties = grid.feature.properties;
    properties[field] = Math.max(0, Number(properties[field] || 0) + delta);
  }

  // [lat, lon] in the basemap's system (GCJ-02 for AMap: the town's local offset).
  latlng(data) {
    const [dlat, dlon] = this.options.shift;
    return [data.lat + dlat, data.lon + dlon];
  }

  apply(type, id, data) {
    if (this.seen.has(id)) return; // already in the page as it was built
    if (type.startsWith('case.')) this.applyCase(data);
    else if (type === 'unit.moved' || type === 'unit.status') this.applyUnit(data);
    else if (type === 'camera.status') this.applyCamera(data);
  }

  wanted(data) {
    const { platform, category } = this.options;
    return (!platform || data.platform === platform) && (!category || data.category === category);
  }

  applyCase(data) {
    if (!this.wanted(data)) return;
    const now = Date.now();
    const known = this.cases.get(data.incident_id);
    const before = known ? known.cls : classBefore(data, now);
    const after = classify(data, now);
    if (before !== after) {
      // "Open now" counts the overdue too, in the title and in the grid's figures. The period's
      // figures (received, closure rates) are the statistics' and stay as the page was built.
      const open = Number(Boolean(after)) - Number(Boolean(before));
      const overdue = Number(after === 'overdue') - Number(before === 'overdue');
      this.counters.add('open_now', open);
      this.counters.add('overdue_now', overdue);
      this.countInGrid(data.grid_code, 'open_now', open);
      this.countInGrid(data.grid_code, 'overdue_now', overdue);
    }
    if (known) this.layers[known.cls].removeLayer(known.marker);
    if (!after) {
      this.cases.delete(data.incident_id);
      return;
    }
    const marker = this.caseMarker(data, after);
    this.layers[after].addLayer(marker);
    this.cases.set(data.incident_id, { marker, cls: after, data });
  }

  caseMarker(data, cls) {
    const overdue = cls === 'overdue';
    const marker = L.circleMarker(this.latlng(data), {
      radius: 7,
      fillColor: this.options.colours[data.platform] || '#000000',
      color: overdue ? this.options.ring : '#ffffff',
      weight: overdue ? 3 : 1,
      fillOpacity: 0.9,
      caseId: data.incident_id,
    });
    marker.bindPopup(() =>
      `<b>${escapeHtml(data.category_zh)}</b> ${escapeHtml(data.category_en)}<br>` +
      `平台 Platform: ${escapeHtml(data.platform)}<br>状态 Status: ${escapeHtml(data.status)}<br>` +
      `期限 Deadline: ${chinaTime(data.due_at)}` +
      (overdue ? ` <b style="color:${this.options.ring}">超期 overdue</b>` : '') +
      `<br>单位 Unit: ${escapeHtml(data.unit_name || '—')}` +
      `<br>#${data.incident_id} · 网格 Grid ${escapeHtml(data.grid_code || '—')}`,
    { maxWidth: 320 });
    return marker;
  }

  // Open cases whose deadline has passed since they were drawn turn red.
  reclassify() {
    const now = Date.now();
    for (const [, entry] of this.cases) {
      if (entry.cls === 'open' && entry.data && classify(entry.data, now) === 'overdue') {
        this.applyCase({ ...entry.data, overdue: true });
      }
    }
  }

  applyUnit(data) {
    const marker = this.units.get(data.code);
    if (!marker) return;
    marker.setLatLng(this.latlng(data));
    const [colour, label] = this.options.unitStatus[data.status] || ['black', data.status];
    const icon = marker.options.icon;
    if (icon && icon.options && icon.options.markerColor !== colour && L.AwesomeMarkers) {
      marker.setIcon(L.AwesomeMarkers.icon({ ...icon.options, markerColor: colour }));
    }
    marker.setTooltipContent?.(`${escapeHtml(data.name)} · ${escapeHtml(label)}`);
  }

  applyCamera(data) {
    const [colour, label] = this.options.cameraStatus[data.status] || ['#000000', data.status];
    this.layers.cameras.eachLayer((layer) => {
      if (layer.feature && layer.feature.properties.code === data.code) {
        layer.feature.properties.status = label;
        layer.setStyle({ color: colour, fillColor: colour });
      }
    });
  }
}

// Listen to the event stream: `onEvent(type, id, data)` for each of `types`, the indicator
// (#gis-live) kept current. The browser's EventSource reconnects by itself and sends
// Last-Event-ID; the service replays what was missed or says `reload`, which calls `onReload`
// (default: reload the page, at most once a minute), as does `cases.moved` (a bulk
// re-assignment). Any page may use it (the command room, the dispatcher's console); returns the
// EventSource.
export function connectStream({ stream, after, types, onEvent, onReload }) {
  const indicator = document.getElementById('gis-live');
  const url = new URL(stream, window.location.href);
  if (after !== undefined && after !== null) url.searchParams.set('after', String(after));
  const source = new EventSource(url, { withCredentials: true });
  types.forEach((type) =>
    source.addEventListener(type, (event) => {
      onEvent(type, Number(event.lastEventId), JSON.parse(event.data));
    }),
  );
  source.addEventListener('open', () => setState(indicator, 'connected'));
  source.addEventListener('error', () => {
    setState(indicator, source.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting');
  });
  const reload = () => {
    if (onReload) {
      onReload();
      return;
    }
    // At most one reload a minute: a page that comes back as far behind waits, not loops.
    const last = Number(sessionStorage.getItem('gis-live-reload') || 0);
    if (Date.now() - last < 60_000) {
      source.close();
      setState(indicator, 'offline');
      setTimeout(() => window.location.reload(), 60_000 - (Date.now() - last));
      return;
    }
    sessionStorage.setItem('gis-live-reload', String(Date.now()));
    window.location.reload();
  };
  source.addEventListener('reload', reload);
  // A bulk re-assignment moved many of the town's cases at once: fetch the page again.
  source.addEventListener('cases.moved', reload);
  source.addEventListener('revoked', () => {
    source.close();
    setState(indicator, 'offline');
  });
  return source;
}

// Connect the command-room map to the stream.
export function startLive(options, layers) {
  const live = new LiveMap(options, layers);
  connectStream({
    stream: options.stream,
    after: options.after,
    types: options.types,
    onEvent: (type, id, data) => live.apply(type, id, data),
  });
  setInterval(() => live.reclassify(), RECLASSIFY_MS);
  window.gisLive = live; // for the kiosk mode and the tests
  return live;
}
