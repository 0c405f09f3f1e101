/**
 * Who is on the other end of a request: the client address (for rate limits) and the origin the request
 * was sent to (for CSRF checks and Secure cookies). Proxy headers are believed only with `server.trust_proxy`.
 */
import type { Context } from "hono";
import type { Runtime } from "../runtime.js";

type RemoteAddress = Runtime["remoteAddress"];

const lastValue = (header: string | undefined) => header?.split(",").pop()?.trim() || undefined;
const firstValue = (header: string | undefined) => header?.split(",")[0]?.trim() || undefined;

/**
 * The client's address. Behind a trusted proxy it is the last X-Forwarded-For entry (the one that proxy
 * appended; earlier entries are whatever the client sent). Otherwise the socket's address, when the runtime
 * exposes it; a client can never choose its own rate-limit bucket.
 */
export function clientAddress(c: Context, trustProxy: boolean, remoteAddress: RemoteAddress): string {
  if (trustProxy) {
    const forwarded = lastValue(c.req.header("x-forwarded-for"));
    if (forwarded) return forwarded;
  }
  // a runtime that cannot tell (no socket): every such request shares one bucket
  return remoteAddress(c) ?? "unknown";
}

/** The origin this request was addressed to, e.g. `https://app.example.com`. */
export function serverOrigin(c: Context, trustProxy: boolean): string {
  const url = new URL(c.req.url);
  if (!trustProxy) return url.origin;
  const proto = firstValue(c.req.header("x-forwarded-proto"));
  const host = firstValue(c.req.header("x-forwarded-host")) ?? url.host;
  try {
    return new URL(`${proto === "http" || proto === "https" ? proto : url.protocol.slice(0, -1)}://${host}`).origin;
  } catch {
    return url.origin;
  }
}

export function isHttps(c: Context, trustProxy: boolean): boolean {
  return serverOrigin(c, trustProxy).startsWith("https:");
}

/** The origin a browser says the request came from: Origin, else the Referer's origin; undefined when neither. */
export function requestOrigin(c: Context): string | undefined {
  const origin = c.req.header("origin");
  if (origin) return origin;
  const referer = c.req.header("referer");
  if (!referer) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}
