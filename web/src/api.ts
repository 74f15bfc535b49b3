// Thin client for the Vireo REST API: envelopes, CSRF header, 401 handling,
// operation waiting and console tickets.

export class ApiError extends Error {
  constructor(
    message: string,
    public status: number,
    public code: string,
  ) {
    super(message);
  }
}

export interface Operation {
  id: string;
  description: string;
  status: string;
  status_code: number;
  err: string;
  code?: string;
  metadata: Record<string, unknown> | null;
}

interface Envelope {
  type: "sync" | "async" | "error";
  metadata?: unknown;
  operation?: string;
  error?: string;
  error_code?: number;
  code?: string;
  secret?: string;
}

// Called on any 401 so the router can send the user to the login page.
let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(f: () => void): void {
  onUnauthenticated = f;
}

async function parse(resp: Response): Promise<Envelope> {
  const text = await resp.text();
  try {
    return JSON.parse(text) as Envelope;
  } catch {
    return { type: "error", error: text || resp.statusText, error_code: resp.status };
  }
}

export async function request(
  method: string,
  path: string,
  body?: unknown,
  opts: { quiet401?: boolean } = {},
): Promise<Envelope> {
  const headers: Record<string, string> = {};
  // Cookie sessions need this on every state-changing request (CSRF guard).
  if (method !== "GET" && method !== "HEAD") headers["X-Vireo-Request"] = "1";
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const resp = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  const env = await parse(resp);
  if (!resp.ok || env.type === "error") {
    if (resp.status === 401 && !opts.quiet401) onUnauthenticated();
    throw new ApiError(env.error || `HTTP ${resp.status}`, resp.status, env.code || "");
  }
  return env;
}

export async function get<T>(path: string): Promise<T> {
  return (await request("GET", path)).metadata as T;
}

export function operationId(env: Envelope): string {
  const url = env.operation || "";
  return url.substring(url.lastIndexOf("/") + 1);
}

// Waits for an operation, reporting progress by polling while it runs. Throws
// with the API's message when the operation fails.
export async function waitOperation(
  id: string,
  onProgress?: (text: string) => void,
): Promise<Operation> {
  for (;;) {
    const op = await get<Operation>(`/1.0/operations/${id}/wait?timeout=1`);
    if (op.status === "Failure") throw new ApiError(op.err || "operation failed", op.status_code, op.code || "");
    if (op.status === "Success") return op;
    if (onProgress) onProgress(progressText(op));
  }
}

export function progressText(op: Operation): string {
  const p = (op.metadata || {})["progress"] as
    | { stage?: string; done?: number; total?: number; percent?: number }
    | string
    | undefined;
  if (!p) return `${op.description}…`;
  if (typeof p === "string") return `${op.description}: ${p}`;
  let pct = p.percent;
  if (pct === undefined && p.total) pct = Math.floor(((p.done || 0) * 100) / p.total);
  return `${op.description}${p.stage ? ` (${p.stage})` : ""}${pct !== undefined ? `: ${pct}%` : ""}`;
}

// Runs an async request and waits for its operation.
export async function runAsync(
  method: string,
  path: string,
  body?: unknown,
  onProgress?: (text: string) => void,
): Promise<Operation> {
  const env = await request(method, path, body);
  if (env.type !== "async") return env.metadata as Operation;
  return waitOperation(operationId(env), onProgress);
}

export interface ConsoleTicket {
  url: string;
  operation: string;
}

// Gets a single-use console ticket and builds the websocket URL for it.
export async function consoleTicket(name: string, type: "vga" | "serial"): Promise<ConsoleTicket> {
  const env = await request("POST", `/1.0/instances/${encodeURIComponent(name)}/console`, { type });
  const id = operationId(env);
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${proto}//${location.host}/1.0/operations/${id}/websocket?secret=${encodeURIComponent(env.secret || "")}`;
  return { url, operation: id };
}

export interface Session {
  username: string;
  role: string;
}

export async function session(): Promise<Session | null> {
  try {
    return (await request("GET", "/1.0/auth/session", undefined, { quiet401: true })).metadata as Session;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

export function formatBytes(n: number | undefined | null): string {
  if (n === undefined || n === null || isNaN(Number(n))) return "-";
  let v = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v % 1 === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
