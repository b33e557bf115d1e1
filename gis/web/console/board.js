// The unit board: every unit of the town, its status (changeable), the age of its last
// position and its open cases.

import { UNIT_STATUS, ago, escapeHtml } from './format.js';

const STALE_MS = 30 * 60_000; // a position older than this is shown in red

// A unit of another town standing in this one is shown, but its status is not ours to change.
export function renderBoard(tbody, total, units, onStatus, jurisdiction = []) {
  const now = Date.now();
  const ours = new Set(jurisdiction);
  total.textContent = `${units.length}`;
  tbody.innerHTML = units
    .map((unit) => {
      const fix = unit.last_fix_at;
      const stale = !fix || now - Date.parse(fix) > STALE_MS;
      const options = Object.entries(UNIT_STATUS)
        .map(
          ([value, label]) =>
            `<option value="${value}"${value === unit.status ? ' selected' : ''}>${label}</option>`,
        )
        .join('');
      return (
        `<tr data-unit-id="${unit.id}" data-status="${escapeHtml(unit.status)}">` +
        `<td>${escapeHtml(unit.name)}</td>` +
        `<td>${escapeHtml(unit.unit_type_zh)} <span lang="en">${escapeHtml(unit.unit_type_en)}</span></td>` +
        `<td class="status-${escapeHtml(unit.status)}"><select aria-label="状态 Status"` +
        (ours.has(unit.jurisdiction_code) ? '' : ' disabled title="非属地单位 Another town\'s unit"') +
        `>${options}</select></td>` +
        `<td class="${stale ? 'stale' : ''}">${fix ? ago(fix, now) : '无 none'}</td>` +
        `<td>${unit.open_cases}</td></tr>`
      );
    })
    .join('');
  const byId = new Map(units.map((unit) => [unit.id, unit]));
  tbody.onchange = (event) => {
    const row = event.target.closest('tr[data-unit-id]');
    if (row) onStatus(byId.get(Number(row.dataset.unitId)), event.target.value);
  };
}
