/**
 * Kiosk mode for the wall screen (?kiosk=1). The page builder already left out the controls;
 * here: a clock in China time, the live indicator #gis-live (its state comes from the
 * live-updates module; it is created here when the page has none), and a notice when the login
 * behind the page has expired or was revoked. The page never navigates away by itself: it keeps
 * showing its map and says on screen that it needs a new login.
 */

const CHECK_EVERY_MS = 60000;
// After a check that got no answer about the login (no network, a busy or failing service): the
// next one comes this soon instead of a whole CHECK_EVERY_MS later.
const RETRY_AFTER_MS = 10000;
const CHINA_TIME = 'Asia/Shanghai';

/** Turns the page into the wall's view: clock, live indicator, login watch. */
export function kioskMode(map, { sessionUrl = 'session', checkEveryMs = CHECK_EVERY_MS } = {}) {
  const doc = map.getContainer().ownerDocument;
  doc.documentElement.classList.add('gis-kiosk');
  const bar = doc.createElement('div');
  bar.id = 'gis-kiosk-bar';
  let live = doc.getElementById('gis-live');
  if (!live) {
    live = doc.createElement('span');
    live.id = 'gis-live';
  }
  const clock = doc.createElement('div');
  clock.id = 'gis-clock';
  bar.append(live, clock);
  doc.body.append(bar);
  const loadedAt = new Date();
  showTime(clock);
  setInterval(() => showTime(clock), 1000);
  watchLogin(doc, new URL(sessionUrl, doc.baseURI), checkEveryMs, loadedAt);
}

const timeFormat = new Intl.DateTimeFormat('zh-CN', {
  timeZone: CHINA_TIME,
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});
const dateFormat = new Intl.DateTimeFormat('zh-CN', {
  timeZone: CHINA_TIME,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  weekday: 'short',
});

function showTime(clock) {
  const now = new Date();
  clock.textContent = timeFormat.format(now);
  const date = clock.ownerDocument.createElement('small');
  date.textContent = dateFormat.format(now);
  clock.append(date);
}

/** Asks the service every `every` ms (and when the token is due to expire, and soon again after
 * a check that got no answer) if the login holds. */
function watchLogin(doc, url, every, loadedAt) {
  let timer = null;
  let expiry = null;
  let retry = null;
  const check = async () => {
    clearTimeout(retry);
    let response;
    try {
      response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
    } catch {
      // The network, not the login: the live indicator tells that story; ask again soon.
      retry = setTimeout(check, RETRY_AFTER_MS);
      return;
    }
    if (response.status === 401) {
      clearInterval(timer);
      clearTimeout(expiry);
      showExpired(doc, loadedAt);
      return;
    }
    if (!response.ok) {
      retry = setTimeout(check, RETRY_AFTER_MS);
      return;
    }
    const session = await response.json();
    clearTimeout(expiry);
    if (session.expires_at) {
      const due = Date.parse(session.expires_at) - Date.now() + 1000;
      if (due < 2 ** 31 - 1) expiry = setTimeout(check, Math.max(due, 0));
    }
  };
  timer = setInterval(check, every);
  check();
}

function showExpired(doc, loadedAt) {
  let notice = doc.getElementById('gis-expired');
  if (!notice) {
    notice = doc.createElement('div');
    notice.id = 'gis-expired';
    notice.setAttribute('role', 'alert');
    doc.body.append(notice);
  }
  const shown = timeFormat.format(loadedAt).slice(0, 5);
  notice.replaceChildren(
    doc.createTextNode(`登录已过期 — 画面停留在 ${shown} 的数据`),
    doc.createElement('br'),
    doc.createTextNode(`Login expired — the map shows the data of ${shown}`),
  );
  const hint = doc.createElement('small');
  hint.textContent = '请在 /login 重新登录 · log in again at /login';
  notice.append(hint);
  notice.hidden = false;
}
