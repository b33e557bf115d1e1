/**
 * Says when the basemap fails. A government network often cannot reach public tile servers;
 * without this the map is a silent grey field with outlines. A banner appears when half or more
 * of a view's tiles failed, or when none has arrived after STALL_MS (an unreachable server can
 * hang instead of refusing); it goes again when a later view loads. A few missing tiles (a local
 * archive that stops at the town's edge answers 204) do not raise it, but a view wholly outside
 * the area a basemap covers (its `bounds`) says so.
 */

const STALL_MS = 10000;
const STILL_SHOWN = '叠加图层照常显示 overlays still shown';
const MESSAGES = {
  failed: (host) => `底图加载失败 Basemap failed to load (${host}) — ${STILL_SHOWN}`,
  stalled: (host) => `底图无响应 Basemap not answering (${host}) — ${STILL_SHOWN}`,
  outside: () => `底图不覆盖此处 The basemap has no tiles for this area — ${STILL_SHOWN}`,
};

/** Watches every tile layer of `map` (present and future) and shows the banner when needed. */
export function watchBasemap(map) {
  const banner = createBanner(map.getContainer().ownerDocument);
  const failing = new Set();
  const report = (layer, state) => {
    if (state === 'ok') failing.delete(layer);
    else failing.add(layer);
    if (!failing.size) {
      banner.hidden = true;
      return;
    }
    const [first] = failing;
    banner.querySelector('span').textContent = MESSAGES[state](hostOf(first));
    banner.hidden = false;
  };
  map.eachLayer((layer) => layer instanceof L.TileLayer && watch(map, layer, report));
  map.on('layeradd', (e) => e.layer instanceof L.TileLayer && watch(map, e.layer, report));
  map.on('layerremove', (event) => event.layer instanceof L.TileLayer && report(event.layer, 'ok'));
}

function watch(map, layer, report) {
  if (layer._gisWatched) return;
  layer._gisWatched = true;
  let loaded = 0;
  let failed = 0;
  let stall = null;
  const outside = () =>
    layer.options.bounds && !L.latLngBounds(layer.options.bounds).intersects(map.getBounds());
  const judge = () => {
    if (outside()) report(layer, 'outside');
    else if (failed > 0 && failed >= loaded) report(layer, 'failed');
    else if (loaded > 0) report(layer, 'ok');
  };
  map.on('moveend', () => outside() && report(layer, 'outside'));
  const arm = () => {
    clearTimeout(stall);
    stall = setTimeout(() => loaded === 0 && report(layer, 'stalled'), STALL_MS);
  };
  // Tiles that settled before this module ran: a refused request fails within milliseconds.
  for (const tile of Object.values(layer._tiles || {})) {
    if (tile.el.complete) tile.el.naturalWidth > 0 ? loaded++ : failed++;
  }
  layer.on('loading', () => {
    loaded = 0;
    failed = 0;
    arm();
  });
  layer.on('tileload', () => loaded++);
  layer.on('tileerror', () => failed++);
  layer.on('load', () => {
    clearTimeout(stall);
    judge();
  });
  if (layer.isLoading()) arm();
  else judge();
}

function hostOf(layer) {
  try {
    return new URL(layer._url.replace(/\{[^}]*\}/g, '0'), document.baseURI).host;
  } catch {
    return '?';
  }
}

function createBanner(doc) {
  const banner = doc.createElement('div');
  banner.id = 'gis-basemap-error';
  banner.setAttribute('role', 'alert');
  banner.hidden = true;
  const text = doc.createElement('span');
  const close = doc.createElement('button');
  close.type = 'button';
  close.textContent = '×';
  close.title = '关闭 Close';
  close.setAttribute('aria-label', '关闭 Close');
  close.addEventListener('click', () => {
    banner.hidden = true;
  });
  banner.append(text, close);
  doc.body.append(banner);
  return banner;
}
