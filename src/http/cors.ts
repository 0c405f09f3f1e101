/**
 * CORS (§3.7): closed unless `server.cors.origin` lists origins. Listed origins get credentialed CORS;
 * a `*` gets CORS without credentials, never both.
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";

// `apikey` carries publishable keys from pages (§5.3)
const ALLOW_HEADERS = ["Content-Type", "Authorization", "apikey"];
const ALLOW_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
const MAX_AGE_SECONDS = 600;

/** The CORS middleware for a list of origins, or undefined when CORS stays closed. */
export function corsMiddleware(origins: readonly string[]): MiddlewareHandler | undefined {
  if (origins.length === 0) return undefined;
  if (origins.includes("*"))
    return cors({ origin: "*", credentials: false, allowHeaders: ALLOW_HEADERS, allowMethods: ALLOW_METHODS });
  const allowed = new Set(origins);
  const handler = cors({
    origin: (origin) => (allowed.has(origin) ? origin : null),
    credentials: true,
    allowHeaders: ALLOW_HEADERS,
    allowMethods: ALLOW_METHODS,
    maxAge: MAX_AGE_SECONDS,
  });
  // Other origins get no CORS headers at all (their preflight finds no route).
  return async (c, next) => {
    c.header("Vary", "Origin", { append: true });
    if (allowed.has(c.req.header("origin") ?? "")) return handler(c, next);
    await next();
  };
}
