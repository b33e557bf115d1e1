/**
 * The outbox: every report is written here first (IndexedDB, photos as Blobs) and sent from
 * here, so a report made without signal waits on the phone until it can go. Each keeps the
 * Idempotency-Key it was born with: a retry after a lost reply returns the first answer and
 * never makes a second case. Safari has no Background Sync, so the app flushes on `online`, on
 * start and on a timer (app.js).
 */

import { ApiError, call, uploadPhoto } from './api.js';

const DB = 'gis-field-app';
const STORE = 'outbox';

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'key' });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function tx(mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const result = work(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(result && 'result' in result ? result.result : undefined);
      transaction.onerror = () => reject(transaction.error);
    });
  } finally {
    db.close();
  }
}

export const put = (item) => tx('readwrite', (store) => store.put(item));
export const remove = (key) => tx('readwrite', (store) => store.delete(key));

/** Every queued report, oldest first. */
export async function items() {
  const all = (await tx('readonly', (store) => store.getAll())) || [];
  return all.sort((a, b) => a.created_at.localeCompare(b.created_at));
}

/** A new report in the outbox: its key is its Idempotency-Key for every attempt. */
export async function enqueue(body, photos) {
  const item = {
    key: crypto.randomUUID(),
    created_at: new Date().toISOString(),
    body,
    photos: photos.map((file) => ({ blob: file, name: file.name || 'photo.jpg', ref: null, exif: null })),
    state: 'waiting',
    error: null,
  };
  await put(item);
  return item;
}

async function discardPhotos(item) {
  for (const photo of item.photos) {
    if (!photo.ref) continue;
    try {
      await call(`/media/${photo.ref.slice('media:'.length)}`, { method: 'DELETE' });
    } catch (error) {
      if (error.offline) return; // tried again with the next failure or discard
    }
    photo.ref = null;
  }
}

async function send(item) {
  for (const photo of item.photos) {
    if (photo.ref) continue;
    const stored = await uploadPhoto(photo.blob, photo.name);
    photo.ref = stored.ref;
    photo.exif = stored.exif_location;
    await put(item); // a photo sent once is not sent again after a lost signal
  }
  const body = { ...item.body, photos: item.photos.map((p) => p.ref) };
  if (!body.location) {
    // No GPS fix at capture: the photo's own EXIF GPS, flagged as such.
    const exif = item.photos.find((p) => p.exif)?.exif;
    if (!exif) throw new ApiError(422, 'no_location', 'no location');
    body.location = { lon: exif.lon, lat: exif.lat, method: 'photo_exif' };
  }
  return call('/incidents', { method: 'POST', json: body, headers: { 'Idempotency-Key': item.key } });
}

let running = null;

/** Send what waits, oldest first; `onSent(item, reply)` for each saved report. One flush at
 * a time: a timer tick during a slow upload joins the running flush. */
export function flush(onSent, onChange) {
  if (!running) {
    running = (async () => {
      try {
        for (const item of await items()) {
          if (item.state !== 'waiting') continue;
          try {
            const reply = await send(item);
            await remove(item.key);
            onSent(item, reply);
          } catch (error) {
            if (!(error instanceof ApiError) || error.offline || error.status >= 500) break;
            item.state = 'failed';
            item.error = { code: error.code, detail: error.detail, status: error.status };
            // Nothing half-saved: the photos of a refused report leave the server.
            await discardPhotos(item);
            await put(item);
          } finally {
            onChange();
          }
        }
      } finally {
        running = null;
      }
    })();
  }
  return running;
}

/** Drop a report that will not be sent (its uploaded photos are deleted too). */
export async function discard(item) {
  await discardPhotos(item);
  await remove(item.key);
}
