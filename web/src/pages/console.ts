// Graphical console: a fresh single-use ticket per connection, noVNC RFB
// scaled to fit, Ctrl-Alt-Del, clipboard, on-screen keyboard, reconnect.
import RFB from "@novnc/novnc";
import { consoleTicket } from "../api";
import { h } from "../dom";

declare global {
  interface Window {
    __vireoRfb?: RFB | null;
  }
}

// X11 keysyms for the keys a phone keyboard reports by name.
const NAMED_KEYS: Record<string, number> = {
  Enter: 0xff0d,
  Backspace: 0xff08,
  Tab: 0xff09,
  Escape: 0xff1b,
  ArrowLeft: 0xff51,
  ArrowUp: 0xff52,
  ArrowRight: 0xff53,
  ArrowDown: 0xff54,
};

// QEMU turns a keysym into a scancode without adding Shift, so characters
// that need Shift on a US keyboard are sent inside a Shift press.
const SHIFTED = '~!@#$%^&*()_+{}|:"<>?';
const SHIFT_L = 0xffe1;

function needsShift(ch: string): boolean {
  return (ch >= "A" && ch <= "Z") || SHIFTED.includes(ch);
}

function keysymOf(ch: string): number {
  const cp = ch.codePointAt(0) || 0;
  // Latin-1 maps to itself; other Unicode characters use the 0x01000000 range.
  return cp < 0x100 ? cp : 0x01000000 | cp;
}

export function renderConsole(app: HTMLElement, name: string): () => void {
  const enc = encodeURIComponent(name);
  const screen = h("div", { id: "vnc-screen", class: "vnc-screen" });
  const status = h("span", { id: "console-status", class: "console-status" }, "connecting…");
  const clip = h("textarea", { id: "clipboard", rows: 3, placeholder: "Clipboard text (sent to the VM; the VM's copies appear here)" });
  // Off-screen input: focusing it raises the phone's keyboard; its input is
  // forwarded key by key to the VM.
  const kbd = h("input", {
    id: "osk-input",
    class: "osk-input",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    "aria-label": "On-screen keyboard input",
  });
  let rfb: RFB | null = null;
  let closed = false;

  const send = (keysym: number) => {
    rfb?.sendKey(keysym, null, true);
    rfb?.sendKey(keysym, null, false);
  };
  kbd.addEventListener("keydown", (e) => {
    const ks = NAMED_KEYS[e.key];
    if (ks) {
      e.preventDefault();
      send(ks);
    }
  });
  kbd.addEventListener("input", () => {
    for (const ch of kbd.value) {
      const shift = needsShift(ch);
      if (shift) rfb?.sendKey(SHIFT_L, "ShiftLeft", true);
      send(keysymOf(ch));
      if (shift) rfb?.sendKey(SHIFT_L, "ShiftLeft", false);
    }
    kbd.value = "";
  });

  const connect = async () => {
    if (rfb) {
      rfb.disconnect();
      rfb = null;
    }
    screen.replaceChildren();
    status.textContent = "connecting…";
    status.className = "console-status";
    try {
      // Tickets are single use: every (re)connect asks for a new one.
      const t = await consoleTicket(name, "vga");
      if (closed) return;
      const r = new RFB(screen, t.url, { shared: true });
      rfb = r;
      window.__vireoRfb = r;
      r.scaleViewport = true;
      r.resizeSession = false;
      r.background = "#111";
      r.addEventListener("connect", () => {
        status.textContent = "connected";
        status.className = "console-status ok";
      });
      r.addEventListener("disconnect", (e) => {
        const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
        status.textContent = clean ? "disconnected" : "connection lost";
        status.className = "console-status error";
      });
      r.addEventListener("clipboard", (e) => {
        clip.value = (e as CustomEvent<{ text: string }>).detail.text;
      });
    } catch (e) {
      status.textContent = e instanceof Error ? e.message : String(e);
      status.className = "console-status error";
    }
  };

  app.replaceChildren(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, `${name}: console`),
      h("a", { href: `#/instances/${enc}` }, "← Instance"),
    ),
    h(
      "div",
      { class: "toolbar" },
      status,
      h("button", { id: "ctrl-alt-del", onclick: () => rfb?.sendCtrlAltDel() }, "Ctrl-Alt-Del"),
      h("button", { id: "osk", onclick: () => kbd.focus() }, "Keyboard"),
      h("button", { id: "reconnect", onclick: () => void connect() }, "Reconnect"),
      h("a", { class: "button secondary", href: `#/instances/${enc}/serial` }, "Serial"),
    ),
    screen,
    kbd,
    h(
      "div",
      { class: "clipboard" },
      clip,
      h("button", { id: "clipboard-send", onclick: () => rfb?.clipboardPasteFrom(clip.value) }, "Send clipboard"),
    ),
  );
  void connect();
  return () => {
    closed = true;
    rfb?.disconnect();
    rfb = null;
    window.__vireoRfb = null;
  };
}
