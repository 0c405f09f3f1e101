/**
 * What the HTTP layer records in the audit trail (§7.1): auth events where the auth routes see them succeed or
 * fail, key management, and every denial (401, 403) where errors become responses. Recording never changes
 * the answer: an entry that cannot be written is logged as an unexpected error.
 */
import type { Context } from "hono";
import { type AuditActor, type AuditInput, type AuditTrail, actorOf } from "../audit/index.js";
import { CitadelError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import { ACTION_OF, denialOf, refusedActor } from "./denials.js";

export type Noted = Omit<AuditInput, "actor" | "request_id"> & { actor?: AuditActor };

export interface HttpAudit {
  /**
   * Record an event of this request, as its subject unless `actor` says who. An auth event's caller has the role
   * it came with: no role applied to it (a denial names the default role, refusedActor).
   */
  note(c: Context, input: Noted): Promise<void>;
  /** Record a 401 or 403 the request ends with (not a failed login: the login route records that). */
  denial(c: Context, error: unknown): Promise<void>;
  /** A value as the trail shows it (an email under `audit.redact` is "[redacted]"). */
  shown(entity: string, field: string, value: unknown): unknown;
}

const subjectOf = (c: Context): Subject | undefined => c.get("subject");

export function httpAudit(
  trail: AuditTrail | undefined,
  log: (error: unknown) => void,
  defaultRole: string | undefined,
): HttpAudit | undefined {
  if (!trail) return undefined;
  const note = async (c: Context, { actor, ...input }: Noted) => {
    const subject = subjectOf(c);
    try {
      await trail.record({ ...input, actor: actor ?? actorOf(subject), request_id: subject?.request?.id ?? null });
    } catch (error) {
      log(error);
    }
  };
  return {
    note,
    shown: (entity, field, value) => trail.shown(entity, field, value),
    async denial(c, error) {
      const denial = denialOf(error, c);
      if (!denial || !(error instanceof CitadelError)) return;
      const action = ACTION_OF[denial];
      const entity = typeof error.details?.entity === "string" ? error.details.entity : null;
      const permission = typeof error.details?.permission === "string" ? ` (${error.details.permission})` : "";
      const reason = `${c.req.method} ${c.req.path}: ${error.message}${permission}`;
      await note(c, { action, entity, reason, actor: refusedActor(c, error, defaultRole) });
    },
  };
}
