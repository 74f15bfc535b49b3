// Login form: POST /1.0/auth/login sets the session cookie.
import { request, type Session } from "../api";
import { errorBox, h } from "../dom";

export function renderLogin(app: HTMLElement, onLogin: (s: Session) => void): void {
  const user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const pass = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const msg = h("div", { id: "login-message" });
  const form = h(
    "form",
    { class: "card login" },
    h("h1", {}, "Sign in to Vireo"),
    h("label", {}, "User name", user),
    h("label", {}, "Password", pass),
    h("button", { type: "submit", id: "login-submit" }, "Sign in"),
    msg,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.replaceChildren();
    try {
      const env = await request(
        "POST",
        "/1.0/auth/login",
        { username: user.value, password: pass.value },
        { quiet401: true },
      );
      // The login answer is either the sync envelope or the bare user object.
      const s = ((env.metadata as Session | undefined) ?? (env as unknown as Session)) || null;
      onLogin({ username: s?.username || user.value, role: s?.role || "" });
    } catch (e) {
      msg.replaceChildren(errorBox(e instanceof Error ? e.message : String(e)));
    }
  });
  app.replaceChildren(form);
  user.focus();
}
