// Subscribes to the /1.0/events WebSocket; reconnects with a backoff while
// the page that asked for it is shown. Returns an unsubscribe function.

export interface VireoEvent {
  type: string;
  timestamp: string;
  metadata: Record<string, unknown>;
}

export function subscribeEvents(onEvent: (e: VireoEvent) => void): () => void {
  let ws: WebSocket | null = null;
  let closed = false;
  let delay = 500;
  let timer: number | undefined;
  const connect = () => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/1.0/events`);
    ws.onopen = () => (delay = 500);
    ws.onmessage = (m) => {
      try {
        onEvent(JSON.parse(String(m.data)) as VireoEvent);
      } catch {
        /* not JSON: ignore */
      }
    };
    ws.onclose = () => {
      if (closed) return;
      timer = window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  connect();
  return () => {
    closed = true;
    if (timer) clearTimeout(timer);
    ws?.close();
  };
}
