// The unit board: every unit of the town, its status (changeable), the age of its last
// position and its open cases.

import { UNIT_STATUS, ago, escapeHtml } from './format.js';

const STALE_MS = 30 * 60_000; // a position older than this is shown in red

export function renderBoard(tbody, total, units, onStatus) {
  const now = Date.now();
  total.textContent = `${units.length}`;
  tbody.innerHTML = '';
  for (const unit of units) {
    const tr = document.createElement('tr');
    tr.dataset.unitId = String(unit.id);
    tr.dataset.status = unit.status;
    const fix = unit.last_fix_at;
    const stale = !fix || now - Date.parse(fix) > STALE_MS;
    const options = Object.entries(UNIT_STATUS)
      .map(
        ([value, label]) =>
          `<option value="${value}"${value === unit.status ? ' selected' : ''}>${label}</option>`,
      )
      .join('');
    tr.innerHTML =
      `<td>${escapeHtml(unit.name)}</td><td>${escapeHtml(unit.unit_type)}</td>` +
      `<td class="status-${unit.status}"><select aria-label="状态 Status">${options}</select></td>` +
      `<td class="${stale ? 'stale' : ''}">${fix ? ago(fix, now) : '无 none'}</td>` +
      `<td>${unit.open_cases}</td>`;
    tr.querySelector('select').addEventListener('change', (event) => {
      onStatus(unit, event.target.value);
    });
    tbody.appendChild(tr);
  }
}
