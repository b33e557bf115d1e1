// The planner's editor: redraw a village's grids on the map. The browser only collects
// gestures (a split line, grids to merge, a dragged vertex, a new outline, a name, members);
// the server applies them to the draft's coverage, validates it and answers the new draft with
// its balance, impact and problems, which are drawn here.

import { ApiError, planApi } from "./editor-api.js";
import {
  beforeLayer,
  gridLayer,
  loadPer1000,
  problemLayer,
  swipe,
  vertices,
} from "./editor-map.js";

const HINTS = {
  select: "点击网格查看、改名或设网格员。Click a grid to see it, rename it or set its members.",
  split: "在网格上依次点击画一条穿过它的线，然后点“完成”。Click points of a line across a grid, then Finish.",
  merge: "点击两个或更多相邻网格，然后点“完成”。Click two or more neighbouring grids, then Finish.",
  vertex: "点击网格显示顶点，拖动顶点（紫色为共享顶点）。Click a grid, then drag a vertex (purple: shared).",
  add: "依次点击画出新网格的轮廓，然后点“完成”。Click the outline of the new grid, then Finish.",
};
const fmt = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 1 });
const STATES = {
  draft: ["草稿 Draft", "可编辑；完成后提交审核。Editable; submit it for review when done."],
  submitted: [
    "已提交 Submitted",
    "已冻结等待应用；要修改请先撤回。Frozen for review: apply it, or withdraw it to edit.",
  ],
  applied: ["已应用 Applied", "新网格已生效。The new grids are in force."],
  rejected: ["已驳回 Rejected", "仅供查阅。Kept for the record."],
  superseded: [
    "已被取代 Superseded",
    "本村网格已被另一方案修改。Another plan changed the village's grids meanwhile.",
  ],
};

function el(id) {
  return document.getElementById(id);
}

function status(text) {
  el("gis-status").textContent = text;
}

export async function start(config) {
  const api = planApi(config.root);
  const map = L.map("ed-map", { zoomControl: true });
  // The current grids of the compare swipe: their own pane above the draft's, clipped apart.
  const beforePane = map.createPane("ed-before");
  beforePane.style.zIndex = 450;
  beforePane.style.pointerEvents = "none";
  const beforeRenderer = L.svg({ pane: "ed-before" });
  L.tileLayer("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png", {
    maxZoom: 19,
    attribution: "© OpenStreetMap",
  }).addTo(map);
  const state = {
    plan: null,
    base: null,
    tool: "select",
    selected: new Set(),
    points: [],
    layers: { grids: null, before: null, problems: null, sketch: null, vertices: null },
    busy: false,
    previewTimer: null,
    applied: null,
    compare: null,
    ready: false,
  };
  window.gisEditor = { map, state };

  async function run(action, label) {
    state.busy = true;
    status(`${label}… Working…`);
    try {
      const plan = await action();
      show(plan);
      status(`${label} ✓`);
      return plan;
    } catch (error) {
      if (!(error instanceof ApiError)) {
        throw error;
      }
      status(`${label} ✗ ${error.message}`);
      el("ed-hint").textContent = `未执行 Not done: ${error.message}`;
      return null;
    } finally {
      state.busy = false;
    }
  }

  function gesture(body, label) {
    return run(() => api.edit(state.plan.id, body, state.plan.history.done), label);
  }

  // --- drawing --------------------------------------------------------------------------------

  function show(plan) {
    state.plan = plan;
    const rows = Object.fromEntries(plan.balance.grids.map((row) => [row.code, row]));
    const codes = new Set(plan.proposed.features.map((f) => f.properties.code));
    state.selected = new Set([...state.selected].filter((code) => codes.has(code)));
    const loads = plan.balance.grids.map(loadPer1000);
    const mean = loads.length ? loads.reduce((a, b) => a + b, 0) / loads.length : 0;
    for (const name of ["grids", "problems"]) {
      if (state.layers[name]) {
        map.removeLayer(state.layers[name]);
      }
    }
    state.layers.grids = gridLayer(plan, rows, mean, state.selected, onGridClick).addTo(map);
    state.layers.problems = problemLayer(plan).addTo(map);
    showVertices();
    showChecks(plan);
    showBalance(plan, rows);
    showImpact(plan);
    showState(plan);
    showSelected();
  }

  function showState(plan) {
    const draft = plan.status === "draft";
    const [label, hint] = STATES[plan.status] || [plan.status, ""];
    el("ed-plan-id").textContent = `#${plan.id}`;
    el("ed-plan-state").textContent = label;
    el("ed-plan-state").className = plan.status;
    el("ed-state-hint").textContent = hint;
    el("ed-undo").disabled = plan.history.done === 0 || !draft;
    el("ed-redo").disabled = plan.history.undone === 0 || !draft;
    el("ed-submit").disabled = !draft;
    el("ed-withdraw").hidden = plan.status !== "submitted";
    el("ed-apply").disabled = plan.status !== "submitted";
    // A submitted (or decided) plan is frozen: no tool, no rename, no member change.
    el("ed-tools").classList.toggle("frozen", !draft);
    for (const button of document.querySelectorAll("#ed-tools [data-tool], #ed-selected button")) {
      button.disabled = !draft;
    }
    if (!draft) {
      el("ed-finish").disabled = true;
      el("ed-cancel").disabled = true;
    }
    el("ed-export-gpkg").href = api.exportUrl(plan.id, "gpkg");
    el("ed-export-geojson").href = api.exportUrl(plan.id, "geojson");
  }

  function memberName(id) {
    const member = (state.plan.members || []).find((m) => m.id === id);
    return member ? member.name : `#${id}`;
  }

  function showChecks(plan) {
    const valid = el("ed-valid");
    const v = plan.validation;
    valid.className = plan.valid ? "ok" : "bad";
    valid.textContent = plan.valid
      ? `通过 Valid — ${v.warnings} 条提示 warnings`
      : `${v.errors} 个错误 errors, ${v.warnings} 条提示 warnings`;
    const list = el("ed-issues");
    list.replaceChildren(
      ...v.issues.map((issue) => {
        const li = document.createElement("li");
        li.className = issue.severity;
        li.dataset.kind = issue.kind;
        li.textContent = issue.message;
        return li;
      }),
    );
  }

  function showBalance(plan, rows) {
    const body = el("ed-balance").querySelector("tbody");
    const names = Object.fromEntries(
      plan.proposed.features.map((f) => [f.properties.code, f.properties.name]),
    );
    body.replaceChildren(
      ...Object.values(rows).map((row) => {
        const tr = document.createElement("tr");
        tr.dataset.code = row.code;
        tr.classList.toggle("flagged", row.flagged.length > 0);
        tr.classList.toggle("selected", state.selected.has(row.code));
        const cells = [
          names[row.code] && names[row.code] !== row.code ? `${names[row.code]} ${row.code}` : row.code,
          row.members.map(memberName).join("、") || "—",
          fmt.format(row.households) + (row.households_estimated ? "*" : ""),
          fmt.format(row.population) + (row.population_estimated ? "*" : ""),
          fmt.format(row.incidents_12m),
          fmt.format(loadPer1000(row)),
        ];
        for (const text of cells) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        tr.addEventListener("click", () => onGridClick(row.code));
        return tr;
      }),
    );
  }

  function showImpact(plan) {
    const i = plan.impact;
    const g = i.grids;
    let text =
      `新增 added ${g.added.length} · 撤销 retired ${g.retired.length} · ` +
      `变更 changed ${g.changed.length} · 未变 unchanged ${g.unchanged.length}. ` +
      `移动的在办案件 Open cases moving: ${i.open_cases_moving}. ` +
      `网格员变化 Members affected: ${i.members.map((m) => m.name || m.member_id).join(", ") || "—"}.`;
    if (plan.result && plan.result.created) {
      text += ` 已应用 Applied: ${plan.result.created.join(", ")}; ` +
        `案件移动 cases moved ${plan.result.cases.moved ?? plan.impact.open_cases_moving}.`;
    }
    el("ed-impact-text").textContent = text;
  }

  function showSelected() {
    const section = el("ed-selected");
    const [code] = [...state.selected];
    if (state.tool !== "select" || !code) {
      section.hidden = true;
      return;
    }
    const feature = state.plan.proposed.features.find((f) => f.properties.code === code);
    section.hidden = false;
    el("ed-sel-code").textContent = code;
    el("ed-name").value = feature.properties.name || "";
    const chosen = new Set(feature.properties.members || []);
    el("ed-member-list").replaceChildren(
      ...state.plan.members.map((member) => {
        const label = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = String(member.id);
        box.checked = chosen.has(member.id);
        label.className = member.active ? "" : "inactive";
        label.append(box, ` ${member.name}${member.active ? "" : "（停用 inactive）"}`);
        return label;
      }),
    );
  }

  function showVertices() {
    if (state.layers.vertices) {
      map.removeLayer(state.layers.vertices);
      state.layers.vertices = null;
    }
    const [code] = [...state.selected];
    if (state.tool !== "vertex" || !code) {
      return;
    }
    const group = L.layerGroup();
    for (const vertex of vertices(state.plan, code)) {
      const [lon, lat] = vertex.lonlat;
      const marker = L.marker([lat, lon], {
        draggable: true,
        icon: L.divIcon({ className: `ed-vertex${vertex.shared ? " shared" : ""}`, iconSize: null }),
        keyboard: false,
      });
      marker.on("drag", () => previewMove(vertex.lonlat, marker.getLatLng()));
      marker.on("dragend", () => {
        clearTimeout(state.previewTimer);
        const to = marker.getLatLng();
        gesture({ op: "move_vertex", from: vertex.lonlat, to: [to.lng, to.lat] }, "移动顶点 Move vertex");
      });
      marker.addTo(group);
    }
    state.layers.vertices = group.addTo(map);
  }

  // While a vertex is dragged: the server checks the result (nothing stored), debounced.
  function previewMove(from, latlng) {
    clearTimeout(state.previewTimer);
    state.previewTimer = setTimeout(async () => {
      try {
        const plan = await api.edit(
          state.plan.id,
          { op: "move_vertex", from, to: [latlng.lng, latlng.lat] },
          state.plan.history.done,
          true,
        );
        showChecks(plan);
        if (state.layers.problems) {
          map.removeLayer(state.layers.problems);
        }
        state.layers.problems = problemLayer(plan).addTo(map);
      } catch (error) {
        if (!(error instanceof ApiError)) {
          throw error;
        }
        el("ed-hint").textContent = error.message;
      }
    }, config.debounce_ms);
  }

  function drawSketch() {
    if (state.layers.sketch) {
      map.removeLayer(state.layers.sketch);
    }
    const latlngs = state.points.map(([lon, lat]) => [lat, lon]);
    state.layers.sketch =
      state.tool === "add" && latlngs.length > 2
        ? L.polygon(latlngs, { color: "#1d4ed8", dashArray: "4 4", interactive: false })
        : L.polyline(latlngs, { color: "#1d4ed8", weight: 3, interactive: false });
    state.layers.sketch.addTo(map);
    el("ed-finish").disabled = !canFinish();
  }

  function canFinish() {
    if (state.tool === "split") return state.points.length >= 2;
    if (state.tool === "add") return state.points.length >= 3;
    if (state.tool === "merge") return state.selected.size >= 2;
    return false;
  }

  // --- tools ----------------------------------------------------------------------------------

  function setTool(tool) {
    state.tool = tool;
    state.points = [];
    if (tool !== "select") {
      state.selected.clear();
    }
    for (const button of document.querySelectorAll("#ed-tools [data-tool]")) {
      button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
    }
    el("ed-hint").textContent = HINTS[tool];
    el("ed-cancel").disabled = tool === "select";
    drawSketch();
    show(state.plan);
  }

  function onGridClick(code) {
    if (state.tool === "split" || state.tool === "add") {
      return; // the click reaches the map too, which adds the point
    }
    if (state.tool === "merge") {
      if (state.selected.has(code)) {
        state.selected.delete(code);
      } else {
        state.selected.add(code);
      }
    } else {
      state.selected = new Set([code]);
    }
    el("ed-finish").disabled = !canFinish();
    show(state.plan);
  }

  function onMapClick(event) {
    if (state.tool !== "split" && state.tool !== "add") {
      return;
    }
    state.points.push([event.latlng.lng, event.latlng.lat]);
    drawSketch();
  }

  async function finish() {
    const points = state.points;
    let done = null;
    if (state.tool === "split") {
      done = await gesture({ op: "split", line: points }, "切分 Split");
    } else if (state.tool === "add") {
      done = await gesture({ op: "add", polygon: [[...points, points[0]]] }, "新网格 New grid");
    } else if (state.tool === "merge") {
      done = await gesture({ op: "merge", grids: [...state.selected] }, "合并 Merge");
    }
    if (done) {
      setTool("select");
    }
  }

  map.on("click", onMapClick);
  for (const button of document.querySelectorAll("#ed-tools [data-tool]")) {
    button.addEventListener("click", () => setTool(button.dataset.tool));
  }
  el("ed-finish").addEventListener("click", finish);
  el("ed-cancel").addEventListener("click", () => setTool("select"));
  el("ed-undo").addEventListener("click", () => run(() => api.undo(state.plan.id), "撤销 Undo"));
  el("ed-redo").addEventListener("click", () => run(() => api.redo(state.plan.id), "重做 Redo"));
  document.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.target.tagName === "INPUT") return;
    if (event.key === "z" && !el("ed-undo").disabled) el("ed-undo").click();
    if (event.key === "y" && !el("ed-redo").disabled) el("ed-redo").click();
  });
  el("ed-rename").addEventListener("click", () => {
    const [code] = [...state.selected];
    gesture({ op: "rename", grid: code, name: el("ed-name").value }, "改名 Rename");
  });
  el("ed-set-members").addEventListener("click", () => {
    const [code] = [...state.selected];
    const members = [...document.querySelectorAll("#ed-member-list input:checked")].map((box) =>
      Number(box.value),
    );
    gesture({ op: "member", grid: code, members }, "网格员 Members");
  });
  el("ed-compare").addEventListener("change", (event) => {
    if (event.target.checked) {
      state.layers.before.addTo(map);
      state.compare = swipe(map, beforePane);
    } else {
      map.removeLayer(state.layers.before);
      state.compare.remove();
      state.compare = null;
    }
  });
  el("ed-submit").addEventListener("click", submitDraft);
  el("ed-withdraw").addEventListener("click", async () => {
    await run(async () => {
      await api.withdraw(state.plan.id);
      return api.open(state.plan.id);
    }, "撤回 Withdraw");
    listPlans();
  });
  el("ed-apply").addEventListener("click", applyDraft);
  el("ed-rebase").addEventListener("click", async () => {
    const plan = await run(async () => {
      if (state.plan.status === "submitted") {
        await api.withdraw(state.plan.id); // a submitted plan is frozen: back to a draft first
      }
      return api.rebase(state.plan.id);
    }, "基于最新 Rebase");
    if (plan) {
      el("ed-rebase").hidden = true;
      el("ed-apply-result").textContent = "已基于最新网格，请检查后重新提交。Rebased: check it and submit again.";
      state.base = await api.base(plan.scope_code);
      resetBefore();
      listPlans();
    }
  });
  el("ed-import").addEventListener("change", importFile);

  // A 409 of a stale draft: what changed, and the offer to rebase.
  function staleMessage(error) {
    const what = error.body.changed.map((c) => `${c.code} v${c.version} ${c.change}`);
    el("ed-rebase").hidden = false;
    return (
      `村里的网格在此期间被修改。The village changed meanwhile: ${what.join("; ")}. ` +
      "可基于最新网格重做草案。You can rebase the draft on the new grids."
    );
  }

  // Submit and apply: what was done, or why not (stale: what changed, and the rebase offer).
  async function decide(action, done, [zh, en]) {
    const result = el("ed-apply-result");
    result.className = "";
    try {
      await action(state.plan.id);
      const plan = await api.open(state.plan.id);
      show(plan);
      result.textContent = done(plan);
      listPlans();
      return plan;
    } catch (error) {
      if (!(error instanceof ApiError)) {
        throw error;
      }
      result.className = "bad";
      if (error.status === 409 && error.body.changed) {
        result.textContent = `不能${zh}。Not ${en}. ${staleMessage(error)}`;
      } else if (error.status === 422) {
        result.textContent = `校验未通过，不能${zh}。Not ${en}, the draft has errors: ${error.message}`;
      } else {
        result.textContent = `不能${zh} Not ${en}: ${error.message}`;
      }
      return null;
    }
  }

  function submitDraft() {
    return decide(api.submit, () => "已提交审核。Submitted for review.", ["提交", "submitted"]);
  }

  async function applyDraft() {
    const plan = await decide(
      api.apply,
      (applied) =>
        `已应用 Applied: 新版本 new versions ${applied.result.created.join(", ") || "—"}; ` +
        `移动案件 cases moved ${applied.result.cases.moved}.`,
      ["应用", "applied"],
    );
    if (plan) {
      state.applied = plan.result;
      state.base = await api.base(plan.scope_code);
      resetBefore();
    }
  }

  // A GeoPackage/GeoJSON file (edited in QGIS, say) becomes a new draft of the village.
  async function importFile(event) {
    const [file] = event.target.files;
    if (!file) return;
    const plan = await run(() => api.importFile(state.plan.scope_code, file), "导入 Import");
    event.target.value = "";
    const result = el("ed-import-result");
    result.className = plan ? "" : "bad";
    result.textContent = plan ? `✓ ${file.name} → #${plan.id}` : el("ed-hint").textContent;
    if (plan) {
      const url = new URL(window.location.href);
      url.searchParams.set("plan", plan.id);
      window.history.replaceState(null, "", url);
      el("ed-hint").textContent = `已导入为新草案 #${plan.id} Imported as a new draft: ${file.name}`;
      listPlans();
    }
  }

  async function listPlans() {
    const plans = await api.plans(state.plan.scope_code);
    el("ed-plan-list").replaceChildren(
      ...plans.map((plan) => {
        const li = document.createElement("li");
        li.dataset.status = plan.status;
        li.classList.toggle("current", plan.id === state.plan.id);
        const link = document.createElement("a");
        const url = new URL(window.location.href);
        url.searchParams.set("plan", plan.id);
        link.href = url.pathname + url.search;
        link.textContent = `#${plan.id}`;
        const [label] = STATES[plan.status] || [plan.status];
        li.append(link, ` ${label} · ${plan.title || ""} · ${plan.created_by}`);
        return li;
      }),
    );
  }

  function resetBefore() {
    const shown = state.layers.before && map.hasLayer(state.layers.before);
    if (state.layers.before) map.removeLayer(state.layers.before);
    state.layers.before = beforeLayer(state.base, beforeRenderer);
    if (shown) state.layers.before.addTo(map);
  }

  // --- start ----------------------------------------------------------------------------------

  let plan;
  if (config.plan) {
    plan = await api.open(config.plan);
  } else {
    plan = await api.start(config.village);
    const url = new URL(window.location.href);
    url.searchParams.delete("village");
    url.searchParams.set("plan", plan.id);
    window.history.replaceState(null, "", url);
  }
  state.base = await api.base(plan.scope_code);
  resetBefore();
  show(plan);
  map.fitBounds(state.layers.grids.getBounds());
  el("gis-title").textContent = `网格规划编辑器 Grid plan editor — ${plan.scope_code}`;
  el("ed-hint").textContent = HINTS.select;
  await listPlans();
  status("就绪 Ready");
  state.ready = true;
}

start(JSON.parse(document.getElementById("gis-config").textContent)).catch((error) => {
  status(`出错 Error: ${error.message}`);
  throw error;
});
