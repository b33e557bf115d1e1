// What the editor draws: the draft's grids coloured by load (cases in 12 months per 1,000
// households), the current grids dashed for comparison, problems (gaps, overlaps, grids outside
// the village, edges that do not match) in red, and the vertex handles of the move tool.

const LOAD_COLOURS = ["#dcfce7", "#bbf7d0", "#fde68a", "#fdba74", "#f87171"];

export function loadPer1000(row) {
  return row.households > 0 ? (row.incidents_12m * 1000) / row.households : 0;
}

/** The fill of a grid: its load against the village's mean load (five classes). */
export function loadColour(load, mean) {
  if (!(mean > 0)) {
    return LOAD_COLOURS[1];
  }
  const ratio = load / mean;
  const index = ratio < 0.5 ? 0 : ratio < 0.85 ? 1 : ratio < 1.15 ? 2 : ratio < 1.5 ? 3 : 4;
  return LOAD_COLOURS[index];
}

export function gridLayer(plan, rowsByCode, mean, selected, onClick) {
  return L.geoJSON(plan.proposed, {
    style: (feature) => {
      const code = feature.properties.code;
      const row = rowsByCode[code];
      const isSelected = selected.has(code);
      return {
        color: isSelected ? "#1d4ed8" : "#334155",
        weight: isSelected ? 4 : 1.5,
        fillColor: row ? loadColour(loadPer1000(row), mean) : LOAD_COLOURS[1],
        fillOpacity: 0.6,
      };
    },
    onEachFeature: (feature, layer) => {
      const props = feature.properties;
      layer.bindTooltip(`${props.name || props.code}<br>${props.code}`, { sticky: true });
      layer.on("click", (event) => onClick(props.code, event));
    },
  });
}

/** The current grids, as the left side of the compare swipe shows them (in their own pane). */
export function beforeLayer(base, renderer) {
  return L.geoJSON(base.grids, {
    interactive: false,
    renderer,
    style: {
      color: "#0f172a",
      weight: 2,
      dashArray: "6 4",
      fillColor: "#93c5fd",
      fillOpacity: 0.45,
      className: "ed-before",
    },
  });
}

/**
 * Compare before/after with a swipe: the current grids (pane ``ed-before``) left of the handle,
 * the draft (the overlay pane) right of it. Both panes are clipped in layer coordinates, so the
 * clip follows the map as it pans and zooms. Returns {setPosition, remove}.
 */
export function swipe(map, beforePane, percent = 50) {
  const overlay = map.getPane("overlayPane");
  const control = L.DomUtil.create("div", "ed-swipe", map.getContainer());
  control.innerHTML =
    '<span class="ed-swipe-line"></span>' +
    '<span class="ed-swipe-label ed-swipe-before">◀ 现状 Current</span>' +
    '<span class="ed-swipe-label ed-swipe-after">草案 Draft ▶</span>' +
    '<input type="range" id="ed-swipe-range" min="0" max="100" step="1" ' +
    'aria-label="对比位置 Compare position">';
  const range = control.querySelector("input");
  const line = control.querySelector(".ed-swipe-line");
  range.value = String(percent);
  // Dragging the handle must not pan the map underneath.
  L.DomEvent.disableClickPropagation(control);
  L.DomEvent.disableScrollPropagation(control);
  for (const type of ["mousedown", "touchstart", "pointerdown", "dblclick"]) {
    L.DomEvent.on(range, type, L.DomEvent.stopPropagation);
  }

  function update() {
    const size = map.getSize();
    const nw = map.containerPointToLayerPoint([0, 0]);
    const se = map.containerPointToLayerPoint(size);
    const x = nw.x + (size.x * Number(range.value)) / 100;
    beforePane.style.clip = `rect(${nw.y}px, ${x}px, ${se.y}px, ${nw.x}px)`;
    overlay.style.clip = `rect(${nw.y}px, ${se.x}px, ${se.y}px, ${x}px)`;
    line.style.left = `${(size.x * Number(range.value)) / 100}px`;
  }
  range.addEventListener("input", update);
  map.on("move zoom resize viewreset zoomend", update);
  update();
  return {
    range,
    setPosition(value) {
      range.value = String(value);
      update();
    },
    remove() {
      map.off("move zoom resize viewreset zoomend", update);
      beforePane.style.clip = "";
      overlay.style.clip = "";
      control.remove();
    },
  };
}

export function problemLayer(plan) {
  const group = L.layerGroup();
  for (const issue of plan.problems) {
    if (issue.kind === "repaired") {
      continue;
    }
    const error = issue.severity === "error";
    L.geoJSON(issue.geometry, {
      interactive: false,
      style: {
        color: error ? "#dc2626" : "#f59e0b",
        weight: 2,
        fillColor: error ? "#ef4444" : "#fbbf24",
        fillOpacity: 0.7,
        className: `ed-problem ed-${issue.kind}`,
      },
    }).addTo(group);
  }
  if (plan.coverage.invalid_edges) {
    L.geoJSON(plan.coverage.invalid_edges, {
      interactive: false,
      style: { color: "#dc2626", weight: 4, dashArray: "2 4", className: "ed-problem ed-edges" },
    }).addTo(group);
  }
  return group;
}

/** Each distinct vertex of a grid, with how many grids of the draft share it. */
export function vertices(plan, code) {
  const counts = new Map();
  const key = (xy) => `${xy[0]},${xy[1]}`;
  const mine = [];
  for (const feature of plan.proposed.features) {
    const isMine = feature.properties.code === code;
    for (const polygon of feature.geometry.coordinates) {
      for (const ring of polygon) {
        for (const xy of ring.slice(0, -1)) {
          counts.set(key(xy), (counts.get(key(xy)) || 0) + 1);
          if (isMine) {
            mine.push(xy);
          }
        }
      }
    }
  }
  const seen = new Set();
  return mine
    .filter((xy) => !seen.has(key(xy)) && seen.add(key(xy)))
    .map((xy) => ({ lonlat: xy, shared: counts.get(key(xy)) > 1 }));
}
