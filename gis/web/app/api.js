/**
 * The public API as the app uses it. The login is an HttpOnly cookie the browser sends by
 * itself (same origin); this module never sees the token. Errors come back as ApiError with the
 * API's `{code, detail}`, or with `offline` set when the request never reached the server.
 */

const config = JSON.parse(document.getElementById('gis-config').textContent);
export const ROOT = config.root;

export class ApiError extends Error {
  constructor(status, code, detail, offline = false) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.offline = offline;
  }
}

/** fetch + JSON, with the API's errors and lost signal as ApiError. */
export async function call(path, { method = 'GET', json, body, headers = {} } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(ROOT + path, init);
  } catch (error) {
    throw new ApiError(0, 'offline', String(error), true);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, data.code || 'error', data.detail || response.statusText);
  }
  return data;
}

/** Upload one photo (POST /media); returns the API's MediaRead. */
export function uploadPhoto(blob, name = 'photo.jpg') {
  const form = new FormData();
  form.append('file', blob, name);
  return call('/media', { method: 'POST', body: form });
}
