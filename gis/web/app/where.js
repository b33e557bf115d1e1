/**
 * The report's place: a small Leaflet map with the point, its accuracy circle and the grid it
 * falls in (GET /locate). The point is WGS84 from the phone's GPS; on a GCJ-02 basemap (AMap)
 * the marker is shifted for display only, and a point moved by hand is sent as GCJ-02 so the
 * server converts it (gis.geo), not this page.
 */

import { call } from './api.js';
import { t } from './i18n.js';

const A = 6378245.0;
const EE = 0.00669342162296594323;

function shift(lon, lat) {
  const x = lon - 105.0;
  const y = lat - 35.0;
  let dLat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dLat += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
  dLat += ((20 * Math.sin(y * Math.PI) + 40 * Math.sin((y / 3) * Math.PI)) * 2) / 3;
  dLat += ((160 * Math.sin((y / 12) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30)) * 2) / 3;
  let dLon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dLon += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
  dLon += ((20 * Math.sin(x * Math.PI) + 40 * Math.sin((x / 3) * Math.PI)) * 2) / 3;
  dLon += ((150 * Math.sin((x / 12) * Math.PI) + 300 * Math.sin((x / 30) * Math.PI)) * 2) / 3;
  const rad = (lat / 180) * Math.PI;
  let magic = Math.sin(rad);
  magic = 1 - EE * magic * magic;
  const sq = Math.sqrt(magic);
  return [
    lon + (dLon * 180) / ((A / sq) * Math.cos(rad) * Math.PI),
    lat + (dLat * 180) / (((A * (1 - EE)) / (magic * sq)) * Math.PI),
  ];
}

/** Within SAME_SPOT_M of each other, in the same coordinates (equirectangular: metres apart). */
const SAME_SPOT_M = 30;

function sameSpot(a, b) {
  if (!a || !b || (a.crs || 'WGS84') !== (b.crs || 'WGS84')) return false;
  const metresPerDegree = 111320;
  const dx = (a.lon - b.lon) * metresPerDegree * Math.cos((a.lat * Math.PI) / 180);
  const dy = (a.lat - b.lat) * metresPerDegree;
  return Math.hypot(dx, dy) <= SAME_SPOT_M;
}

export class Where {
  constructor(element, basemap, onChange) {
    this.gcj = Boolean(basemap.gcj02);
    this.onChange = onChange;
    this.location = null; // {lon, lat, crs?, accuracy_m?, method}
    this.grid = undefined; // undefined: not known yet; null: outside every grid
    this.gridAt = null; // the location this.grid was found for
    this.map = L.map(element, { zoomControl: true, attributionControl: true }).setView([29.0, 118.9], 12);
    L.tileLayer(basemap.url, {
      subdomains: basemap.subdomains, attribution: basemap.attribution, maxZoom: basemap.maxZoom,
    }).addTo(this.map);
    this.marker = L.marker([0, 0], {
      draggable: true, icon: L.divIcon({ className: '', html: '<div class="pin"></div>', iconSize: [22, 22] }),
    });
    this.circle = L.circle([0, 0], { radius: 1, weight: 1, color: '#b3261e', fillOpacity: 0.12 });
    this.marker.on('dragend', () => this.movedByHand(this.marker.getLatLng()));
    this.map.on('click', (event) => this.movedByHand(event.latlng));
  }

  /** The point as shown (shifted on a GCJ-02 basemap). */
  shown(lon, lat) {
    return this.gcj ? shift(lon, lat) : [lon, lat];
  }

  /** Record a GPS fix taken now, with its accuracy. */
  setFix(position) {
    const { longitude: lon, latitude: lat, accuracy } = position.coords;
    this.place({ lon, lat, accuracy_m: Math.round(accuracy * 10) / 10, method: 'gps' });
  }

  movedByHand(latlng) {
    // What the member sees is the basemap's coordinates: say which, the server converts.
    const location = { lon: latlng.lng, lat: latlng.lat, method: 'manual' };
    if (this.gcj) location.crs = 'GCJ-02';
    this.place(location);
  }

  place(location) {
    this.location = location;
    const [lon, lat] = location.crs === 'GCJ-02' ? [location.lon, location.lat] : this.shown(location.lon, location.lat);
    this.marker.setLatLng([lat, lon]).addTo(this.map);
    if (location.accuracy_m) this.circle.setLatLng([lat, lon]).setRadius(location.accuracy_m).addTo(this.map);
    else this.circle.remove();
    this.map.setView([lat, lon], Math.max(this.map.getZoom(), 15));
    this.onChange();
    this.lookUp(location);
  }

  async lookUp(location) {
    const query = new URLSearchParams({ lon: location.lon, lat: location.lat });
    if (location.crs) query.set('crs', location.crs);
    try {
      const found = await call(`/locate?${query}`);
      if (this.location !== location) return;
      this.grid = found.grid || null;
      this.gridAt = location;
    } catch {
      if (this.location !== location) return;
      // Offline, or outside the service area: unknown, unless this is the spot the grid was
      // last found for (a member standing still keeps seeing the grid when the signal drops).
      if (!sameSpot(this.gridAt, location)) this.grid = undefined;
    }
    this.onChange();
  }

  describe() {
    const loc = this.location;
    if (!loc) return t('needLocation');
    let text = `${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}`;
    if (loc.accuracy_m) text += ` · ${t('accuracy')} ±${Math.round(loc.accuracy_m)} m`;
    if (loc.method === 'manual') text += ` · ${t('movedByHand')}`;
    if (this.grid) text += ` · ${t('grid')}: ${this.grid.name || this.grid.code}`;
    else if (this.grid === null) text += ` · ${t('noGrid')}`;
    return text;
  }

  clear() {
    this.location = null;
    this.grid = undefined;
    this.gridAt = null;
    this.marker.remove();
    this.circle.remove();
  }
}
