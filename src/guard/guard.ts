/**
 * The guard (§4): decides, for a subject, a permission and an entity, whether it is granted and within which
 * rows (a Filter) and fields. Rules whose conditions only name the entity are decided once at startup; a
 * request then does a lookup, plus placeholder binding when a policy filter uses `@user.*`.
 */
import type { Models } from "../data/models.js";
import { ForbiddenError } from "../errors.js";
import { and, type Filter, or, TRUE } from "../query/ast.js";
import type { Access, DataPermission, Scope, Subject } from "./access.js";
import { bindPlaceholders } from "./bind.js";
import { type CompiledPolicy, type CompiledRoles, type Rule, ruleKey } from "./compile.js";
import { matchCondition, type RequestContext } from "./conditions.js";

/** A rule applied to one request, before placeholders are bound. */
type Verdict =
  | { effect: "deny"; reason: string; matched: string[] }
  /** `grants`: the matched policies of each applying entry; the rows are the OR of each entry's AND */
  | { effect: "allow"; grants: CompiledPolicy[][]; fields?: ReadonlySet<string>; matched: string[] };

export type Decision =
  | { effect: "deny"; reason: string; matched: string[] }
  | { effect: "allow"; filter: Filter; fields?: ReadonlySet<string>; matched: string[] };

/** Fields only roles with implicit_allow may write (§3.6): a user's role. */
const PRIVILEGED_FIELDS: Record<string, string[]> = { users: ["role"] };

const WRITES = new Set(["data.entity.create", "data.entity.update"]);

function fieldsOf(policies: CompiledPolicy[], visible: string[]): ReadonlySet<string> | undefined {
  const allow = policies.filter((p) => p.fields);
  const omit = policies.filter((p) => p.omit);
  if (allow.length === 0 && omit.length === 0) return undefined;
  return new Set(
    visible.filter((f) => f === "id" || (allow.every((p) => p.fields!.has(f)) && !omit.some((p) => p.omit!.has(f)))),
  );
}

/** §4.3: entries without policies always apply; any matching deny wins; several grants are ORed. */
function evaluate(rule: Rule, ctx: RequestContext, visible: string[]): Verdict {
  const grants: CompiledPolicy[][] = [];
  const matchedPaths: string[] = [];
  for (const entry of rule.entries) {
    // On routes that name no single row, a deny whose `id` condition may hold for some row holds for all.
    const matched = entry.policies.filter(
      (p) => !p.condition || matchCondition(p.condition, ctx, entry.effect === "deny" || p.effect === "deny"),
    );
    if (entry.hasPolicies && matched.length === 0) continue;
    matchedPaths.push(entry.path, ...matched.map((p) => p.path));
    const denial = entry.effect === "deny" ? entry : matched.find((p) => p.effect === "deny");
    if (denial) return { effect: "deny", reason: `denied by ${denial.path}`, matched: matchedPaths };
    grants.push(matched);
  }
  if (grants.length === 0)
    return rule.implicitAllow
      ? { effect: "allow", grants: [[]], matched: ["implicit_allow"] }
      : { effect: "deny", reason: `role "${rule.role}" lacks ${rule.permission} on ${rule.entity}`, matched: [] };
  // Field rules cannot differ per row here, so every applying grant's restriction holds for all rows:
  // a grant with no field rule never lifts another grant's (§4.8).
  const restrictions = grants.map((g) => fieldsOf(g, visible)).filter((s) => s !== undefined);
  const fields =
    restrictions.length === 0 ? undefined : new Set(visible.filter((f) => restrictions.every((s) => s.has(f))));
  return { effect: "allow", grants, fields, matched: matchedPaths };
}

/** The verdict's rows: each policy filter bound on its own, so one unbound placeholder empties only its grant. */
function filterOf(grants: CompiledPolicy[][], bind: (filter: Filter) => Filter): Filter {
  return or(...grants.map((g) => and(...g.map((p) => p.filter && (p.placeholders ? bind(p.filter) : p.filter)))));
}

const needsBinding = (grants: CompiledPolicy[][]) => grants.some((g) => g.some((p) => p.placeholders));

interface Precomputed {
  verdict: Verdict;
  /** the finished scope when nothing depends on the subject (undefined: denied) */
  scope?: Scope | undefined;
  constant: boolean;
}

export class Guard {
  /** rules decided at startup: their conditions name nothing but the entity */
  private readonly precomputed = new Map<string, Precomputed>();

  constructor(
    private readonly compiled: CompiledRoles,
    private readonly models: Models,
  ) {
    for (const [key, rule] of compiled.rules) {
      if (rule.dynamic) continue;
      const verdict = evaluate(rule, { entity: rule.entity }, this.visible(rule.entity));
      const constant = verdict.effect === "deny" || !needsBinding(verdict.grants);
      const scope = constant ? this.scope(rule, verdict, () => TRUE) : undefined;
      this.precomputed.set(key, { verdict, scope, constant });
    }
  }

  get defaultRole() {
    return this.compiled.defaultRole;
  }

  /** The configured role names. */
  get roles(): ReadonlySet<string> {
    return this.compiled.roles;
  }

  private visible(entity: string): string[] {
    return this.models.get(entity)!.visibleFields;
  }

  private rule(role: string | undefined, permission: string, entity: string): Rule | string {
    const effectiveRole = role ?? this.compiled.defaultRole;
    if (effectiveRole === undefined) return "no token and no default role";
    return this.compiled.rules.get(ruleKey(effectiveRole, permission, entity)) ?? `unknown role "${effectiveRole}"`;
  }

  private verdict(rule: Rule, ctx: RequestContext): Verdict {
    return (
      this.precomputed.get(ruleKey(rule.role, rule.permission, rule.entity))?.verdict ??
      evaluate(rule, ctx, this.visible(rule.entity))
    );
  }

  /** The decision with placeholders left as they are, and the policies that matched (for explain). */
  decide(role: string | undefined, permission: string, ctx: RequestContext): Decision {
    const rule = this.rule(role, permission, ctx.entity);
    if (typeof rule === "string") return { effect: "deny", reason: rule, matched: [] };
    const v = this.verdict(rule, ctx);
    if (v.effect === "deny") return v;
    return { effect: "allow", filter: filterOf(v.grants, (f) => f), fields: v.fields, matched: v.matched };
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

  /** The scope of one permission for one subject; undefined when it is not granted. */
  find(subject: Subject, permission: string, entity: string, id?: number): Scope | undefined {
    const rule = this.rule(subject.role, permission, entity);
    if (typeof rule === "string") return undefined;
    const pre = this.precomputed.get(ruleKey(rule.role, permission, entity));
    if (pre?.constant) return pre.scope;
    const verdict = pre?.verdict ?? evaluate(rule, { entity, id, user: subject.user }, this.visible(entity));
    return this.scope(rule, verdict, (f) => bindPlaceholders(f, subject.user));
  }

  private scope(rule: Rule, verdict: Verdict, bind: (filter: Filter) => Filter): Scope | undefined {
    if (verdict.effect === "deny") return undefined;
    let fields = verdict.fields;
    const privileged = PRIVILEGED_FIELDS[rule.entity];
    if (privileged && WRITES.has(rule.permission) && !rule.implicitAllow) {
      const base = fields ?? new Set(this.visible(rule.entity));
      fields = new Set([...base].filter((f) => !privileged.includes(f)));
    }
    return { filter: filterOf(verdict.grants, bind), fields };
  }

  /** The per-request view of the guard for one subject. */
  access(subject: Subject): Access {
    const find = (permission: DataPermission, entity: string, id?: number) =>
      this.find(subject, permission, entity, id);
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
}
