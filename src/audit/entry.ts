/**
 * An audit entry (§7.1) and its place in the hash chain (§7.3): each entry's SHA-256 covers its content and
 * the previous entry's hash, so changing, removing or reordering any entry breaks every hash after it.
 */
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
  /**
   * The tenant the entry belongs to (§7.4: a tenant's reads of the trail see its own): a mutation's is the
   * row's; unset, the actor's.
   */
  account_id?: number | null;
}

/** Records entries in a transaction of their own; a module given none records nothing (the trail is off). */
export type AuditRecorder = (input: AuditInput) => Promise<void>;

export interface AuditEntry {
  id: number;
  at: string;
  action: AuditAction;
  entity: string | null;
  row_id: number | null;
  /** the tenant the entry belongs to: the row's for a mutation of a tenant's row, else the actor's */
  account_id: number | null;
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

/** JSON with object keys sorted at every level: one text per value, whatever order it was built in. */
export function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  if (Array.isArray(value)) {
    let out = "";
    for (let i = 0; i < value.length; i++) out += `${i === 0 ? "" : ","}${canonical(value[i])}`;
    return `[${out}]`;
  }
  let out = "";
  for (const key of Object.keys(value).sort()) {
    const field = (value as Record<string, unknown>)[key];
    if (field !== undefined) out += `${out === "" ? "" : ","}${JSON.stringify(key)}:${canonical(field)}`;
  }
  return `{${out}}`;
}

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

interface NodeCrypto {
  createHash(algorithm: "sha256"): { update(text: string, encoding: "utf8"): { digest(encoding: "hex"): string } };
}

/**
 * The runtime's `node:crypto` where it lends it without an import (Node ≥ 20.16, Bun, workerd's nodejs_compat):
 * an import would tie the core to Node, and edge bundles leave `node:*` to the platform.
 */
function builtinCrypto(): NodeCrypto | undefined {
  try {
    const process = (globalThis as { process?: { getBuiltinModule?(id: string): unknown } }).process;
    const crypto = process?.getBuiltinModule?.("node:crypto") as Partial<NodeCrypto> | undefined;
    return typeof crypto?.createHash === "function" ? (crypto as NodeCrypto) : undefined;
  } catch {
    return undefined;
  }
}
const nodeCrypto = builtinCrypto();

/** Hex SHA-256 of the UTF-8 text through Web Crypto, which every runtime has. */
export async function webSha256Hex(text: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

/**
 * Hex SHA-256 of the UTF-8 text: synchronous where the runtime has `node:crypto`, Web Crypto elsewhere (the
 * same digest). On Node, Web Crypto's digest costs ~35 µs of CPU and a trip through the thread pool, which
 * the mutation's transaction waits for; `createHash` takes ~3 µs.
 */
export function sha256Hex(text: string): string | Promise<string> {
  return nodeCrypto ? nodeCrypto.createHash("sha256").update(text, "utf8").digest("hex") : webSha256Hex(text);
}

type Hashed = Exclude<keyof AuditEntry, "prev_hash" | "hash" | "account_id">;
/**
 * The fields an entry's hash always covers, every one but `prev_hash`, `hash` and `account_id`, sorted as
 * `canonical` sorts keys. `account_id` is covered only when it is not the actor's (hashedText).
 */
const HASHED = Object.keys({
  id: 0,
  at: 0,
  action: 0,
  entity: 0,
  row_id: 0,
  actor: 0,
  request_id: 0,
  changes: 0,
  reason: 0,
  policy_hash: 0,
} satisfies Record<Hashed, 0>).sort() as Hashed[];

/**
 * What an entry's hash covers: the previous hash, a newline, and the entry's other fields as canonical JSON.
 * `actor` and `changes` may come already canonical (the trail stores them so): not made twice. The entry's
 * tenant is covered where it is not the actor's: entries written before it could differ had them equal and
 * keep their hashes, and a tenant changed by hand either way (moving the entry into another tenant's view)
 * changes the text.
 */
export function hashedText(
  entry: Omit<AuditEntry, "hash">,
  actor = canonical(entry.actor),
  changes = canonical(entry.changes),
): string {
  const tenant = entry.account_id ?? null;
  // "account_id" sorts before every other field: where canonical JSON would put it
  let out = tenant === (entry.actor.account_id ?? null) ? "" : `"account_id":${canonical(tenant)}`;
  for (const field of HASHED) {
    const value = entry[field];
    if (value === undefined) continue;
    const text = field === "actor" ? actor : field === "changes" ? changes : canonical(value);
    out += `${out === "" ? "" : ","}"${field}":${text}`;
  }
  return `${entry.prev_hash}\n{${out}}`;
}

/** The entry's hash: SHA-256 over the previous hash and everything the entry says. */
export async function entryHash(entry: Omit<AuditEntry, "hash">): Promise<string> {
  return sha256Hex(hashedText(entry));
}
