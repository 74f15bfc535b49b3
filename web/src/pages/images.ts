// Images: list, upload (XHR for upload progress, then the import operation),
// and launch (create request with "image" and "start").
import { formatBytes, get, operationId, runAsync, waitOperation } from "../api";
import { h, showError } from "../dom";
import { subscribeEvents } from "../events";

interface Image {
  name: string;
  aliases: string[];
  format: string;
  size: number;
  virtual_size: number;
  os: string;
  description: string;
  created_at: number;
}

// XMLHttpRequest rather than fetch: only XHR reports upload progress.
function upload(file: File, alias: string, onProgress: (pct: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/1.0/images/upload?name=${encodeURIComponent(alias)}`);
    xhr.setRequestHeader("X-Vireo-Request", "1");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.withCredentials = true;
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(Math.floor((e.loaded * 100) / e.total));
    };
    xhr.onload = () => {
      let env: { type?: string; operation?: string; error?: string } = {};
      try {
        env = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 400 || env.type === "error") {
        if (xhr.status === 401) location.hash = "#/login";
        reject(new Error(env.error || `HTTP ${xhr.status}`));
      } else resolve(operationId(env as { type: "async"; operation?: string }));
    };
    xhr.onerror = () => reject(new Error("upload failed: network error"));
    xhr.send(file);
  });
}

export function renderImages(app: HTMLElement): () => void {
  const list = h("div", { id: "images-body" }, "Loading…");
  const upStatus = h("div", { id: "upload-status", class: "op-status", "aria-live": "polite" });
  const bar = h("progress", { id: "upload-progress", max: 100, value: 0, hidden: true });
  const file = h("input", { type: "file", id: "upload-file", required: true });
  const alias = h("input", { id: "upload-name", placeholder: "alias", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9._-]{0,62}" });
  file.addEventListener("change", () => {
    if (!alias.value && file.files?.[0]) alias.value = file.files[0].name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9._-]/g, "-");
  });
  const upForm = h(
    "form",
    { class: "card", id: "upload-form" },
    h("h2", {}, "Upload an image"),
    h("label", {}, "File (qcow2, raw, vmdk, vdi, iso)", file),
    h("label", {}, "Name", alias),
    h("button", { type: "submit" }, "Upload"),
    bar,
    upStatus,
  );
  upForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = file.files?.[0];
    if (!f) return;
    bar.hidden = false;
    bar.value = 0;
    upStatus.className = "op-status";
    upStatus.textContent = "Uploading…";
    try {
      const id = await upload(f, alias.value, (p) => {
        bar.value = p;
        upStatus.textContent = `Uploading: ${p}%`;
      });
      upStatus.textContent = "Importing…";
      await waitOperation(id, (t) => (upStatus.textContent = t));
      upStatus.textContent = `Imported ${alias.value}`;
      await load();
    } catch (e) {
      upStatus.className = "op-status error";
      upStatus.textContent = `Upload failed: ${e instanceof Error ? e.message : String(e)}`;
    }
  });

  const launchStatus = h("div", { id: "launch-status", class: "op-status", "aria-live": "polite" });
  const launch = (img: Image) => {
    const name = h("input", { id: "launch-name", required: true, placeholder: "instance name" });
    const cpus = h("input", { id: "launch-cpus", type: "number", min: 1, value: 1 });
    const mem = h("input", { id: "launch-memory", value: "512M" });
    const start = h("input", { id: "launch-start", type: "checkbox", checked: true });
    const form = h(
      "form",
      { class: "card", id: "launch-form" },
      h("h2", {}, `Launch ${img.name}`),
      h("label", {}, "Name", name),
      h("label", {}, "CPUs", cpus),
      h("label", {}, "Memory", mem),
      h("label", { class: "inline" }, start, "start now"),
      h("button", { type: "submit" }, "Launch"),
      launchStatus,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      launchStatus.className = "op-status";
      launchStatus.textContent = "Launching…";
      try {
        await runAsync(
          "POST",
          "/1.0/instances",
          { name: name.value, image: img.name, cpus: Number(cpus.value), memory: mem.value, start: start.checked },
          (t) => (launchStatus.textContent = t),
        );
        location.hash = `#/instances/${encodeURIComponent(name.value)}`;
      } catch (e) {
        launchStatus.className = "op-status error";
        launchStatus.textContent = `Launch failed: ${e instanceof Error ? e.message : String(e)}`;
      }
    });
    launchHolder.replaceChildren(form);
    name.focus();
  };
  const launchHolder = h("div", { id: "launch-holder" });

  let stopped = false;
  const load = async () => {
    try {
      const imgs = await get<Image[]>("/1.0/images?recursion=1");
      if (stopped) return;
      if (imgs.length === 0) {
        list.replaceChildren(h("p", {}, "No images yet."));
        return;
      }
      list.replaceChildren(
        h(
          "table",
          { class: "list", id: "images-table" },
          h("thead", {}, h("tr", {}, ...["Name", "Format", "Size", "OS", ""].map((t) => h("th", {}, t)))),
          h(
            "tbody",
            {},
            ...imgs.map((i) =>
              h(
                "tr",
                { "data-image": i.name },
                h("td", { "data-label": "Name" }, [i.name, ...(i.aliases || []).filter((a) => a !== i.name)].join(", ")),
                h("td", { "data-label": "Format" }, i.format),
                h("td", { "data-label": "Size" }, `${formatBytes(i.size)} / ${formatBytes(i.virtual_size)}`),
                h("td", { "data-label": "OS" }, i.os || "-"),
                h(
                  "td",
                  {},
                  i.format === "iso"
                    ? ""
                    : h("button", { class: "launch", onclick: () => launch(i) }, "Launch"),
                ),
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      if (!stopped) showError(list, e);
    }
  };
  app.replaceChildren(h("div", { class: "page-head" }, h("h1", {}, "Images")), list, launchHolder, upForm);
  void load();
  const unsub = subscribeEvents((ev) => {
    if (ev.type === "lifecycle" && String(ev.metadata?.action || "").startsWith("image-")) void load();
  });
  return () => {
    stopped = true;
    unsub();
  };
}
