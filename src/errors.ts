/** Typed errors; `http/errors.ts` maps each one to a status code and the `{ error }` envelope in one place. */

export type ErrorCode =
  | "bad_request"
  | "validation_failed"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "payload_too_large"
  | "rate_limited"
  | "unavailable"
  | "internal";

/** A count as messages write it: `10,000`. */
export const grouped = (x: number) => x.toLocaleString("en-US");

export class CitadelError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends CitadelError {
  constructor(message: string, details?: Record<string, unknown>) {
    super("bad_request", 400, message, details);
  }
}

/** The first few problems of `fields` in a line ("title: is required; body: expected a string"), for logs and the CLI. */
function described(fields: Record<string, string[]>): string {
  const all = Object.entries(fields).map(([field, problems]) => `${field}: ${problems.join(", ")}`);
  const shown = all.slice(0, 3).join("; ");
  return all.length > 3
    ? `${shown}; and ${grouped(all.length - 3)} more`
    : shown || "the request body does not match the schema";
}

/** Per-field problems with a write: `{ fields: { title: ["is required"] } }`. */
export class ValidationError extends CitadelError {
  constructor(
    readonly fields: Record<string, string[]>,
    message = described(fields),
  ) {
    super("validation_failed", 400, message, { fields });
  }
}

/** One field's problem, in the same shape as the data API's validation errors (`fields`). */
export const fieldError = (field: string, problem: string) =>
  new ValidationError({ [field]: [problem] }, `${field}: ${problem}`);

export class UnauthorizedError extends CitadelError {
  constructor(message = "authentication required") {
    super("unauthorized", 401, message);
  }
}

export class ForbiddenError extends CitadelError {
  constructor(permission: string, entity?: string, message?: string) {
    super("forbidden", 403, message ?? `permission "${permission}" is not granted`, {
      permission,
      ...(entity ? { entity } : {}),
    });
  }
}

export class NotFoundError extends CitadelError {
  constructor(message = "not found") {
    super("not_found", 404, message);
  }
}

export class ConflictError extends CitadelError {
  constructor(message: string) {
    super("conflict", 409, message);
  }
}

export class PayloadTooLargeError extends CitadelError {
  constructor(limit: number) {
    super("payload_too_large", 413, `the request body exceeds ${limit} bytes`);
  }
}

export class RateLimitedError extends CitadelError {
  constructor(
    readonly retryAfterSeconds: number,
    message = "too many attempts, try again later",
  ) {
    super("rate_limited", 429, message);
  }
}

/** The database is saturated (every connection busy, the server refusing more): try again shortly (503). */
export class UnavailableError extends CitadelError {
  constructor(readonly retryAfterSeconds = 1) {
    super("unavailable", 503, "the database is busy, try again shortly");
  }
}

/** A problem with the user's config, found at startup; `path` names where, e.g. `config.auth.roles.user`. */
export class ConfigError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = "ConfigError";
  }
}
