/**
 * CSRF defence for cookie sessions (§3.7): a state-changing request authenticated by the cookie alone must
 * come from this server's own origin or one listed in `server.cors.origin`. A browser always sends Origin on
 * cross-site POSTs, so a missing Origin (and Referer) is refused too. A `*` in the CORS list opens CORS for
 * credential-less requests only and never admits a cookie-authenticated write.
 * Login CSRF: routes that set the session cookie without a credential refuse what a browser says comes from
 * elsewhere, so that a page cannot log a visitor into the attacker's account.
 */
import type { Context } from "hono";
import { CitadelError } from "../errors.js";
import { requestOrigin, serverOrigin } from "./client.js";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** `Sec-Fetch-Site` values that name another origin (a sibling subdomain is `same-site`, and still not ours). */
const OTHER_SITES = new Set(["cross-site", "same-site"]);

export function isStateChanging(method: string): boolean {
  return !SAFE_METHODS.has(method.toUpperCase());
}

/**
 * Whether `origin` is this server's own (its public origin behind a trusted proxy) or listed in
 * `server.cors.origin`. A `*` there never counts: it opens CORS without credentials only.
 */
export function isAllowedOrigin(
  c: Context,
  origin: string,
  allowedOrigins: readonly string[],
  trustProxy: boolean,
): boolean {
  return origin === serverOrigin(c, trustProxy) || (origin !== "*" && allowedOrigins.includes(origin));
}

/** Whether the browser says the request comes from our own origin or an allowed one (an image or a link does not). */
export function comesFromAllowedOrigin(c: Context, allowedOrigins: readonly string[], trustProxy: boolean): boolean {
  if (c.req.header("sec-fetch-site") === "same-origin") return true;
  const origin = requestOrigin(c);
  return origin !== undefined && isAllowedOrigin(c, origin, allowedOrigins, trustProxy);
}

/** Throws 403 when a cookie-authenticated write comes from an origin that is neither ours nor allowed. */
export function checkCsrf(c: Context, allowedOrigins: readonly string[], trustProxy: boolean): void {
  if (!isStateChanging(c.req.method)) return;
  const origin = requestOrigin(c);
  if (origin && isAllowedOrigin(c, origin, allowedOrigins, trustProxy)) return;
  throw new CitadelError(
    "forbidden",
    403,
    origin
      ? `cross-site request refused: origin ${origin} may not use the session cookie (send the token as a Bearer header, or add the origin to config.server.cors.origin)`
      : "cross-site request refused: a cookie-authenticated write needs an Origin or Referer header",
  );
}

/**
 * Throws 403 when a browser says a request that would start a session (login, register) comes from elsewhere:
 * an Origin (else Referer) that is neither ours nor allowed, or, with neither, `Sec-Fetch-Site` naming another
 * site. A client that is no browser (curl, a server) sends none of these and passes.
 */
export function refuseCrossSite(c: Context, allowedOrigins: readonly string[], trustProxy: boolean): void {
  const origin = requestOrigin(c);
  if (origin !== undefined) {
    if (isAllowedOrigin(c, origin, allowedOrigins, trustProxy)) return;
  } else if (!OTHER_SITES.has(c.req.header("sec-fetch-site") ?? "")) return;
  throw new CitadelError(
    "forbidden",
    403,
    `cross-site request refused: a page on ${origin ?? "another site"} may not log in or register here (add its origin to config.server.cors.origin to allow it)`,
  );
}
