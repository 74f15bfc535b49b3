// Host resources: CPU, memory, accelerator (GET /1.0/resources) and storage
// pools (GET /1.0/storage-pools).
import { formatBytes, get } from "../api";
import { h, showError } from "../dom";

type Obj = Record<string, unknown>;

// A key path like "memory.allocated" or "pools.used_bytes" holds bytes.
function isBytesKey(k: string): boolean {
  return /bytes|memory/.test(k);
}

// Renders any JSON object as nested definition lists; the resources object
// grows over time and the UI should show new fields without a change.
function tree(v: unknown, key = ""): Node {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    return h(
      "dl",
      { class: "kv" },
      ...Object.entries(v as Obj).flatMap(([k, x]) => [h("dt", {}, k.replace(/_/g, " ")), h("dd", {}, tree(x, `${key}.${k}`))]),
    );
  }
  if (Array.isArray(v)) return h("span", {}, v.map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x))).join(", "));
  if (typeof v === "number" && isBytesKey(key) && !/ratio|count|total_cpus/.test(key) && v > 1024) return document.createTextNode(`${formatBytes(v)}`);
  return document.createTextNode(String(v));
}

interface Pool {
  name: string;
  type: string;
  path?: string;
  vg?: string;
  capacity_bytes: number;
  used_bytes: number;
  allocated_bytes: number;
  quota_bytes: number;
  volumes: number;
}

export function renderHost(app: HTMLElement): void {
  const res = h("section", { class: "card", id: "host-resources" }, h("h2", {}, "Resources"), "Loading…");
  const pools = h("section", { class: "card", id: "host-pools" }, h("h2", {}, "Storage pools"), "Loading…");
  app.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "Host")), h("div", { class: "grid" }, res, pools));
  get<Obj>("/1.0/resources")
    .then((r) => {
      // Storage pools get their own table below.
      const { storage: _pools, ...rest } = r;
      res.replaceChildren(h("h2", {}, "Resources"), tree(rest));
    })
    .catch((e) => showError(res, e));
  get<Pool[]>("/1.0/storage-pools")
    .then((ps) =>
      pools.replaceChildren(
        h("h2", {}, "Storage pools"),
        h(
          "table",
          { class: "list" },
          h("thead", {}, h("tr", {}, ...["Name", "Type", "Used", "Allocated", "Capacity", "Volumes"].map((t) => h("th", {}, t)))),
          h(
            "tbody",
            {},
            ...ps.map((p) =>
              h(
                "tr",
                {},
                h("td", { "data-label": "Name" }, p.name),
                h("td", { "data-label": "Type" }, p.type),
                h("td", { "data-label": "Used" }, formatBytes(p.used_bytes)),
                h("td", { "data-label": "Allocated" }, `${formatBytes(p.allocated_bytes)}${p.quota_bytes ? ` / ${formatBytes(p.quota_bytes)}` : ""}`),
                h("td", { "data-label": "Capacity" }, formatBytes(p.capacity_bytes)),
                h("td", { "data-label": "Volumes" }, String(p.volumes ?? "-")),
              ),
            ),
          ),
        ),
      ),
    )
    .catch((e) => showError(pools, e));
}
