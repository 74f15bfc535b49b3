// Instances list: name, state, CPUs, memory, IP; refetched on lifecycle events.
import { formatBytes, get } from "../api";
import { h, showError } from "../dom";
import { subscribeEvents } from "../events";

export interface Nic {
  name: string;
  type?: string;
  mac?: string;
  network?: string;
  ipv4?: string;
}

export interface Instance {
  name: string;
  state: string;
  cpus: number;
  memory: number;
  nics?: Nic[];
  config: Record<string, unknown> & { nics?: Nic[] };
  status: Record<string, unknown>;
}

export function instanceIp(i: Instance): string {
  const nics = i.nics || i.config?.nics || [];
  return nics.map((n) => n.ipv4).filter(Boolean).join(", ") || "-";
}

export function renderInstances(app: HTMLElement): () => void {
  const body = h("div", { id: "instances-body" }, "Loading…");
  app.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "Instances")), body);
  let stopped = false;
  const load = async () => {
    try {
      const list = await get<Instance[]>("/1.0/instances?recursion=1");
      if (stopped) return;
      list.sort((a, b) => a.name.localeCompare(b.name));
      if (list.length === 0) {
        body.replaceChildren(h("p", {}, "No instances yet. Launch one from the Images page."));
        return;
      }
      const row = (i: Instance) =>
        h(
          "tr",
          { "data-instance": i.name },
          h("td", { "data-label": "Name" }, h("a", { href: `#/instances/${encodeURIComponent(i.name)}` }, i.name)),
          h("td", { "data-label": "State", class: "state" }, h("span", { class: `badge ${i.state}` }, i.state)),
          h("td", { "data-label": "CPUs" }, String(i.cpus ?? "-")),
          h("td", { "data-label": "Memory" }, formatBytes(i.memory)),
          h("td", { "data-label": "IP" }, instanceIp(i)),
        );
      body.replaceChildren(
        h(
          "table",
          { class: "list", id: "instances-table" },
          h("thead", {}, h("tr", {}, ...["Name", "State", "CPUs", "Memory", "IP"].map((t) => h("th", {}, t)))),
          h("tbody", {}, ...list.map(row)),
        ),
      );
    } catch (e) {
      if (!stopped) showError(body, e);
    }
  };
  void load();
  // Coalesce bursts of events into one refetch.
  let pending: number | undefined;
  const unsub = subscribeEvents((ev) => {
    if (ev.type !== "lifecycle") return;
    if (pending) clearTimeout(pending);
    pending = window.setTimeout(() => void load(), 150);
  });
  // Also refresh now and then: IPs come from DHCP leases, which send no event.
  const poll = window.setInterval(() => void load(), 15000);
  return () => {
    stopped = true;
    unsub();
    clearInterval(poll);
    if (pending) clearTimeout(pending);
  };
}
