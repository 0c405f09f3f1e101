/**
 * CSRF defence for cookie sessions (§3.7): a state-changing request authenticated by the cookie alone must
 * come from this server's own origin or one listed in `server.cors.origin`. A browser always sends Origin on
 * cross-site POSTs, so a missing Origin (and Referer) is refused too. A `*` in the CORS list opens CORS for
 * credential-less requests only and never admits a cookie-authenticated write.
 */
import type { Context } from "hono";
import { CitadelError } from "../errors.js";
import { requestOrigin, serverOrigin } from "./client.js";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function isStateChanging(method: string): boolean {
  return !SAFE_METHODS.has(method.toUpperCase());
}

/** Throws 403 when a cookie-authenticated write comes from an origin that is neither ours nor allowed. */
export function checkCsrf(c: Context, allowedOrigins: readonly string[], trustProxy: boolean): void {
  if (!isStateChanging(c.req.method)) return;
  const origin = requestOrigin(c);
  if (origin && (origin === serverOrigin(c, trustProxy) || allowedOrigins.includes(origin))) return;
  throw new CitadelError(
    "forbidden",
    403,
    origin
      ? `cross-site request refused: origin ${origin} may not use the session cookie (send the token as a Bearer header, or add the origin to config.server.cors.origin)`
      : "cross-site request refused: a cookie-authenticated write needs an Origin or Referer header",
  );
}
