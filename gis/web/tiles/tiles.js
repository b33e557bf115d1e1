// The vector-tile map of a town: towns, grids, camera views and cases drawn in the browser
// from the OGC API's Mapbox Vector Tiles (/ogc/collections/{id}/tiles), one layer per
// collection the caller may read. The TileJSON of each layer says where its tiles are and from
// which zoom they exist.

const LAYERS = ["towns", "grids", "cameras", "incidents"];
const LABELS = {
  towns: "乡镇 Towns",
  grids: "网格 Grids",
  cameras: "天眼视域 Camera views",
  incidents: "事件 Cases",
};
const STYLES = {
  towns: { weight: 2, color: "#334155", fill: false },
  grids: { weight: 1, color: "#2563eb", fill: true, fillColor: "#93c5fd", fillOpacity: 0.25 },
  cameras: { weight: 1, color: "#7c3aed", fill: true, fillColor: "#c4b5fd", fillOpacity: 0.35 },
  incidents: {
    radius: 3, weight: 1, color: "#991b1b", fill: true, fillColor: "#ef4444", fillOpacity: 0.9,
  },
};
// Cookies (the login's token) go with every request of the page, tiles included.
const SAME_ORIGIN = { credentials: "same-origin" };

async function getJson(url) {
  const response = await fetch(url, { ...SAME_ORIGIN, headers: { Accept: "application/json" } });
  if (!response.ok) {
    throw new Error(`${url}: ${response.status}`);
  }
  return response.json();
}

function tileLayer(name, tilejson, state) {
  const layer = L.vectorGrid.protobuf(tilejson.tiles[0], {
    rendererFactory: L.canvas.tile,
    vectorTileLayerStyles: { [name]: STYLES[name] },
    interactive: false, // VectorGrid 1.3's click handling calls an API Leaflet 1.9 removed
    minZoom: tilejson.minzoom,
    maxNativeZoom: Math.min(tilejson.maxzoom, 18),
    fetchOptions: SAME_ORIGIN,
  });
  state.tilesLoaded[name] = 0;
  layer.on("tileload", () => {
    state.tilesLoaded[name] += 1;
  });
  return layer;
}

function showStatus(text) {
  document.getElementById("gis-status").textContent = text;
}

export async function start(config) {
  const state = { layers: [], tilesLoaded: {}, ready: false };
  window.gisTiles = state;
  const map = L.map("gis-map", { zoomControl: true, preferCanvas: true });
  const town = await getJson(`${config.ogc}/collections/towns/items/${config.town}`);
  const title = `${town.properties.name} ${town.properties.name_en || ""} — 矢量瓦片 Vector tiles`;
  document.getElementById("gis-title").textContent = title;
  map.fitBounds(L.geoJSON(town).getBounds());
  const readable = (await getJson(`${config.ogc}/collections`)).collections.map((c) => c.id);
  const overlays = {};
  for (const name of LAYERS.filter((n) => readable.includes(n))) {
    const tilejson = await getJson(
      `${config.ogc}/collections/${name}/tiles/WebMercatorQuad/tilejson.json`,
    );
    const layer = tileLayer(name, tilejson, state).addTo(map);
    overlays[LABELS[name]] = layer;
    state.layers.push(name);
  }
  L.control.layers(null, overlays, { collapsed: window.innerWidth < 600 }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  showStatus(`图层 Layers: ${state.layers.map((n) => LABELS[n]).join(" · ")}`);
  state.ready = true;
}

start(JSON.parse(document.getElementById("gis-config").textContent)).catch((error) => {
  showStatus(`出错 Error: ${error.message}`);
  throw error;
});
