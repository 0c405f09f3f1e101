/**
 * The audit trail (§7.1–§7.4): mutations recorded in their own transaction (a listener of the data engine's
 * events), auth events and denials in one of their own, each with the actor, the request and the hash of the
 * policy config in force; redacted where the config or the schema says so.
 */
import { sha256 } from "../auth/key-material.js";
import { nearestKey } from "../config/messages.js";
import type { ValidatedConfig } from "../config/schema.js";
import type { Row } from "../data/codec.js";
import type { DataEvents, MutationEvent, ReadEvent } from "../data/events.js";
import type { Models } from "../data/models.js";
import type { Db } from "../db/connection.js";
import { retryBusy } from "../db/dialect-driver.js";
import { ConfigError } from "../errors.js";
import type { Subject } from "../guard/access.js";
import { type AuditActor, type AuditInput, type Changes, canonical } from "./entry.js";
import { AUDIT_TABLE, appendEntries, installAudit, pruneBefore, type Verification, verifyChain } from "./store.js";

export type { AuditAction, AuditActor, AuditEntry, AuditInput, AuditRecorder } from "./entry.js";
export { NO_ACTOR } from "./entry.js";
export { AUDIT_TABLE } from "./store.js";

export const REDACTED = "[redacted]";
const SYSTEM = new Set(["id", "created_at", "updated_at"]);
/** A where's keys whose value is more conditions on the same rows (a to-many relation's quantifiers too). */
const COMBINATORS = new Set(["$and", "$or", "$not", "$some", "$none", "$every"]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * Who a subject is, as an entry records it: never a token, a key or a claim beyond these. Its role is the one
 * the guard applied: the default role (§4.1) for a caller without one of its own, unless the caller is trusted.
 */
export function actorOf(subject: Subject | undefined, defaultRole?: string): AuditActor {
  return {
    user_id: typeof subject?.user?.id === "number" ? subject.user.id : null,
    role: (subject && !subject.trusted ? (subject.role ?? defaultRole) : subject?.role) ?? null,
    key_id: subject?.key?.id ?? null,
    account_id: subject?.tenant ?? subject?.key?.tenant ?? null,
    ip: subject?.request?.ip ?? null,
  };
}

/**
 * `audit.redact` names fields of the schema: a misspelt one would leave the value it meant recorded as it is
 * (§1.8). Checked at startup, audit on or off.
 */
export function checkRedacted(redact: readonly string[], models: Models): void {
  redact.forEach((name, i) => {
    const [entity = "", field = ""] = name.split(".");
    const path = `config.audit.redact[${i}]`;
    const model = models.get(entity);
    if (!model) throw new ConfigError(path, `unknown entity "${entity}"${hint(entity, [...models.keys()])}`);
    const fields = [...model.entity.fields.keys()];
    if (!model.entity.fields.has(field))
      throw new ConfigError(path, `"${entity}" has no field "${field}"${hint(field, fields)}`);
  });
}

/** Each entity's field rules (`config.field_rules`), by entity; undefined when no entity has any. */
function fieldRulesOf(config: ValidatedConfig): Record<string, unknown> | undefined {
  const rules = Object.entries(config.data.entities).flatMap(([name, entity]) =>
    entity.config?.field_rules ? [[name, entity.config.field_rules] as const] : [],
  );
  return rules.length === 0 ? undefined : Object.fromEntries(rules);
}

const hint = (name: string, known: readonly string[]) => {
  const near = nearestKey(name, known);
  return near ? ` (did you mean \`${near}\`?)` : "";
};

export class AuditTrail {
  private constructor(
    private readonly db: Db,
    private readonly models: Models,
    private readonly redacted: ReadonlySet<string>,
    readonly policyHash: string,
    private readonly retentionDays: number | undefined,
    private readonly defaultRole: string | undefined,
    /** the tenant entity (§6), when tenancy is on: its rows are each their own tenant's */
    private readonly tenantEntity: string | undefined,
  ) {}

  /**
   * Install the tables and hash the policy config: the roles, the guard switch, keys' roles, tenancy and the
   * entities' field rules (§9.4: who may read or write a field), only those of the schema.
   */
  static async open(
    db: Db,
    config: ValidatedConfig,
    models: Models,
    defaultRole: string | undefined,
  ): Promise<AuditTrail> {
    await installAudit(db);
    const policy = {
      roles: config.auth.roles,
      guard: config.auth.guard,
      api_keys: {
        publishable_role: config.auth.api_keys.publishable_role,
        secret_role: config.auth.api_keys.secret_role,
      },
      tenancy: config.tenancy,
      // absent without any, so an app without field rules keeps the hash it had before they were covered
      field_rules: fieldRulesOf(config),
    };
    const hash = hex(await sha256(canonical(policy)));
    const tenantEntity = config.tenancy.enabled ? config.tenancy.entity : undefined;
    return new AuditTrail(
      db,
      models,
      new Set(config.audit.redact),
      hash,
      config.audit.retention_days,
      defaultRole,
      tenantEntity,
    );
  }

  /** A subject as this trail's entries record it (actorOf, with the guard's default role). */
  actor(subject: Subject | undefined): AuditActor {
    return actorOf(subject, this.defaultRole);
  }

  /**
   * A value as the trail records it: hidden and encrypted fields and those in `audit.redact` are "[redacted]",
   * null included (that a user has no password hash is as much the field's secret as the hash).
   */
  shown(entity: string, field: string, value: unknown): unknown {
    const compiled = this.models.get(entity)?.entity.fields.get(field);
    const hidden = compiled?.hidden === true || compiled?.encrypted !== undefined;
    return hidden || this.redacted.has(`${entity}.${field}`) ? REDACTED : (value ?? null);
  }

  private redact({ entity, changes }: AuditInput): Changes {
    const out: Changes = {};
    for (const [field, [was, is]] of Object.entries(changes ?? {}))
      out[field] = entity ? [this.shown(entity, field, was), this.shown(entity, field, is)] : [was, is];
    return out;
  }

  /** The fields a mutation changed, `[before, after]`, redacted; a create or delete lists every field. */
  private changes(event: MutationEvent): Changes {
    const before: Row = event.before ?? {};
    const after: Row = event.after ?? {};
    const out: Changes = {};
    // the side of a create or delete without a row is null for every field: it tells nothing, so it is not redacted
    const shown = (image: Row | null, field: string, value: unknown) =>
      image ? this.shown(event.entity, field, value) : null;
    for (const field of new Set([...Object.keys(before), ...Object.keys(after)])) {
      // a blind index column (§10.3) is no field: its value changes with the encrypted one it indexes
      if (SYSTEM.has(field) || this.models.get(event.entity)?.entity.fields.get(field)?.indexOf) continue;
      const was = before[field] ?? null;
      const is = after[field] ?? null;
      if (event.action === "update" && canonical(was) === canonical(is)) continue;
      out[field] = [shown(event.before, field, was), shown(event.after, field, is)];
    }
    return out;
  }

  private readonly appendedListeners: ((count: number) => void)[] = [];
  /** entries a mutation's transaction wrote, told once it commits */
  private readonly pending = new WeakMap<MutationEvent[], number>();

  /** Hear how many entries were appended once they are committed (metrics). */
  onAppended(listener: (count: number) => void): void {
    this.appendedListeners.push(listener);
  }

  private appended(count: number): void {
    for (const listener of this.appendedListeners) listener(count);
  }

  /** Follow the data engine: mutations in their own transaction, reads too when `audit.reads` says so. */
  attach(events: DataEvents, reads: boolean): void {
    events.onMutation(this.mutations);
    events.onCommit((committed) => this.appended(this.pending.get(committed) ?? 0));
    if (reads) events.onRead(this.reads);
  }

  /**
   * The tenant a mutation's entry belongs to (§6, §7.4): a tenant-scoped row's (after the write, else before
   * it), a tenant's own row's id; the actor's for a row of no tenant. A superadmin's write to one tenant's
   * row is that tenant's to read in the trail, not the account the superadmin happens to belong to.
   */
  private tenantOf(event: MutationEvent, actor: AuditActor): number | null {
    if (event.entity === this.tenantEntity) return event.id;
    const field = this.models.get(event.entity)?.entity.tenantField;
    if (field === undefined) return actor.account_id;
    const tenant = (event.after ?? event.before)?.[field];
    return tenant === null || tenant === undefined ? null : Number(tenant);
  }

  /** The data engine's in-transaction listener: one entry per row, in the mutation's transaction (§7.2). */
  readonly mutations = async (trx: Db, events: MutationEvent[], subject: Subject): Promise<void> => {
    const actor = this.actor(subject);
    const request_id = subject.request?.id ?? null;
    const inputs: AuditInput[] = [];
    for (const event of events) {
      const changes = this.changes(event);
      const account_id = this.tenantOf(event, actor);
      inputs.push({
        action: `data.${event.action}`,
        entity: event.entity,
        row_id: event.id,
        account_id,
        actor,
        request_id,
        changes,
      });
      // a role changed through the data API is a role change as much as one made by the CLI (§7.1)
      if (event.entity === "users" && event.action === "update" && "role" in changes)
        inputs.push({
          action: "auth.role_change",
          entity: "users",
          row_id: event.id,
          account_id,
          actor,
          request_id,
          changes: { role: changes.role! },
        });
    }
    await appendEntries(trx, inputs, this.policyHash);
    this.pending.set(events, inputs.length);
  };

  /**
   * A caller's where as the trail keeps it: the values it compares a hidden, encrypted or redacted field with
   * are "[redacted]" (`{ email: "bob@x.com" }` names a user as much as a row would), on whichever entity the
   * field is: a relation path (`"owner.email"`, `{ owner: { email } }`, `{ tags: { $some: … } }`) is followed
   * to its target, `$exists` to the entity it names. A key that resolves to no field is redacted whole (it
   * cannot happen to a where the read parsed, and a value kept in clear because a name was not understood
   * would be the leak this is for). It was parsed before the read ran, so a query string's where is JSON.
   */
  private redactWhere(entity: string, where: unknown): unknown {
    if (typeof where !== "string") return this.conditions(entity, where);
    try {
      return this.conditions(entity, JSON.parse(where));
    } catch {
      return "(not JSON)";
    }
  }

  /** An object of conditions on `entity`'s rows; an undefined entity is one not understood (all redacted). */
  private conditions(entity: string | undefined, where: unknown): unknown {
    if (!isObject(where)) return this.compared(undefined, undefined, where);
    return Object.fromEntries(Object.entries(where).map(([key, value]) => [key, this.condition(entity, key, value)]));
  }

  private condition(entity: string | undefined, key: string, value: unknown): unknown {
    if (COMBINATORS.has(key))
      return Array.isArray(value) ? value.map((v) => this.conditions(entity, v)) : this.conditions(entity, value);
    if (key === "$exists") {
      if (!isObject(value)) return this.compared(undefined, undefined, value);
      const target = typeof value.entity === "string" && this.models.has(value.entity) ? value.entity : undefined;
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [
          k,
          k === "entity" && typeof v === "string" ? v : k === "where" ? this.conditions(target, v) : REDACTED,
        ]),
      );
    }
    const model = entity === undefined ? undefined : this.models.get(entity);
    if (model?.entity.fields.has(key)) return this.compared(entity, key, value);
    const dot = key.indexOf(".");
    const relation = model?.entity.relations.get(dot > 0 ? key.slice(0, dot) : key);
    if (!relation) return this.compared(undefined, undefined, value);
    // `"owner.email": v` is `owner: { email: v }`; a relation's own value is conditions on its target's rows
    return dot > 0
      ? this.condition(relation.target, key.slice(dot + 1), value)
      : this.conditions(relation.target, value);
  }

  /** The operand(s) a field is compared with, operators kept; without a known field, every value is redacted. */
  private compared(entity: string | undefined, field: string | undefined, value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.compared(entity, field, v));
    if (isObject(value))
      return Object.fromEntries(Object.entries(value).map(([op, v]) => [op, this.compared(entity, field, v)]));
    if (value === null) return null;
    return entity === undefined || field === undefined ? REDACTED : this.shown(entity, field, value);
  }

  /** The data engine's read listener (`audit.reads`): entity, where, rows returned and duration (§7.1). */
  readonly reads = async (event: ReadEvent, subject: Subject): Promise<void> => {
    const where =
      event.where === undefined ? "no where" : `where ${canonical(this.redactWhere(event.entity, event.where))}`;
    await this.record({
      action: "data.read",
      entity: event.entity,
      row_id: event.id ?? null,
      actor: this.actor(subject),
      request_id: subject.request?.id ?? null,
      reason: `${event.kind}, ${where.slice(0, 2000)}: ${event.rows} rows in ${event.durationMs.toFixed(1)} ms`,
    });
  };

  /**
   * Record an entry, redacted: in a transaction of its own (auth events, denials), or in `trx`, the transaction
   * of the write it goes with (§7.2). Counted once appended, so a caller appends it last in its transaction.
   */
  async record(input: AuditInput, trx?: Db): Promise<void> {
    const inputs = [input.changes ? { ...input, changes: this.redact(input) } : input];
    if (trx) await appendEntries(trx, inputs, this.policyHash);
    else await retryBusy(() => this.db.transaction().execute((own) => appendEntries(own, inputs, this.policyHash)));
    this.appended(inputs.length);
  }

  verify(): Promise<Verification> {
    return verifyChain(this.db);
  }

  /**
   * Remove the entries older than the retention (§7.3), recording the prune itself; nothing without a
   * configured `retention_days`.
   */
  async prune(actor: AuditActor, now = Date.now()): Promise<{ removed: number; before: string | null }> {
    if (this.retentionDays === undefined) return { removed: 0, before: null };
    const before = new Date(now - this.retentionDays * 86_400_000).toISOString();
    // the prune entry names the last entry removed and its hash: where the remaining chain must start (verify)
    const removed = await pruneBefore(this.db, before, async (trx, count, last) => {
      const through = last ? ` (through #${last.id})` : "";
      const entry: AuditInput = {
        action: "audit.prune",
        actor,
        reason: `removed ${count} entries older than ${before}${through}`,
        ...(last ? { entity: AUDIT_TABLE, row_id: last.id, changes: { hash: [last.hash, null] } } : {}),
      };
      await appendEntries(trx, [entry], this.policyHash, new Date(now).toISOString());
    });
    return { removed, before };
  }
}
