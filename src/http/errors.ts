/** The one place where errors become HTTP responses (§2.1): typed errors map to their status, anything else is 500 without details. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { translateDbError } from "../data/db-errors.js";
import { CitadelError, RateLimitedError, UnavailableError } from "../errors.js";

export type ErrorLogger = (error: unknown) => void;

export function errorResponse(c: Context, thrown: unknown, log: ErrorLogger): Response {
  // a database error no layer below translated (a read, an auth query) gets the same meaning here
  const error = translateDbError(thrown) ?? thrown;
  if (error instanceof CitadelError) {
    if (error instanceof RateLimitedError || error instanceof UnavailableError)
      c.header("Retry-After", String(error.retryAfterSeconds));
    return c.json(
      { error: { code: error.code, message: error.message, ...error.details } },
      error.status as ContentfulStatusCode,
    );
  }
  log(error);
  return c.json({ error: { code: "internal", message: "internal error" } }, 500);
}
