// Helpers for the web UI tests: a real vireod (HTTPS + unix socket, temp data
// dir), guest-kit VMs created through the unix-socket API, Debian's chromium
// driven by playwright-core, and raw HTTPS/WebSocket probes.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const buildDir = process.env.VIREO_BUILD_DIR || path.join(root, "build");
export const webRoot = path.join(root, "web", "dist");
export const ADMIN_PASSWORD = "ui-test-" + randomBytes(6).toString("hex");

// playwright-core is a devDependency of web/ (installed by scripts/build-web).
const require = createRequire(path.join(root, "web", "package.json"));
const { chromium } = require("playwright-core");

// The consoles kit (vmlinuz prints to the VGA text console) if built, else
// the lead's kit. The PVH vmlinux would give a blank VGA screen.
export function guestKit() {
  const candidates = [
    process.env.VIREO_GUEST_KIT,
    path.join(os.homedir(), ".cache/vireo/guest-kit-consoles"),
    path.join(os.homedir(), ".cache/vireo/guest-kit"),
  ].filter(Boolean);
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, "vmlinuz")) && fs.existsSync(path.join(dir, "initrd.img"))) return dir;
  }
  throw new Error(`no guest kit with vmlinuz+initrd.img in ${candidates.join(", ")}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, fn, timeoutMs = 30000, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (e.fatal) throw e;
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await sleep(everyMs);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

// One HTTP request over the daemon's unix socket (local root = admin).
export function unixRequest(socketPath, method, urlPath, body, { raw = false } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        socketPath,
        method,
        path: urlPath,
        headers: data ? { "Content-Type": "application/json", "Content-Length": data.length } : {},
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const buf = Buffer.concat(chunks);
          if (raw) return resolve({ status: res.statusCode, headers: res.headers, body: buf });
          let json;
          try {
            json = JSON.parse(buf.toString());
          } catch {
            json = { raw: buf.toString() };
          }
          resolve({ status: res.statusCode, headers: res.headers, json });
        });
      },
    );
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

// HTTPS request to the daemon (self-signed certificate).
export function httpsRequest(port, method, urlPath, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const h = { ...headers };
    if (data) Object.assign(h, { "Content-Type": "application/json", "Content-Length": data.length });
    const req = https.request(
      { host: "127.0.0.1", port, method, path: urlPath, headers: h, rejectUnauthorized: false },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = { raw: text };
          }
          resolve({ status: res.statusCode, headers: res.headers, json, text });
        });
      },
    );
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

// Tries a WebSocket upgrade; resolves with the HTTP status (101 on success).
export function wsUpgradeStatus(port, urlPath) {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1",
      port,
      path: urlPath,
      rejectUnauthorized: false,
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("error", reject);
    req.end();
  });
}

export class Daemon {
  constructor(extraArgs = []) {
    this.extraArgs = extraArgs;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "vireo-ui-"));
    this.socket = path.join(this.dir, "vireo.sock");
    this.log = path.join(this.dir, "vireod.log");
    this.instances = new Set();
  }

  async start() {
    const vireod = path.join(buildDir, "vireod");
    const init = spawnSync(vireod, ["--data-dir", this.dir, "--socket", this.socket, "--init-admin"], {
      env: { ...process.env, VIREO_ADMIN_PASSWORD: ADMIN_PASSWORD },
      input: "",
      encoding: "utf8",
    });
    if (init.status !== 0) throw new Error(`vireod --init-admin failed: ${init.stderr}${init.stdout}`);
    this.port = await freePort();
    const out = fs.openSync(this.log, "a");
    this.proc = spawn(
      vireod,
      [
        "--data-dir", this.dir,
        "--socket", this.socket,
        "--https", `127.0.0.1:${this.port}`,
        "--web-root", webRoot,
        "--default-network", "none",
        "--log-level", "debug",
        "--stop-timeout", "5",
        ...this.extraArgs,
      ],
      { stdio: ["ignore", out, out] },
    );
    fs.closeSync(out);
    this.exited = false;
    this.proc.on("exit", () => (this.exited = true));
    await waitFor(
      "vireod to answer on HTTPS",
      async () => {
        if (this.exited) throw Object.assign(new Error(`vireod exited:\n${this.logText()}`), { fatal: true });
        const r = await httpsRequest(this.port, "GET", "/1.0");
        return r.status === 200 && fs.existsSync(this.socket);
      },
      20000,
    );
    this.url = `https://127.0.0.1:${this.port}`;
    return this;
  }

  logText() {
    try {
      return fs.readFileSync(this.log, "utf8").slice(-4000);
    } catch {
      return "";
    }
  }

  api(method, urlPath, body) {
    return unixRequest(this.socket, method, urlPath, body);
  }

  async wait(env) {
    if (env.status >= 400) throw new Error(`API ${env.status}: ${env.json.error}`);
    if (env.json.type !== "async") return env.json.metadata;
    const id = env.json.operation.split("/").pop();
    const r = await this.api("GET", `/1.0/operations/${id}/wait?timeout=120`);
    const op = r.json.metadata;
    if (op.status !== "Success") throw new Error(`operation ${op.description} ${op.status}: ${op.err}`);
    return op;
  }

  // A guest-kit VM whose kernel prints to the VGA screen and the serial port.
  async createVm(name, { start = true, cmdline } = {}) {
    const kit = guestKit();
    await this.wait(
      await this.api("POST", "/1.0/instances", {
        name,
        cpus: 1,
        memory: "256M",
        kernel: path.join(kit, "vmlinuz"),
        initrd: path.join(kit, "initrd.img"),
        cmdline: cmdline || process.env.VIREO_UI_CMDLINE || "console=ttyS0 console=tty0",
        restart_policy: "never",
      }),
    );
    this.instances.add(name);
    if (start) await this.setState(name, "start");
  }

  async setState(name, action) {
    await this.wait(await this.api("PUT", `/1.0/instances/${name}/state`, { action, force: true, timeout: 5 }));
  }

  async serialLog(name) {
    const r = await unixRequest(this.socket, "GET", `/1.0/instances/${name}/console`, undefined, { raw: true });
    return r.body.toString("latin1");
  }

  async waitSerial(name, text, timeoutMs = 60000) {
    return waitFor(`"${text}" in ${name}'s serial log`, async () => (await this.serialLog(name)).includes(text), timeoutMs, 300);
  }

  async screenshot(name, file) {
    const cli = spawnSync(path.join(buildDir, "vireo"), ["--socket", this.socket, "screenshot", name, file], {
      encoding: "utf8",
    });
    if (cli.status !== 0) throw new Error(`vireo screenshot failed: ${cli.stderr}`);
    return fs.readFileSync(file);
  }

  // Logs in over HTTPS; returns the session cookie ("vireo_session=...").
  async loginCookie(username = "admin", password = ADMIN_PASSWORD) {
    const r = await httpsRequest(this.port, "POST", "/1.0/auth/login", { body: { username, password } });
    if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`);
    const c = [].concat(r.headers["set-cookie"] || []).find((x) => x.startsWith("vireo_session="));
    return c.split(";")[0];
  }

  async stop() {
    for (const name of this.instances) {
      try {
        await this.wait(await this.api("DELETE", `/1.0/instances/${name}?force=1`));
      } catch {
        /* already gone */
      }
    }
    if (this.proc && !this.exited) {
      this.proc.kill("SIGTERM");
      await waitFor("vireod to exit", () => this.exited, 20000).catch(() => this.proc.kill("SIGKILL"));
    }
    if (!process.env.VIREO_UI_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.VIREO_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox"],
  });
}

export async function newPage(browser, viewport = { width: 1920, height: 1080 }) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  return page;
}

export async function login(page, daemon, password = ADMIN_PASSWORD) {
  await page.goto(`${daemon.url}/#/login`);
  await page.fill("#username", "admin");
  await page.fill("#password", password);
  await page.click("#login-submit");
  await page.waitForURL(/#\/instances$/);
}

// Ink statistics of the noVNC canvas: size and the share of pixels that
// differ from the dominant (background) colour.
export function canvasInk(page) {
  return page.evaluate(() => {
    const c = document.querySelector("#vnc-screen canvas");
    if (!c || !c.width || !c.height) return null;
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    return inkOf(d, c.width, c.height);
    function inkOf(d, w, h) {
      const counts = new Map();
      for (let i = 0; i < d.length; i += 4) {
        const k = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
        counts.set(k, (counts.get(k) || 0) + 1);
      }
      let bg = 0, bgN = 0;
      for (const [k, n] of counts) if (n > bgN) (bg = k), (bgN = n);
      const rect = c.getBoundingClientRect();
      return { width: w, height: h, ink: (w * h - bgN) / (w * h), bg, shownWidth: rect.width, shownHeight: rect.height };
    }
  });
}

// The same statistics for a PNG (decoded by the browser).
export function pngInk(page, png) {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const counts = new Map();
    for (let i = 0; i < d.length; i += 4) {
      const k = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
      counts.set(k, (counts.get(k) || 0) + 1);
    }
    let bgN = 0;
    for (const n of counts.values()) if (n > bgN) bgN = n;
    return { width: c.width, height: c.height, ink: (c.width * c.height - bgN) / (c.width * c.height) };
  }, png.toString("base64"));
}

// Text currently in the xterm.js buffer (whole scrollback).
export function termText(page) {
  return page.evaluate(() => {
    const t = window.__vireoTerm;
    if (!t) return "";
    const b = t.buffer.active;
    const lines = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? "");
    return lines.join("\n");
  });
}

export async function noHorizontalOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
}

// Types into the VNC canvas like a person on a US keyboard: noVNC sends QEMU
// scancodes from KeyboardEvent.code, so Shift must really be held for
// capitals and symbols (page.keyboard.type would send "u" for "U").
const SHIFT_CODES = {
  ">": "Period", "<": "Comma", "$": "Digit4", "(": "Digit9", ")": "Digit0", "*": "Digit8",
  "|": "Backslash", "_": "Minus", "+": "Equal", ":": "Semicolon", '"': "Quote", "!": "Digit1",
};
const PLAIN_CODES = { " ": "Space", "-": "Minus", ".": "Period", "/": "Slash", "=": "Equal", ",": "Comma", ";": "Semicolon" };
export async function typeUS(page, text) {
  for (const ch of text) {
    let key;
    if (ch >= "A" && ch <= "Z") key = `Shift+Key${ch}`;
    else if (ch >= "a" && ch <= "z") key = `Key${ch.toUpperCase()}`;
    else if (ch >= "0" && ch <= "9") key = `Digit${ch}`;
    else if (SHIFT_CODES[ch]) key = `Shift+${SHIFT_CODES[ch]}`;
    else if (PLAIN_CODES[ch]) key = PLAIN_CODES[ch];
    else throw new Error(`typeUS: no key for ${JSON.stringify(ch)}`);
    await page.keyboard.press(key, { delay: 15 });
  }
}
