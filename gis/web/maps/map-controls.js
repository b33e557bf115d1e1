/**
 * Collapsible map controls. On a phone (the breakpoint is in map-page.css, its one home) the
 * layer list and the legend become two buttons: each opens on tap and closes on a tap anywhere
 * else (or Escape). On wider screens the buttons are hidden and both stay open, as before.
 */

const PANELS = [
  { selector: '.leaflet-control-layers', id: 'gis-layers', label: '图层', title: '图层 Layers' },
  { selector: '.gis-legend', id: 'gis-legend', label: '图例', title: '图例 Legend' },
];

/** Adds the buttons for the layer list and legend of `map`, and their open/close logic. */
export function collapsibleControls(map) {
  const container = map.getContainer();
  const doc = container.ownerDocument;
  if (doc.getElementById('gis-title')) doc.documentElement.classList.add('gis-has-title');
  const entries = [];
  for (const spec of PANELS) {
    const panel = container.querySelector(spec.selector) || doc.querySelector(spec.selector);
    if (panel) entries.push({ panel, ...spec });
  }
  if (!entries.length) return;

  const bar = doc.createElement('div');
  bar.className = 'gis-toggles leaflet-control';
  for (const entry of entries) {
    if (!entry.panel.id) entry.panel.id = entry.id;
    entry.panel.classList.add('gis-collapsible');
    const button = doc.createElement('button');
    button.type = 'button';
    button.id = `${entry.id}-button`;
    button.textContent = entry.label;
    button.title = entry.title;
    button.setAttribute('aria-label', entry.title);
    button.setAttribute('aria-controls', entry.panel.id);
    button.setAttribute('aria-expanded', 'false');
    button.addEventListener('click', () => setOpen(entries, entry, !isOpen(entry)));
    entry.button = button;
    bar.append(button);
  }
  // First in the top-right corner, so an opened layer list hangs below its button.
  const corner = container.querySelector('.leaflet-top.leaflet-right');
  corner.insertBefore(bar, corner.firstChild);
  L.DomEvent.disableClickPropagation(bar);
  // A tap on a layer's label clicks the label and then its checkbox; Leaflet 1.9.3 counts the
  // two clicks reaching the map as a double tap and zooms in. Keep clicks in the controls.
  for (const element of [bar, ...entries.map((entry) => entry.panel)]) {
    element.addEventListener('click', (event) => event.stopPropagation());
  }

  // Capture phase: Leaflet stops clicks inside its controls from bubbling to the document.
  doc.addEventListener(
    'pointerdown',
    (event) => {
      for (const entry of entries) {
        const inside = entry.panel.contains(event.target) || entry.button.contains(event.target);
        if (isOpen(entry) && !inside) setOpen(entries, entry, false);
      }
    },
    true,
  );
  doc.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') entries.forEach((entry) => setOpen(entries, entry, false));
  });
}

function isOpen(entry) {
  return entry.panel.classList.contains('gis-open');
}

/** Opens or closes one panel; opening one closes the others (a phone has room for one). */
function setOpen(entries, entry, open) {
  for (const other of entries) {
    const wanted = other === entry ? open : open ? false : isOpen(other);
    other.panel.classList.toggle('gis-open', wanted);
    other.button.setAttribute('aria-expanded', String(wanted));
  }
}
