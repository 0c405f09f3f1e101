/** The one place where errors become HTTP responses (§2.1): typed errors map to their status, anything else is 500 without details. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { translateDbError } from "../data/db-errors.js";
import { IntegrityError } from "../data/keyring.js";
import { CitadelError, RateLimitedError, UnavailableError } from "../errors.js";

export type ErrorLogger = (error: unknown) => void;

/** The `{ error }` envelope of a typed error. */
export function errorBody(error: CitadelError) {
  return { error: { code: error.code, message: error.message, ...error.details } };
}

/**
 * The answer to a thrown error. `log` takes what is unexpected (a 500, with its stack); `logLine` one line for
 * an expected condition the operator must hear of.
 */
export function errorResponse(
  c: Context,
  thrown: unknown,
  log: ErrorLogger,
  logLine: (line: string) => void,
): Response {
  // a database error no layer below translated (a read, an auth query) gets the same meaning here
  const error = translateDbError(thrown) ?? thrown;
  // a stored value failed its integrity check (§10): the caller gets a 409 without the reason, the operator one
  // line with it (which entity, field and row; never the value or a key), not a stack: the server works
  if (error instanceof IntegrityError) logLine(`${error.message}: ${error.reason}`);
  if (error instanceof CitadelError) {
    if (error instanceof RateLimitedError || error instanceof UnavailableError)
      c.header("Retry-After", String(error.retryAfterSeconds));
    return c.json(errorBody(error), error.status as ContentfulStatusCode);
  }
  log(error);
  return c.json({ error: { code: "internal", message: "internal error" } }, 500);
}
