/**
 * A Server-Sent Events client for tests of the change feed (§8): reads a `text/event-stream` response with
 * fetch, parses its events and lets a test wait for the ones it expects. A test proves that something was
 * NOT sent by waiting for a later event that was: events arrive in outbox order.
 */
// biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON
type Json = any;

export interface FeedEvent {
  event: string;
  id: string | undefined;
  data: Json;
}

export interface FeedStream {
  status: number;
  /** the error body when the stream was refused */
  body: Json;
  /** every event received so far, `ready` and comments left out */
  events: FeedEvent[];
  /** the data events (create, update, delete) received so far */
  changes(): FeedEvent[];
  /** how many comment lines (`: keep-alive`) were received so far */
  comments(): number;
  /** wait until an event satisfies `match` (15 s at most: a generous bound, never a measure) */
  until(match: (event: FeedEvent) => boolean, what?: string): Promise<FeedEvent>;
  /** resolves once the server ended the stream */
  ended: Promise<void>;
  isEnded(): boolean;
  close(): void;
}

const WAIT_MS = 15_000;

/** Open `path` as an event stream; resolves once the server said `ready` (or refused it). */
export async function openFeed(
  baseUrl: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<FeedStream> {
  const abort = new AbortController();
  const res = await fetch(baseUrl + path, {
    headers: { accept: "text/event-stream", ...headers },
    signal: abort.signal,
  });
  const events: FeedEvent[] = [];
  const waiters = new Set<() => void>();
  let ended = false;
  let comments = 0;
  const notify = () => {
    for (const w of waiters) w();
  };
  if (!res.headers.get("content-type")?.startsWith("text/event-stream")) {
    const text = await res.text();
    let body: Json;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return {
      status: res.status,
      body,
      events,
      changes: () => [],
      comments: () => 0,
      until: () => Promise.reject(new Error(`the stream was refused: ${res.status} ${text}`)),
      ended: Promise.resolve(),
      isEnded: () => true,
      close: () => {},
    };
  }
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: FeedEvent = { event: "message", id: undefined, data: undefined };
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comments++;
            if (line.startsWith(":") || line === "") continue;
            const colon = line.indexOf(":");
            const field = line.slice(0, colon);
            const value = line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") event.event = value;
            else if (field === "id") event.id = value;
            else if (field === "data") data.push(value);
          }
          if (data.length === 0) continue;
          event.data = JSON.parse(data.join("\n"));
          if (event.event === "ready") ready();
          else events.push(event);
          notify();
        }
      }
    } catch {
      // aborted by close()
    } finally {
      ended = true;
      ready();
      notify();
    }
  })();
  await isReady;
  return {
    status: res.status,
    body: undefined,
    events,
    changes: () => events.filter((e) => ["create", "update", "delete"].includes(e.event)),
    comments: () => comments,
    until(match, what = "the expected event") {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (found) return done(() => resolve(found));
          if (ended) return done(() => reject(new Error(`the stream ended before ${what}: ${JSON.stringify(events)}`)));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`no ${what} within ${WAIT_MS} ms: ${JSON.stringify(events)}`))),
          WAIT_MS,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    ended: reading,
    isEnded: () => ended,
    close: () => abort.abort(),
  };
}
