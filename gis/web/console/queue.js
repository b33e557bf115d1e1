// The queue panel: cases needing a person, their buckets, and the counts per bucket.

import { BUCKETS, CASE_STATUS, ago, chinaTime, escapeHtml } from './format.js';

export function renderCounts(list, total, data) {
  total.textContent = `${data.total}`;
  list.innerHTML = Object.entries(BUCKETS)
    .map(
      ([bucket, label]) =>
        `<li data-bucket="${bucket}">${escapeHtml(label)} <b>${data.counts[bucket] ?? 0}</b></li>`,
    )
    .join('');
}

function itemHtml(item, now) {
  const late = item.due_at && Date.parse(item.due_at) < now;
  const due = item.due_at
    ? `<span class="${late ? 'late' : ''}">期限 due ${chinaTime(item.due_at)}</span>`
    : '无期限 no deadline';
  const tags = item.buckets
    .map((b) => `<span class="tag" data-bucket="${b}">${escapeHtml(BUCKETS[b] || b)}</span>`)
    .join('');
  return (
    `<div class="title">#${item.id} ${escapeHtml(item.category_zh)} ` +
    `<span lang="en">${escapeHtml(item.category_en)}</span></div>` +
    `<div>${tags}</div>` +
    `<div class="meta">${due} · 上报 ${ago(item.reported_at, now)} · ` +
    `${escapeHtml(CASE_STATUS[item.status] || item.status)} · ` +
    `${escapeHtml(item.unit_name || '无单位 no unit')}</div>`
  );
}

// One string for the whole list and one click listener on it: a town's queue can hold hundreds.
export function renderQueue(list, items, selectedId, onSelect) {
  const now = Date.now();
  list.innerHTML = items.length
    ? items
        .map(
          (item) =>
            `<li data-id="${item.id}" aria-selected="${item.id === selectedId}">${itemHtml(item, now)}</li>`,
        )
        .join('')
    : '<li class="empty">没有待办 Nothing needs a dispatcher</li>';
  list.onclick = (event) => {
    const li = event.target.closest('li[data-id]');
    if (li) onSelect(Number(li.dataset.id));
  };
}

export function markSelected(list, selectedId) {
  for (const li of list.querySelectorAll('li[data-id]')) {
    const on = Number(li.dataset.id) === selectedId;
    li.setAttribute('aria-selected', String(on));
    if (on) li.scrollIntoView({ block: 'nearest' });
  }
}
