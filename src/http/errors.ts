/** The one place where errors become HTTP responses (§2.1): typed errors map to their status, anything else is 500 without details. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { CitadelError, RateLimitedError, UnavailableError } from "../errors.js";

export type ErrorLogger = (error: unknown) => void;

export function errorResponse(c: Context, error: unknown, log: ErrorLogger): Response {
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
