// The console's only way to the service: the public JSON API, with the login cookie.

export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.code = body.code;
    this.body = body;
  }
}

export function makeApi(root) {
  return async function api(path, { method = 'GET', body, query } = {}) {
    const url = new URL(root + path, window.location.href);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
    }
    // No Accept header: the API answers JSON anyway, and a request with the browser's default
    // headers is the one the page's <link rel="preload"> already made.
    const headers = body === undefined ? {} : { 'Content-Type': 'application/json' };
    const response = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  };
}
