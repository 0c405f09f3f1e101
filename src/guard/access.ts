/** What the data engine asks the guard: may this subject do this to this entity, and within which rows/fields. */
import type { Scope } from "../query/options.js";

export type { Scope };

export const DATA_PERMISSIONS = [
  "data.entity.read",
  "data.entity.create",
  "data.entity.update",
  "data.entity.delete",
] as const;
export type DataPermission = (typeof DATA_PERMISSIONS)[number];

/** Who asks: a role (or none) and the claims of a verified token. */
export interface Subject {
  role: string | undefined;
  /** verified token claims (`id`, `email`, `role`, …); undefined for anonymous callers */
  user?: Record<string, unknown> & { id?: number };
  /** a secret API key or a server-side call: bypasses the guard */
  trusted?: boolean;
}

/** Per-request view of the guard. */
export interface Access {
  readonly subject: Subject;
  /** The scope of a granted permission; throws ForbiddenError when it is not granted. */
  require(permission: DataPermission, entity: string, id?: number): Scope;
  /** The scope of a permission, or undefined when it is not granted (used to omit relations). */
  find(permission: DataPermission, entity: string, id?: number): Scope | undefined;
}
