// Serial console: xterm.js over a ticketed websocket, binary frames both ways.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";
import { consoleTicket } from "../api";
import { h } from "../dom";

declare global {
  interface Window {
    __vireoTerm?: Terminal | null;
  }
}

export function renderSerial(app: HTMLElement, name: string): () => void {
  const enc = encodeURIComponent(name);
  const holder = h("div", { id: "serial-term", class: "serial-term" });
  const status = h("span", { id: "serial-status", class: "console-status" }, "connecting…");
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  window.__vireoTerm = term;
  let ws: WebSocket | null = null;
  let closed = false;
  const enc8 = new TextEncoder();

  const connect = async () => {
    ws?.close();
    status.textContent = "connecting…";
    status.className = "console-status";
    try {
      const t = await consoleTicket(name, "serial");
      if (closed) return;
      const sock = new WebSocket(t.url);
      sock.binaryType = "arraybuffer";
      ws = sock;
      sock.onopen = () => {
        status.textContent = "connected";
        status.className = "console-status ok";
        term.focus();
      };
      sock.onmessage = (m) => {
        if (typeof m.data === "string") term.write(m.data);
        else term.write(new Uint8Array(m.data as ArrayBuffer));
      };
      sock.onclose = () => {
        if (ws !== sock) return;
        status.textContent = "disconnected";
        status.className = "console-status error";
      };
    } catch (e) {
      status.textContent = e instanceof Error ? e.message : String(e);
      status.className = "console-status error";
    }
  };
  const dataSub = term.onData((d) => {
    if (ws?.readyState === WebSocket.OPEN) ws.send(enc8.encode(d));
  });

  app.replaceChildren(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, `${name}: serial`),
      h("a", { href: `#/instances/${enc}` }, "← Instance"),
    ),
    h(
      "div",
      { class: "toolbar" },
      status,
      h("button", { id: "serial-reconnect", onclick: () => void connect() }, "Reconnect"),
      h("a", { class: "button secondary", href: `#/instances/${enc}/console` }, "Graphical"),
    ),
    holder,
  );
  term.open(holder);
  const refit = () => {
    try {
      fit.fit();
    } catch {
      /* not laid out yet */
    }
  };
  refit();
  window.addEventListener("resize", refit);
  void connect();
  return () => {
    closed = true;
    window.removeEventListener("resize", refit);
    dataSub.dispose();
    ws?.close();
    term.dispose();
    window.__vireoTerm = null;
  };
}
