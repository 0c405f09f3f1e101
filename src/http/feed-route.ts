/**
 * `GET /api/data/:entity/changes` (§8.2): the change feed as Server-Sent Events. The caller's scoped accessor
 * decides what it may watch (403 without read permission, 400 for a where it may not write), the hub decides
 * each event when it is sent. Every event's `id` is its outbox sequence number: a client that reconnects
 * with `Last-Event-ID` (EventSource does) resumes after it, without gaps or duplicates.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { DataEngine } from "../data/engine.js";
import { BadRequestError } from "../errors.js";
import type { EventIds, FeedHub, FeedMessage } from "../feed/index.js";
import type { Subject } from "../guard/access.js";
import type { QueryLimits } from "../query/options.js";
import type { DataEnv } from "./data-routes.js";
import { queryParams, singleParam } from "./query-string.js";

export interface FeedRouteOptions {
  hub: FeedHub;
  engine: DataEngine;
  limits: QueryLimits;
  heartbeatMs: number;
}

const PARAMS = new Set(["where", "last_event_id"]);

/** The event to resume after: the Last-Event-ID header (EventSource's reconnection) or `?last_event_id=`. */
function lastEventId(c: Context, params: Map<string, string[]>, ids: EventIds): string | undefined {
  const value = c.req.header("last-event-id") ?? singleParam(params, "last_event_id");
  if (value === undefined || value === "") return undefined;
  if (!ids.wellFormed(value))
    throw new BadRequestError("last_event_id: expected the id of an event this feed sent", { path: "last_event_id" });
  return value;
}

/**
 * Who holds the streams a per-caller limit counts: the user, else a secret key, else the client's address
 * (with the publishable key it came with: every visitor of a site shares that key).
 */
function callerOf(subject: Subject): string {
  if (typeof subject.user?.id === "number") return `user:${subject.user.id}`;
  if (subject.key?.kind === "secret") return `key:${subject.key.id}`;
  return `ip:${subject.request?.ip ?? ""} key:${subject.key?.id ?? ""}`;
}

/** A message as SSE text; its data is one line of JSON (JSON.stringify escapes every line break). */
const eventText = ({ event, id, data }: FeedMessage) =>
  `event: ${event}\n${id === undefined ? "" : `id: ${id}\n`}data: ${data}\n\n`;

export function changesRoute({ hub, engine, limits, heartbeatMs }: FeedRouteOptions) {
  return async (c: Context<DataEnv>) => {
    const params = queryParams(c.req.url);
    for (const name of params.keys())
      if (!PARAMS.has(name))
        throw new BadRequestError(`${name}: the change feed takes where and last_event_id only`, { path: name });
    const watch = engine.as(c.get("access"), limits).watch(c.req.param("entity") ?? "", singleParam(params, "where"));
    const sub = await hub.subscribe({
      watch,
      caller: callerOf(c.get("subject")),
      lastEventId: lastEventId(c, params, hub.ids),
      credentials: c.get("credentials"),
    });
    const start = await hub.ids.seal(sub.cursor);
    c.header("X-Accel-Buffering", "no");
    const response = streamSSE(c, async (stream) => {
      stream.onAbort(() => sub.end("closed"));
      // a dropped subscriber's stream ends now, whatever it had not read yet: it resumes from its last id
      sub.onEnded(() => {
        if (sub.ended === "slow") stream.abort();
      });
      // with an id: a client that loses the stream before any event resumes from here, not from the then head
      await stream.write(eventText({ event: "ready", id: start, data: JSON.stringify({ resumes_after: start }) }));
      for (;;) {
        const message = await sub.next(heartbeatMs);
        if (message === undefined || stream.aborted) break;
        if (message === "idle") await stream.write(": keep-alive\n\n");
        else await stream.write([message, ...sub.takeAll()].map(eventText).join(""));
      }
      sub.end("closed");
    });
    // the connection ends with the stream (EventSource opens a new one to resume): a closing server waits for none
    response.headers.set("Connection", "close");
    return response;
  };
}
