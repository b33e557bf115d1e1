/**
 * The app's service worker (served at /app/sw.js, scope /app): keeps the page, its modules,
 * Leaflet and the category list so the app opens and a report can be written without signal.
 * Network first (a new version takes effect at once), the kept copy when there is no network.
 * Reports are not sent from here: the page's outbox does that (Safari has no Background Sync).
 */

const CACHE = 'gis-field-app-v1';
const scope = new URL(self.registration.scope);
const root = scope.pathname.replace(/\/app\/?$/, '');
const KEPT_PATHS = [`${root}/web/app/`, `${root}/maps/assets/`];
const KEPT_EXACT = [`${root}/app`, `${root}/categories`];

function kept(url) {
  return url.origin === self.location.origin
    && (KEPT_EXACT.includes(url.pathname) || KEPT_PATHS.some((p) => url.pathname.startsWith(p)));
}

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll([`${root}/app`, `${root}/categories`]).catch(() => {})));
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  const urls = (event.data && event.data.keep) || [];
  event.waitUntil(caches.open(CACHE).then((cache) => Promise.all(
    urls.filter((u) => kept(new URL(u, self.location.href))).map((u) => cache.add(u).catch(() => {})),
  )));
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || !kept(url)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(event.request);
      if (response.ok) cache.put(event.request, response.clone());
      return response;
    } catch (error) {
      const copy = await cache.match(event.request, { ignoreSearch: url.pathname.endsWith('/app') });
      if (copy) return copy;
      throw error;
    }
  })());
});
