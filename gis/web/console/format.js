// Words and numbers of the console, Chinese first with English.

export const BUCKETS = {
  unassigned: '未派 unassigned',
  outside: '网格外 outside',
  escalated: '升级 escalated',
  overdue: '超期 overdue',
  reworked: '返工 reworked',
  camera: '天眼 camera',
  newest: '新 newest',
};

export const UNIT_STATUS = {
  available: '空闲 available',
  busy: '忙 busy',
  off_duty: '休 off duty',
};

export const REASONS = {
  busy: '忙 busy',
  off_duty: '休 off duty',
  out_of_jurisdiction: '非属地 out of jurisdiction',
};

export const CASE_STATUS = {
  reported: '已上报 reported',
  assigned: '已派 assigned',
  accepted: '已受理 accepted',
  in_progress: '处理中 in progress',
  returned: '返工 returned',
  escalated: '已升级 escalated',
};

export function escapeHtml(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Local time in China (UTC+8): "MM-DD HH:mm".
export function chinaTime(iso) {
  if (!iso) return '—';
  const t = new Date(Date.parse(iso) + 8 * 3600_000);
  return t.toISOString().slice(5, 16).replace('T', ' ');
}

// A span of time, short: "45 秒 s", "12 分 min", "3.5 时 h", "2 天 d".
export function span(seconds) {
  const s = Math.abs(seconds);
  if (s < 60) return `${Math.round(s)} 秒 s`;
  if (s < 3600) return `${Math.round(s / 60)} 分 min`;
  if (s < 48 * 3600) return `${(s / 3600).toFixed(1)} 时 h`;
  return `${Math.round(s / 86400)} 天 d`;
}

// How long ago (or, for a future time, in how long) an ISO time is.
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const seconds = (now - Date.parse(iso)) / 1000;
  return seconds >= 0 ? `${span(seconds)} 前 ago` : `${span(seconds)} 后 from now`;
}

export function km(metres) {
  if (metres === null || metres === undefined) return '—';
  return metres < 1000 ? `${Math.round(metres)} 米 m` : `${(metres / 1000).toFixed(1)} 公里 km`;
}
