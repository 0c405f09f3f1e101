/**
 * An audit entry (§7.1) and its place in the hash chain (§7.3): each entry's SHA-256 covers its content and
 * the previous entry's hash, so changing, removing or reordering any entry breaks every hash after it.
 */
import { sha256 } from "../auth/key-material.js";

export const AUDIT_ACTIONS = [
  "auth.login",
  "auth.login_failed",
  "auth.register",
  "auth.logout",
  "auth.password_change",
  "auth.role_change",
  "auth.token_rejected",
  "key.create",
  "key.rotate",
  "key.revoke",
  "key.rejected",
  "access.denied",
  "data.create",
  "data.update",
  "data.delete",
  "data.read",
  "audit.prune",
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Who did it: the user, the role applied, the key, the tenant and the client address. */
export interface AuditActor {
  user_id: number | null;
  role: string | null;
  key_id: number | null;
  account_id: number | null;
  ip: string | null;
}

/** `{ field: [before, after] }` of the fields a mutation changed. */
export type Changes = Record<string, [unknown, unknown]>;

/** What a feature records; the trail adds the id, time, policy hash and chain. */
export interface AuditInput {
  action: AuditAction;
  entity?: string | null;
  row_id?: number | null;
  actor: AuditActor;
  request_id?: string | null;
  changes?: Changes | null;
  reason?: string | null;
}

/** Records entries in a transaction of their own; a module given none records nothing (the trail is off). */
export type AuditRecorder = (input: AuditInput) => Promise<void>;

export interface AuditEntry {
  id: number;
  at: string;
  action: AuditAction;
  entity: string | null;
  row_id: number | null;
  actor: AuditActor;
  request_id: string | null;
  changes: Changes | null;
  reason: string | null;
  policy_hash: string;
  prev_hash: string;
  hash: string;
}

/** The previous hash of the first entry ever written. */
export const GENESIS = "0".repeat(64);

export const NO_ACTOR: AuditActor = { user_id: null, role: null, key_id: null, account_id: null, ip: null };

const SYSTEM_FIELDS = new Set(["id", "created_at", "updated_at"]);

/** A row's fields as the changes of its creation (`[null, value]`) or of its deletion (`[value, null]`). */
export function rowChanges(row: Record<string, unknown>, as: "created" | "deleted"): Changes {
  const out: Changes = {};
  for (const [field, value] of Object.entries(row))
    if (!SYSTEM_FIELDS.has(field)) out[field] = as === "created" ? [null, value] : [value, null];
  return out;
}

/** JSON with object keys sorted at every level: one text per value, whatever order it was built in. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value ?? null);
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** The entry's hash: SHA-256 over the previous hash and everything the entry says. */
export async function entryHash(entry: Omit<AuditEntry, "hash">): Promise<string> {
  const { prev_hash, ...content } = entry;
  return hex(await sha256(`${prev_hash}\n${canonical(content)}`));
}
