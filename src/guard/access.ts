/** What the data engine asks the guard: may this subject do this to this entity, and within which rows/fields. */
import { ForbiddenError } from "../errors.js";
import type { Scope } from "../query/options.js";
import type { Guard } from "./guard.js";

export type { Scope };

export const DATA_PERMISSIONS = [
  "data.entity.read",
  "data.entity.create",
  "data.entity.update",
  "data.entity.delete",
] as const;
export type DataPermission = (typeof DATA_PERMISSIONS)[number];

/** The permissions that write values (and so have field rules to write by, and owners to pin). */
export const WRITE_PERMISSIONS: ReadonlySet<string> = new Set(["data.entity.create", "data.entity.update"]);

/** Who asks: a role (or none) and the claims of a verified token. */
export interface Subject {
  role: string | undefined;
  /** verified token claims (`id`, `email`, `role`, …); undefined for anonymous callers */
  user?: Record<string, unknown> & { id?: number };
  /** a secret API key or a server-side call: bypasses the guard */
  trusted?: boolean;
  /** the API key the request came with (§5), beside or instead of a user token */
  key?: { id: number; kind: "publishable" | "secret"; tenant: number | null };
  /** the user's tenant (§6.1): the account of a local user, the `account_id` claim of an external token */
  tenant?: number;
  /** the request it came with: its id (the X-Request-Id answered) and the client's address, for the audit */
  request?: { id: string; ip: string };
}

/** Per-request view of the guard. */
export interface Access {
  readonly subject: Subject;
  /** The scope of a granted permission; throws ForbiddenError when it is not granted. */
  require(permission: DataPermission, entity: string, id?: number): Scope;
  /** The scope of a permission, or undefined when it is not granted (used to omit relations). */
  find(permission: DataPermission, entity: string, id?: number): Scope | undefined;
  /**
   * The role the guard applies to this subject (the default role for a caller without a token), for refusals
   * to name (§4.16); absent means the subject's own role.
   */
  readonly role?: string;
}

/** How refusals name the caller (§4.16): `role "member"`, never a claim or a policy's path. */
export function callerOf(access: Access): string {
  if (access.subject.trusted) return "a trusted caller";
  const role = access.role ?? access.subject.role;
  return role === undefined ? "a caller without a role (no token, no default role)" : `role "${role}"`;
}

/** The verb of a data permission, as refusals say it: `data.entity.update` → `update`. */
export const verbOf = (permission: DataPermission): string => permission.slice("data.entity.".length);

/**
 * "role X lacks permission P on E" (§4.16): the refusal of a permission the caller does not hold here. A deny
 * policy reads the same (it takes the permission away); the policy's config path is not named.
 */
export function lacksPermission(access: Access, permission: DataPermission, entity: string): ForbiddenError {
  return new ForbiddenError(permission, entity, `${callerOf(access)} lacks permission ${permission} on ${entity}`);
}

/** The guard's access for one subject, naming the role it applied in every refusal (§4.16). */
export function guardedAccess(guard: Guard, subject: Subject): Access {
  const { find } = guard.access(subject);
  const access: Access = {
    subject,
    role: subject.role ?? guard.defaultRole,
    find,
    require(permission, entity, id) {
      const scope = find(permission, entity, id);
      if (!scope) throw lacksPermission(access, permission, entity);
      return scope;
    },
  };
  return access;
}
