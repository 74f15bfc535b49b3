// Entry point: a small hash router (#/login, #/instances, #/instances/NAME,
// #/instances/NAME/console, #/instances/NAME/serial, #/images, #/host).
import "./style.css";
import { request, session, setUnauthenticatedHandler, type Session } from "./api";
import { h } from "./dom";
import { renderLogin } from "./pages/login";
import { renderInstances } from "./pages/instances";
import { renderInstance } from "./pages/instance";
import { renderConsole } from "./pages/console";
import { renderSerial } from "./pages/serial";
import { renderImages } from "./pages/images";
import { renderHost } from "./pages/host";

export type Cleanup = (() => void) | void;

const app = document.getElementById("app")!;
const topbar = document.getElementById("topbar")!;
let cleanup: Cleanup;
let current: Session | null = null;

function go(hash: string): void {
  if (location.hash === hash) route();
  else location.hash = hash;
}
export { go };

// Where to go after logging in: the page that needed a session (for example
// the console URL printed by `vireo console NAME --vga`).
function toLogin(): void {
  if (!location.hash.startsWith("#/login")) sessionStorage.setItem("vireo.returnTo", location.hash);
  go("#/login");
}

setUnauthenticatedHandler(() => {
  current = null;
  toLogin();
});

function renderTopbar(): void {
  const link = (href: string, text: string) =>
    h("a", { href, class: location.hash.startsWith(href) ? "active" : "" }, text);
  topbar.replaceChildren(
    h("a", { href: "#/instances", class: "brand" }, "Vireo"),
    current
      ? h(
          "nav",
          {},
          link("#/instances", "Instances"),
          link("#/images", "Images"),
          link("#/host", "Host"),
          h("span", { class: "user" }, current.username),
          h(
            "button",
            {
              id: "logout",
              class: "secondary",
              onclick: async () => {
                try {
                  await request("POST", "/1.0/auth/logout", undefined, { quiet401: true });
                } catch {
                  /* logged out anyway */
                }
                current = null;
                sessionStorage.removeItem("vireo.returnTo");
                go("#/login");
              },
            },
            "Log out",
          ),
        )
      : "",
  );
}

async function route(): Promise<void> {
  if (cleanup) cleanup();
  cleanup = undefined;
  const hash = location.hash || "#/instances";
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "login") {
    current = null;
    renderTopbar();
    cleanup = renderLogin(app, async (s) => {
      current = s;
      const back = sessionStorage.getItem("vireo.returnTo");
      sessionStorage.removeItem("vireo.returnTo");
      go(back && back !== "#/login" ? back : "#/instances");
    });
    return;
  }
  if (!current) {
    current = await session().catch(() => null);
    if (!current) {
      toLogin();
      return;
    }
  }
  renderTopbar();
  app.replaceChildren();
  const [page, name, sub] = parts;
  if (page === "instances" && name && sub === "console") cleanup = renderConsole(app, name);
  else if (page === "instances" && name && sub === "serial") cleanup = renderSerial(app, name);
  else if (page === "instances" && name) cleanup = renderInstance(app, name);
  else if (page === "images") cleanup = renderImages(app);
  else if (page === "host") cleanup = renderHost(app);
  else cleanup = renderInstances(app);
}

window.addEventListener("hashchange", () => void route());
void route();
