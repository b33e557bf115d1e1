// The map panel (Leaflet, served locally): the town's outline, its units by status, and for the
// selected case its point, grid and village, the offered units' routes and the cameras that
// can see it (click one for its details). Coordinates are WGS84 as the API gives them.
//
// Leaflet (150 kB) is fetched and run after the first paint: until it has, the newest call of
// each kind is kept, and drawn (in DRAW_ORDER) once the map is built.

import { UNIT_STATUS, escapeHtml, km } from './format.js';

const UNIT_COLOURS = { available: '#15803d', busy: '#d97706', off_duty: '#64748b' };
const ROUTE_COLOURS = ['#1d4ed8', '#7c3aed', '#0891b2', '#be185d', '#4d7c0f'];
const DRAW_ORDER = ['showTown', 'showUnits', 'showCase', 'showArea', 'showResponders', 'showCameras'];

// Adds Leaflet's style sheet and script to the page; resolves once the script has run.
export function loadLeaflet(cssHref, jsHref) {
  const css = document.createElement('link');
  css.rel = 'stylesheet';
  css.href = cssHref;
  document.head.appendChild(css);
  if (window.L) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = jsHref;
    script.addEventListener('load', resolve);
    script.addEventListener('error', () => reject(new Error('Leaflet did not load')));
    document.head.appendChild(script);
  });
}

export class ConsoleMap {
  constructor(element) {
    this.element = element;
    this.map = null;
    this.pending = new Map(); // method name -> its newest arguments, until Leaflet is here
  }

  // Keep a call for later when Leaflet has not arrived yet; true if kept.
  later(name, args) {
    if (this.map) return false;
    // A new case clears what was drawn for the previous one.
    if (name === 'showCase') for (const old of ['showArea', 'showResponders', 'showCameras']) this.pending.delete(old);
    this.pending.set(name, args);
    return true;
  }

  // Build the map (Leaflet is loaded) and draw what was asked for meanwhile.
  attach() {
    // No basemap tiles: the console must work on a closed network; outlines give the place.
    this.map = L.map(this.element, { zoomControl: true, attributionControl: false, preferCanvas: true });
    this.map.setView([28.95, 118.87], 11);
    this.town = L.geoJSON(null, { style: { color: '#334155', weight: 2, fill: false } });
    this.area = L.geoJSON(null, {
      style: (f) =>
        f.properties.level === 'village'
          ? { color: '#0f766e', weight: 2, dashArray: '6 4', fill: false }
          : f.properties.current
            ? { color: '#1d4ed8', weight: 3, fillColor: '#93c5fd', fillOpacity: 0.35 }
            : { color: '#60a5fa', weight: 1, fillOpacity: 0.05 },
    });
    this.units = L.layerGroup();
    this.routes = L.layerGroup();
    this.cameras = L.layerGroup();
    this.views = L.layerGroup();
    this.marker = L.layerGroup();
    for (const layer of [this.town, this.area, this.views, this.routes, this.units, this.cameras, this.marker]) {
      layer.addTo(this.map);
    }
    // Leaflet sizes its canvas when it is told: a panel that gets its height after the map was
    // built (the phone layout) would show a stretched, blurred canvas otherwise.
    new ResizeObserver(() => this.map.invalidateSize()).observe(this.element);
    for (const name of DRAW_ORDER) {
      if (this.pending.has(name)) this[name](...this.pending.get(name));
    }
    this.pending.clear();
  }

  invalidate() {
    this.map?.invalidateSize();
  }

  showTown(feature) {
    if (this.later('showTown', [feature])) return;
    this.town.clearLayers();
    this.town.addData(feature);
    const bounds = this.town.getBounds();
    if (bounds.isValid()) this.map.fitBounds(bounds, { maxZoom: 16 });
  }

  showUnits(units) {
    if (this.later('showUnits', [units])) return;
    this.units.clearLayers();
    for (const unit of units) {
      L.circleMarker([unit.lat, unit.lon], {
        radius: 6,
        color: '#ffffff',
        weight: 1,
        fillColor: UNIT_COLOURS[unit.status] || '#000000',
        fillOpacity: 0.95,
      })
        .bindTooltip(`${escapeHtml(unit.name)} · ${escapeHtml(UNIT_STATUS[unit.status] || unit.status)}`)
        .addTo(this.units);
    }
  }

  showCase(item) {
    if (this.later('showCase', [item])) return;
    this.marker.clearLayers();
    this.routes.clearLayers();
    this.area.clearLayers();
    this.cameras.clearLayers();
    this.views.clearLayers();
    if (!item) return;
    L.circleMarker([item.lat, item.lon], {
      radius: 10, color: '#7f1d1d', weight: 3, fillColor: '#ef4444', fillOpacity: 0.9,
    })
      .bindTooltip(`#${item.id} ${escapeHtml(item.category_zh)}`)
      .addTo(this.marker);
    this.map.setView([item.lat, item.lon], Math.min(Math.max(this.map.getZoom(), 14), 17));
  }

  showArea(village, grids, gridCode) {
    if (this.later('showArea', [village, grids, gridCode])) return;
    this.area.clearLayers();
    if (village) this.area.addData({ ...village, properties: { ...village.properties, level: 'village' } });
    for (const grid of grids?.features || []) {
      this.area.addData({ ...grid, properties: { ...grid.properties, current: grid.properties.code === gridCode } });
    }
  }

  showResponders(item, data) {
    if (this.later('showResponders', [item, data])) return;
    this.routes.clearLayers();
    if (!data) return;
    const points = [[item.lat, item.lon]];
    data.units.forEach((unit, index) => {
      points.push([unit.lat, unit.lon]);
      if (unit.route) {
        L.geoJSON(unit.route, {
          style: { color: ROUTE_COLOURS[index % ROUTE_COLOURS.length], weight: index === 0 ? 5 : 3, opacity: 0.8 },
        }).addTo(this.routes);
      }
      L.circleMarker([unit.lat, unit.lon], {
        radius: 8, color: ROUTE_COLOURS[index % ROUTE_COLOURS.length], weight: 3, fill: false,
      })
        .bindTooltip(`${index + 1}. ${escapeHtml(unit.name)}`)
        .addTo(this.routes);
    });
    if (points.length > 1) this.map.fitBounds(L.latLngBounds(points).pad(0.2), { maxZoom: 16 });
  }

  showCameras(cameras, details) {
    if (this.later('showCameras', [cameras, details])) return;
    this.cameras.clearLayers();
    this.views.clearLayers();
    for (const camera of cameras) {
      const marker = L.circleMarker([camera.lat, camera.lon], {
        radius: 7, color: '#ffffff', weight: 2, fillColor: '#7c3aed', fillOpacity: 1,
      }).addTo(this.cameras);
      marker.bindTooltip(`天眼 Camera ${escapeHtml(camera.name)} · ${km(camera.distance_m)}`);
      marker.on('click', async () => {
        const full = await details(camera.code);
        this.views.clearLayers();
        if (full.view) {
          L.geoJSON(full.view, { style: { color: '#7c3aed', weight: 1, fillOpacity: 0.2 } }).addTo(this.views);
        }
        marker
          .bindPopup(
            `<b>${escapeHtml(full.name)}</b> (${escapeHtml(full.code)})<br>` +
              `状态 Status: ${escapeHtml(full.status)} · 类型 Kind: ${escapeHtml(full.kind)}<br>` +
              `朝向 Heading ${full.heading_deg}° · 视角 FOV ${full.fov_deg}° · 距离 Range ${km(full.range_m)}<br>` +
              `到现场 To the case: ${km(camera.distance_m)}, 方位 bearing ${camera.bearing_deg}°`,
          )
          .openPopup();
      });
    }
  }
}
