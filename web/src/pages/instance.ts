// One instance: status, config, lifecycle actions (with operation progress
// and the API's error message) and links to the two consoles.
import { formatBytes, get, runAsync } from "../api";
import { h, showError } from "../dom";
import { subscribeEvents } from "../events";
import { instanceIp, type Instance } from "./instances";

const ACTIONS: Record<string, string[]> = {
  running: ["stop", "pause", "restart"],
  paused: ["resume", "stop"],
  stopped: ["start"],
  error: ["start", "stop"],
};

function kv(rows: [string, string][]): HTMLElement {
  return h("dl", { class: "kv" }, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function renderInstance(app: HTMLElement, name: string): () => void {
  const enc = encodeURIComponent(name);
  const status = h("div", { id: "op-status", class: "op-status", "aria-live": "polite" });
  const actions = h("div", { class: "actions", id: "instance-actions" });
  const details = h("div", { id: "instance-details" }, "Loading…");
  const force = h("input", { type: "checkbox", id: "force" });
  app.replaceChildren(
    h("div", { class: "page-head" }, h("h1", {}, name), h("a", { href: "#/instances" }, "← Instances")),
    h(
      "div",
      { class: "actions" },
      h("a", { class: "button", id: "open-console", href: `#/instances/${enc}/console` }, "Graphical console"),
      h("a", { class: "button", id: "open-serial", href: `#/instances/${enc}/serial` }, "Serial console"),
    ),
    actions,
    status,
    details,
  );
  let busy = false;
  let stopped = false;
  const run = async (label: string, method: string, path: string, body?: unknown) => {
    if (busy) return;
    busy = true;
    actions.querySelectorAll("button").forEach((b) => ((b as HTMLButtonElement).disabled = true));
    status.className = "op-status";
    status.textContent = `${label}…`;
    try {
      await runAsync(method, path, body, (t) => (status.textContent = t));
      status.textContent = `${label}: done`;
      if (method === "DELETE") {
        location.hash = "#/instances";
        return;
      }
    } catch (e) {
      status.className = "op-status error";
      status.textContent = `${label} failed: ${e instanceof Error ? e.message : String(e)}`;
    } finally {
      busy = false;
    }
    await load();
  };
  const load = async () => {
    try {
      const i = await get<Instance>(`/1.0/instances/${enc}`);
      if (stopped) return;
      const c = i.config as Record<string, unknown>;
      const disks = (c.disks as { name: string; size: number; source?: string }[]) || [];
      details.replaceChildren(
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Status"),
          kv([
            ["State", i.state],
            ["PID", String(i.status?.pid ?? "-")],
            ["IP", instanceIp(i)],
            ["Last error", String(i.status?.last_error || "-")],
          ]),
        ),
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Config"),
          kv([
            ["CPUs", String(i.cpus)],
            ["Memory", formatBytes(i.memory)],
            ["Kernel", String(c.kernel || "-")],
            ["Initrd", String(c.initrd || "-")],
            ["Cmdline", String(c.cmdline || "-")],
            ["Restart policy", String(c.restart_policy || "-")],
            ["Disks", disks.map((d) => `${d.name} ${formatBytes(d.size)}`).join(", ") || "-"],
          ]),
          h("details", {}, h("summary", {}, "Raw JSON"), h("pre", { class: "json" }, JSON.stringify(i, null, 2))),
        ),
      );
      actions.replaceChildren(
        ...(ACTIONS[i.state] || ["start", "stop"]).map((a) =>
          h(
            "button",
            {
              "data-action": a,
              disabled: busy,
              onclick: () => void run(a, "PUT", `/1.0/instances/${enc}/state`, { action: a, force: force.checked }),
            },
            a[0].toUpperCase() + a.slice(1),
          ),
        ),
        h("label", { class: "inline" }, force, "force"),
        h(
          "button",
          {
            "data-action": "delete",
            class: "danger",
            disabled: busy,
            onclick: () => {
              if (confirm(`Delete ${name}?`))
                void run("delete", "DELETE", `/1.0/instances/${enc}${force.checked ? "?force=1" : ""}`);
            },
          },
          "Delete",
        ),
      );
    } catch (e) {
      if (!stopped) showError(details, e);
    }
  };
  void load();
  const unsub = subscribeEvents((ev) => {
    if (ev.type === "lifecycle" && !busy) void load();
  });
  return () => {
    stopped = true;
    unsub();
  };
}
