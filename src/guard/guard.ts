/**
 * The guard (§4): decides, for a subject, a permission and an entity, whether it is granted and within which
 * rows (a Filter) and fields. Per request it looks a compiled rule up, matches the few per-request
 * conditions, and binds `@user.*` placeholders.
 */
import type { Models } from "../data/models.js";
import { ForbiddenError } from "../errors.js";
import { and, FALSE, type Filter, isPlaceholder, type Operand, or, TRUE } from "../query/ast.js";
import type { Access, DataPermission, Scope, Subject } from "./access.js";
import { type CompiledPolicy, type CompiledRoles, ruleKey } from "./compile.js";
import { matchCondition, type RequestContext } from "./conditions.js";

export type Decision =
  | { effect: "deny"; reason: string; matched: string[] }
  | { effect: "allow"; filter: Filter; fields?: ReadonlySet<string>; matched: string[] };

/** Fields only roles with implicit_allow may write (§3.6): a user's role. */
const PRIVILEGED_FIELDS: Record<string, string[]> = { users: ["role"] };

function fieldsOf(policies: CompiledPolicy[], visible: string[]): ReadonlySet<string> | undefined {
  const allow = policies.filter((p) => p.fields);
  const omit = policies.filter((p) => p.omit);
  if (allow.length === 0 && omit.length === 0) return undefined;
  return new Set(
    visible.filter((f) => f === "id" || (allow.every((p) => p.fields!.has(f)) && !omit.some((p) => p.omit!.has(f)))),
  );
}

export class Guard {
  constructor(
    private readonly compiled: CompiledRoles,
    private readonly models: Models,
  ) {}

  get defaultRole() {
    return this.compiled.defaultRole;
  }

  /**
   * The decision plus the policies that matched (for explain). `bind` resolves each policy's placeholders
   * on its own (a policy whose placeholder has no value matches nothing, without emptying the others);
   * explain leaves them unbound.
   */
  decide(
    role: string | undefined,
    permission: string,
    ctx: RequestContext,
    bind: (filter: Filter) => Filter = (f) => f,
  ): Decision {
    const effectiveRole = role ?? this.compiled.defaultRole;
    if (effectiveRole === undefined) return { effect: "deny", reason: "no token and no default role", matched: [] };
    const rule = this.compiled.rules.get(ruleKey(effectiveRole, permission, ctx.entity));
    if (!rule) return { effect: "deny", reason: `role "${effectiveRole}" has no such permission`, matched: [] };

    const grants: { filter: Filter; policies: CompiledPolicy[] }[] = [];
    const matchedPaths: string[] = [];
    for (const entry of rule.entries) {
      const matched = entry.policies.filter((p) => !p.condition || matchCondition(p.condition, ctx));
      if (entry.hasPolicies && matched.length === 0) continue;
      matchedPaths.push(entry.path, ...matched.map((p) => p.path));
      const denial = entry.effect === "deny" ? entry : matched.find((p) => p.effect === "deny");
      if (denial) return { effect: "deny", reason: `denied by ${denial.path}`, matched: matchedPaths };
      grants.push({ filter: and(...matched.map((p) => p.filter && bind(p.filter))), policies: matched });
    }
    if (grants.length === 0)
      return rule.implicitAllow
        ? { effect: "allow", filter: TRUE, matched: ["implicit_allow"] }
        : { effect: "deny", reason: `role "${effectiveRole}" lacks ${permission} on ${ctx.entity}`, matched: [] };

    const visible = this.models.get(ctx.entity)!.visibleFields;
    let fields: Set<string> | undefined;
    const sets = grants.map((g) => fieldsOf(g.policies, visible));
    if (sets.every((s) => s !== undefined)) fields = new Set(sets.flatMap((s) => [...s]));
    const filter =
      grants.length === 1 ? grants[0]!.filter : { kind: "or" as const, items: grants.map((g) => g.filter) };
    return { effect: "allow", filter, fields, matched: matchedPaths };
  }

  /** Whether the subject holds a system permission such as `system.explain` (not tied to an entity). */
  grantsSystem(subject: Subject, permission: string): boolean {
    if (subject.trusted) return true;
    // Rules are compiled per entity; system permissions are evaluated against any one of them.
    const entity = this.models.keys().next().value;
    return (
      entity !== undefined && this.decide(subject.role, permission, { entity, user: subject.user }).effect === "allow"
    );
  }

  /** The per-request view of the guard for one subject. */
  access(subject: Subject): Access {
    const cache = new Map<string, Scope | undefined>();
    const find = (permission: DataPermission, entity: string, id?: number): Scope | undefined => {
      const key = `${permission}\u0000${entity}\u0000${id ?? ""}`;
      if (cache.has(key)) return cache.get(key);
      const decision = this.decide(subject.role, permission, { entity, id, user: subject.user }, (f) =>
        bindPlaceholders(f, subject.user),
      );
      const scope = decision.effect === "allow" ? this.scope(subject, permission, entity, decision) : undefined;
      cache.set(key, scope);
      return scope;
    };
    return {
      subject,
      find,
      require(permission, entity, id) {
        const scope = find(permission, entity, id);
        if (!scope) throw new ForbiddenError(permission, entity);
        return scope;
      },
    };
  }

  private scope(
    subject: Subject,
    permission: string,
    entity: string,
    decision: Extract<Decision, { effect: "allow" }>,
  ): Scope {
    let fields = decision.fields;
    const privileged = PRIVILEGED_FIELDS[entity];
    const writing = permission === "data.entity.create" || permission === "data.entity.update";
    if (privileged && writing && !this.isImplicitAllow(subject.role)) {
      const base = fields ?? new Set(this.models.get(entity)!.visibleFields);
      fields = new Set([...base].filter((f) => !privileged.includes(f)));
    }
    return { filter: decision.filter, fields };
  }

  private isImplicitAllow(role: string | undefined): boolean {
    const effectiveRole = role ?? this.compiled.defaultRole;
    return effectiveRole !== undefined && this.compiled.implicitAllow.has(effectiveRole);
  }
}

const SCALAR = new Set(["string", "number", "boolean"]);

/**
 * Replace `@user.<claim>` with the subject's value. A filter with any placeholder that has no scalar value
 * (anonymous callers) matches nothing as a whole, so `$not`/`$ne` can never turn a missing value into "all" (§4.4).
 */
export function bindPlaceholders(filter: Filter, user: Record<string, unknown> | undefined): Filter {
  let unbound = false;
  const value = (operand: Operand): Operand => {
    if (!isPlaceholder(operand)) return operand;
    const claim = operand.placeholder.slice("user.".length);
    const v = user?.[claim];
    if (!SCALAR.has(typeof v)) {
      unbound = true;
      return null;
    }
    return v as Operand;
  };
  const walk = (f: Filter): Filter => {
    switch (f.kind) {
      case "const":
      case "isnull":
        return f;
      case "and":
      case "or":
        return { ...f, items: f.items.map(walk) };
      case "not":
        return { ...f, item: walk(f.item) };
      case "compare":
        return { ...f, value: value(f.value) };
      case "in":
        return { ...f, values: f.values.map(value) };
      case "like":
        return { ...f, pattern: value(f.pattern) };
      case "between":
        return { ...f, low: value(f.low), high: value(f.high) };
    }
  };
  const bound = walk(filter);
  return unbound ? FALSE : bound;
}
