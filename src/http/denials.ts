/**
 * What a 401 or 403 answer was (§7.1, §7.5), decided once for the audit trail and the metrics: a refusal of the
 * role, a key or a token that does not verify, no credential at all, or a wrong current password. A failed
 * login is not a denial: the login route records it as `auth.login_failed`.
 */
import type { Context } from "hono";
import { type AuditAction, type AuditActor, actorOf } from "../audit/index.js";
import { INVALID_KEY } from "../auth/index.js";
import { CitadelError, UnauthorizedError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import type { DenialReason } from "../metrics/monitor.js";

export const REGISTER_PATH = "/api/auth/password/register";
const PASSWORD_CHANGE_PATH = "/api/auth/password/change";
const NO_CREDENTIAL = new UnauthorizedError().message;

/** The audit action of each kind of denial, so entries and log lines read alike. */
export const ACTION_OF: Record<DenialReason, AuditAction> = {
  access_denied: "access.denied",
  key_rejected: "key.rejected",
  token_rejected: "auth.token_rejected",
  authentication_required: "auth.token_rejected",
  password_rejected: "auth.token_rejected",
};

/**
 * Whether a 401 is the login route's refusal of an email and password: only when the route itself ran and
 * said so; a key refused before it (`api_keys.require`) is a denial as on any other route.
 */
export function isFailedLogin(error: CitadelError, c: Context): boolean {
  return error.status === 401 && c.get("loginFailed") === true;
}

/** The kind of denial an error answers with; undefined when it is none (another status, a failed login). */
export function denialOf(error: unknown, c: Context): DenialReason | undefined {
  if (!(error instanceof CitadelError) || (error.status !== 401 && error.status !== 403)) return undefined;
  if (error.status === 403) return "access_denied";
  if (isFailedLogin(error, c)) return undefined;
  if (error.message === INVALID_KEY) return "key_rejected";
  if (c.req.path === PASSWORD_CHANGE_PATH && c.get("authenticated")) return "password_rejected";
  return error.message === NO_CREDENTIAL ? "authentication_required" : "token_rejected";
}

/**
 * Who was refused, as entries, labels and log lines name it: a 403 is the guard's, which applied the default role
 * to a caller without one of its own (§4.1); a 401 came before any role did.
 */
export function refusedActor(c: Context, error: CitadelError, defaultRole: string | undefined): AuditActor {
  const subject: Subject | undefined = c.get("subject");
  return actorOf(subject, error.status === 403 ? defaultRole : undefined);
}
