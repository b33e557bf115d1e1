// The responders panel: the units offered for the selected case by drive time (one click
// assigns), and the nearby units left out with why.

import { REASONS, escapeHtml, km, span } from './format.js';

// The units a case may go to: the offered ones but its current unit (it has the case already).
export function choices(data) {
  return data ? data.units.filter((unit) => unit.id !== data.current_unit_id) : [];
}

export function renderResponders(list, excluded, data, onAssign) {
  list.innerHTML = '';
  if (!data) {
    excluded.innerHTML = '';
    return;
  }
  const first = choices(data)[0];
  data.units.forEach((unit) => {
    const li = document.createElement('li');
    li.dataset.unitId = String(unit.id);
    const eta = unit.reachable ? span(unit.eta_s) : '不可达 unreachable';
    const current = unit.id === data.current_unit_id;
    li.innerHTML =
      (current
        ? '<span class="current">当前单位 current unit</span>'
        : `<button type="button">${unit === first ? '派遣 Assign ⏎' : '派遣 Assign'}</button>`) +
      `<div><b>${escapeHtml(unit.name)}</b></div>` +
      `<div><span class="eta">${eta}</span> · 路程 ${km(unit.route_m)} · 直线 ${km(unit.distance_m)}</div>`;
    li.querySelector('button')?.addEventListener('click', () => onAssign(unit));
    list.appendChild(li);
  });
  if (!data.units.length) {
    list.innerHTML =
      '<li class="empty">属地内无空闲单位 No available unit of this jurisdiction</li>';
  }
  excluded.innerHTML = data.excluded
    .map(
      (unit) =>
        `<li data-unit-id="${unit.id}">${escapeHtml(unit.name)} · ${km(unit.distance_m)} · ` +
        `<span class="reason">${escapeHtml(REASONS[unit.reason] || unit.reason)}</span></li>`,
    )
    .join('');
}
