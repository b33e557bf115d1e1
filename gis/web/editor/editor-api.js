// The editor's calls to the service: every action goes through the public plan API with the
// login cookie. Errors come back as {code, detail, …}; they are thrown as ApiError.

export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function planApi(root) {
  async function call(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body instanceof FormData) {
      init.body = body; // multipart: the browser sets the boundary
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(`${root}${path}`, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new ApiError(response.status, data);
    }
    return data;
  }
  return {
    start: (village) => call("POST", "/plans/editor/drafts", { village }),
    open: (planId) => call("GET", `/plans/${planId}/editor`),
    base: (village) => call("GET", `/plans/base/${encodeURIComponent(village)}`),
    edit: (planId, gesture, head, preview = false) =>
      call("POST", `/plans/${planId}/edits`, { gesture, head, preview }),
    undo: (planId) => call("POST", `/plans/${planId}/undo`),
    redo: (planId) => call("POST", `/plans/${planId}/redo`),
    apply: (planId) => call("POST", `/plans/${planId}/apply`),
    rebase: (planId) => call("POST", `/plans/${planId}/rebase`),
    submit: (planId) => call("POST", `/plans/${planId}/submit`),
    withdraw: (planId) => call("POST", `/plans/${planId}/withdraw`),
    plans: (village) => call("GET", `/plans?scope=${encodeURIComponent(village)}&limit=20`),
    exportUrl: (planId, format) => `${root}/plans/${planId}/export?format=${format}`,
    importFile: (village, file) => {
      const form = new FormData();
      form.append("file", file, file.name);
      return call("POST", `/plans/editor/imports?village=${encodeURIComponent(village)}`, form);
    },
  };
}
