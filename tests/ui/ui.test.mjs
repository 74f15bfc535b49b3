// Web UI tests: Debian's chromium (playwright-core) against a real vireod
// serving web/dist over HTTPS, with real guest-kit VMs.
//   node --test tests/ui/
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ADMIN_PASSWORD,
  Daemon,
  canvasInk,
  httpsRequest,
  launchBrowser,
  login,
  newPage,
  noHorizontalOverflow,
  pngInk,
  sleep,
  termText,
  typeUS,
  waitFor,
  wsUpgradeStatus,
} from "./lib.mjs";

const VM = "ui1"; // running from the start; shell on the VGA console
const VM2 = "ui2"; // started from the UI; shell on the serial console

describe("web UI", { timeout: 600000 }, () => {
  let d;
  let browser;
  let page; // logged in, 1920x1080

  before(async () => {
    d = new Daemon(); // assigned first so after() cleans up a failed start
    await d.start();
    await d.createVm(VM);
    await d.createVm(VM2, { start: false, cmdline: "console=tty0 console=ttyS0" });
    browser = await launchBrowser();
    await d.waitSerial(VM, "VIREO-GUEST-UP", 120000);
    page = await newPage(browser);
    await login(page, d);
  });

  after(async () => {
    await browser?.close();
    await d?.stop();
  });

  test("without a session: the UI shows the login page (and returns after login), the API answers 401", async () => {
    const p = await newPage(browser);
    await p.goto(`${d.url}/#/instances`);
    await p.waitForURL(/#\/login$/);
    await p.waitForSelector("#username");
    const r = await httpsRequest(d.port, "POST", `/1.0/instances/${VM}/console`, {
      body: { type: "vga" },
      headers: { "X-Vireo-Request": "1" },
    });
    assert.equal(r.status, 401);
    assert.equal(r.json.secret, undefined);
    assert.equal((await httpsRequest(d.port, "GET", "/1.0/instances")).status, 401);
    // The console URL `vireo console NAME --vga` prints: after login the
    // browser comes back to it.
    await p.goto(`${d.url}/#/instances/${VM}/console`);
    await p.waitForURL(/#\/login$/);
    await p.fill("#username", "admin");
    await p.fill("#password", ADMIN_PASSWORD);
    await p.click("#login-submit");
    await p.waitForURL(new RegExp(`#/instances/${VM}/console$`));
    await p.waitForSelector("#vnc-screen");
    await p.context().close();
  });

  test("login: a wrong password shows the API error, the right one opens the instances page", async () => {
    const p = await newPage(browser);
    await p.goto(`${d.url}/`);
    await p.waitForSelector("#username");
    await p.fill("#username", "admin");
    await p.fill("#password", "wrong-" + ADMIN_PASSWORD);
    await p.click("#login-submit");
    const err = await p.waitForSelector("#login-message .error");
    assert.ok((await err.textContent()).length > 0);
    assert.match(p.url(), /#\/login$/);
    assert.equal((await p.context().cookies()).length, 0);
    await login(p, d);
    await p.locator(`tr[data-instance="${VM}"]`).waitFor();
    const c = (await p.context().cookies()).find((x) => x.name === "vireo_session");
    assert.ok(c, "session cookie set");
    assert.equal(c.httpOnly, true);
    assert.equal(c.secure, true);
    await p.context().close();
  });

  test("instances page lists the VM as running and follows lifecycle events", async () => {
    await page.goto(`${d.url}/#/instances`);
    const row = page.locator(`tr[data-instance="${VM}"]`);
    await row.waitFor();
    assert.equal((await row.locator(".state").textContent()).trim(), "running");
    assert.match(await row.textContent(), /256 MiB/);
    assert.equal((await page.locator(`tr[data-instance="${VM2}"] .state`).textContent()).trim(), "stopped");
    // A VM created behind the UI's back shows up without a reload.
    await d.createVm("ui3", { start: false });
    await page.locator('tr[data-instance="ui3"]').waitFor({ timeout: 10000 });
    await d.wait(await d.api("DELETE", "/1.0/instances/ui3"));
    d.instances.delete("ui3");
    await page.locator('tr[data-instance="ui3"]').waitFor({ state: "detached", timeout: 10000 });
  });

  test("instance page shows the config; graphical console shows the guest's screen", async () => {
    await page.click(`tr[data-instance="${VM}"] a`);
    await page.waitForURL(new RegExp(`#/instances/${VM}$`));
    await page.waitForSelector("#instance-details dl");
    assert.match(await page.textContent("#instance-details"), /console=ttyS0 console=tty0/);
    assert.ok(await page.isVisible('button[data-action="stop"]'));
    await page.click("#open-console");
    await page.waitForURL(new RegExp(`#/instances/${VM}/console$`));
    await page.waitForFunction(() => document.querySelector("#console-status")?.textContent === "connected", null, {
      timeout: 20000,
    });
    const ink = await waitFor("guest output on the canvas", async () => {
      const s = await canvasInk(page);
      return s && s.ink > 0.005 ? s : null;
    });
    const png = await d.screenshot(VM, path.join(d.dir, "shot.png"));
    const ref = await pngInk(page, png);
    // Same framebuffer: same size, both show text, similar amount of ink.
    assert.equal(ink.width, ref.width);
    assert.equal(ink.height, ref.height);
    assert.ok(ref.ink > 0.005, `screenshot has ink (${ref.ink})`);
    assert.ok(Math.abs(ink.ink - ref.ink) < Math.max(0.05, ref.ink), `ink ${ink.ink} vs screenshot ${ref.ink}`);
    assert.ok(await page.evaluate(() => !!window.__vireoRfb));
  });

  test("keys typed into the console canvas reach the guest's shell", async () => {
    await page.click("#vnc-screen canvas");
    await page.keyboard.press("Enter");
    await typeUS(page, "echo UI-TYPED > /dev/ttyS0");
    await page.keyboard.press("Enter");
    await d.waitSerial(VM, "UI-TYPED", 20000);
  });

  test("reconnect takes a new single-use ticket", async () => {
    const tickets = [];
    const onResp = async (r) => {
      if (r.request().method() === "POST" && r.url().endsWith(`/1.0/instances/${VM}/console`))
        tickets.push((await r.json()).operation);
    };
    page.on("response", onResp);
    await page.click("#reconnect");
    await page.waitForFunction(() => document.querySelector("#console-status")?.textContent === "connected", null, {
      timeout: 20000,
    });
    await waitFor("ticket response", () => tickets.length === 1, 5000);
    page.off("response", onResp);
    await waitFor("canvas ink after reconnect", async () => ((await canvasInk(page))?.ink ?? 0) > 0.005);
  });

  test("console websocket: wrong and used secrets are refused; CSRF header required; bad requests 4xx", async () => {
    const cookie = await d.loginCookie();
    const post = (name, body, headers = { "X-Vireo-Request": "1" }) =>
      httpsRequest(d.port, "POST", `/1.0/instances/${name}/console`, { body, headers: { Cookie: cookie, ...headers } });
    assert.equal((await post(VM, { type: "vga" }, {})).status, 403, "no CSRF header");
    assert.equal((await post("nope", { type: "vga" })).status, 404);
    assert.equal((await post(VM2, { type: "vga" })).status, 409, "stopped VM");
    assert.equal((await post(VM, { type: "bogus" })).status, 400);
    const r = await post(VM, { type: "vga" });
    assert.equal(r.status, 202);
    const id = r.json.operation.split("/").pop();
    const secret = r.json.secret;
    assert.ok(secret && secret.length >= 16);
    const op = await httpsRequest(d.port, "GET", `/1.0/operations/${id}`, { headers: { Cookie: cookie } });
    assert.equal(op.status, 200);
    assert.ok(!op.text.includes(secret), "secret must not leak through GET operation");
    assert.equal(await wsUpgradeStatus(d.port, `/1.0/operations/${id}/websocket?secret=x${secret}`), 403);
    assert.equal(await wsUpgradeStatus(d.port, `/1.0/operations/${id}/websocket`), 403);
    assert.equal(await wsUpgradeStatus(d.port, `/1.0/operations/${id}/websocket?secret=${secret}`), 101);
    assert.equal(await wsUpgradeStatus(d.port, `/1.0/operations/${id}/websocket?secret=${secret}`), 403, "reused");
  });

  test("serial console (xterm.js): start from the UI, see the guest marker, type a command", async () => {
    await page.goto(`${d.url}/#/instances/${VM2}`);
    await page.click('button[data-action="start"]');
    await page.waitForFunction(() => /start: done/.test(document.querySelector("#op-status")?.textContent || ""));
    await page.click("#open-serial");
    await page.waitForFunction(() => document.querySelector("#serial-status")?.textContent === "connected", null, {
      timeout: 20000,
    });
    // The guest is still booting under our eyes; its marker comes over the socket.
    await d.waitSerial(VM2, "VIREO-GUEST-UP", 120000);
    await waitFor("VIREO-GUEST-UP in the terminal", async () => (await termText(page)).includes("VIREO-GUEST-UP"), 15000);
    await page.click("#serial-term");
    await page.keyboard.press("Enter");
    await page.keyboard.type("echo SERIAL-$((6*7))", { delay: 10 });
    await page.keyboard.press("Enter");
    await waitFor("command output in the terminal", async () => (await termText(page)).includes("SERIAL-42"), 20000);
  });

  test("instance actions: pause/resume with live state; a refused delete shows the API's message", async () => {
    // Independent of the serial test, which normally started it.
    if ((await d.api("GET", `/1.0/instances/${VM2}`)).json.metadata.state !== "running") await d.setState(VM2, "start");
    await page.goto(`${d.url}/#/instances/${VM2}`);
    await page.click('button[data-action="pause"]');
    await page.waitForSelector('button[data-action="resume"]', { timeout: 20000 });
    assert.equal((await d.api("GET", `/1.0/instances/${VM2}`)).json.metadata.state, "paused");
    await page.click('button[data-action="resume"]');
    await page.waitForSelector('button[data-action="pause"]', { timeout: 20000 });
    assert.equal((await d.api("GET", `/1.0/instances/${VM2}`)).json.metadata.state, "running");
    // Deleting a running VM without force is refused; the UI shows why.
    page.once("dialog", (dlg) => dlg.accept());
    await page.click('button[data-action="delete"]');
    const err = await page.waitForSelector("#op-status.error", { timeout: 20000 });
    const refused = await d.api("DELETE", `/1.0/instances/${VM2}`);
    const apiMsg = refused.json.error || "";
    assert.ok(apiMsg.length > 0, `API refuses too (${refused.status})`);
    assert.ok((await err.textContent()).includes(apiMsg), `UI shows "${apiMsg}"`);
    assert.equal((await d.api("GET", `/1.0/instances/${VM2}`)).status, 200);
  });

  test("images: upload with progress, list, launch", async () => {
    const file = path.join(d.dir, "tiny.qcow2");
    const q = spawnSync("qemu-img", ["create", "-q", "-f", "qcow2", file, "16M"]);
    assert.equal(q.status, 0);
    await page.goto(`${d.url}/#/images`);
    await page.setInputFiles("#upload-file", file);
    await page.fill("#upload-name", "tiny");
    await page.click('#upload-form button[type="submit"]');
    await page.waitForFunction(() => /Imported tiny/.test(document.querySelector("#upload-status")?.textContent || ""), null, {
      timeout: 60000,
    });
    assert.equal(await page.$eval("#upload-progress", (e) => e.value), 100);
    const row = page.locator('tr[data-image="tiny"]');
    await row.waitFor();
    assert.match(await row.textContent(), /qcow2/);
    await row.locator("button.launch").click();
    await page.fill("#launch-name", "fromimg");
    await page.uncheck("#launch-start");
    d.instances.add("fromimg");
    await page.click('#launch-form button[type="submit"]');
    await page.waitForURL(/#\/instances\/fromimg$/, { timeout: 60000 });
    const inst = await d.api("GET", "/1.0/instances/fromimg");
    assert.equal(inst.status, 200);
    assert.equal(inst.json.metadata.state, "stopped");
  });

  test("host page shows CPU, memory and the accelerator", async () => {
    await page.goto(`${d.url}/#/host`);
    await page.waitForSelector("#host-resources dl");
    const text = await page.textContent("#host-resources");
    const res = (await d.api("GET", "/1.0/resources")).json.metadata;
    assert.match(text, /accelerator/i);
    assert.ok(text.includes(String(res.accelerator?.name ?? res.accelerator ?? "")));
    await page.waitForSelector("#host-pools table");
    assert.match(await page.textContent("#host-pools"), /default/);
  });

  test("phone 390x844: no horizontal scroll, tables become cards, the console fits", async () => {
    const p = await newPage(browser, { width: 390, height: 844 });
    await login(p, d);
    await p.locator(`tr[data-instance="${VM}"]`).waitFor();
    assert.equal(await p.isVisible("#instances-table thead"), false, "cards, no table header");
    assert.ok(await noHorizontalOverflow(p), "instances page");
    for (const hash of [`#/instances/${VM}`, "#/images", "#/host", `#/instances/${VM}/serial`]) {
      await p.goto(`${d.url}/${hash}`);
      await p.waitForTimeout(800);
      assert.ok(await noHorizontalOverflow(p), hash);
    }
    await p.goto(`${d.url}/#/instances/${VM}/console`);
    const s = await waitFor("canvas on the phone", async () => {
      const v = await canvasInk(p);
      return v && v.ink > 0.005 ? v : null;
    });
    assert.ok(s.shownWidth <= 390 && s.shownWidth > 250, `canvas shown ${s.shownWidth}px wide`);
    assert.ok(await noHorizontalOverflow(p), "console page");
    // The on-screen keyboard button focuses the hidden input (raises the phone keyboard).
    await p.click("#osk");
    assert.equal(await p.evaluate(() => document.activeElement?.id), "osk-input");
    await p.keyboard.type("echo OSK-TYPED > /dev/ttyS0");
    await p.keyboard.press("Enter");
    await d.waitSerial(VM, "OSK-TYPED", 20000);
    await p.context().close();
  });

  test("desktop 1920x1080: table layout, console fits the window", async () => {
    await page.goto(`${d.url}/#/instances`);
    await page.locator(`tr[data-instance="${VM}"]`).waitFor();
    assert.ok(await page.isVisible("#instances-table thead"));
    assert.ok(await noHorizontalOverflow(page));
    await page.goto(`${d.url}/#/instances/${VM}/console`);
    const s = await waitFor("canvas", async () => {
      const v = await canvasInk(page);
      return v && v.ink > 0.005 ? v : null;
    });
    assert.ok(s.shownWidth <= 1920 && s.shownHeight <= 1080, `shown ${s.shownWidth}x${s.shownHeight}`);
    assert.ok(s.shownWidth >= s.width, "desktop shows the screen at least 1:1");
  });

  test("Ctrl-Alt-Del button reboots the guest", async () => {
    const before = (await d.serialLog(VM)).split("VIREO-GUEST-UP").length;
    await page.waitForFunction(() => document.querySelector("#console-status")?.textContent === "connected");
    await page.click("#ctrl-alt-del");
    await waitFor("a second boot", async () => (await d.serialLog(VM)).split("VIREO-GUEST-UP").length > before, 120000, 500);
  });

  test("logout ends the session", async () => {
    await page.goto(`${d.url}/#/instances`);
    await page.click("#logout");
    await page.waitForURL(/#\/login$/);
    await page.goto(`${d.url}/#/host`);
    await page.waitForURL(/#\/login$/);
  });
});

describe("console tickets expire", { timeout: 300000 }, () => {
  let d;
  before(async () => {
    d = new Daemon(["--console-ticket-ttl-ms", "300"]);
    await d.start();
    await d.createVm("exp1");
  });
  after(async () => d?.stop());

  test("a secret used after its TTL is refused; a fresh one works", async () => {
    const cookie = await d.loginCookie();
    const ticket = async () => {
      const r = await httpsRequest(d.port, "POST", "/1.0/instances/exp1/console", {
        body: { type: "serial" },
        headers: { Cookie: cookie, "X-Vireo-Request": "1" },
      });
      assert.equal(r.status, 202);
      return `/1.0/operations/${r.json.operation.split("/").pop()}/websocket?secret=${r.json.secret}`;
    };
    const old = await ticket();
    await sleep(800);
    assert.equal(await wsUpgradeStatus(d.port, old), 403);
    assert.equal(await wsUpgradeStatus(d.port, await ticket()), 101);
  });
});
