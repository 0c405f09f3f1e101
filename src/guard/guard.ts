/**
 * The guard (§4): decides, for a subject, a permission and an entity, whether it is granted and within which
 * rows (a Filter) and fields. Rules whose conditions only name the entity are decided once at startup; a
 * request then does a lookup, plus placeholder binding when a policy filter uses `@user.*`.
 */
import type { Models } from "../data/models.js";
import { ForbiddenError } from "../errors.js";
import { and, type Filter, hasPlaceholders, not, or, TRUE } from "../query/ast.js";
import { type Access, type DataPermission, type Scope, type Subject, WRITE_PERMISSIONS } from "./access.js";
import { bindCallerValues, bindPlaceholders } from "./bind.js";
import {
  asksRequest,
  type CompiledPolicy,
  type CompiledRoles,
  type FieldRules,
  type Rule,
  ruleKey,
} from "./compile.js";
import { foldCondition, type RequestContext } from "./conditions.js";

/** An allow entry as it applies to one request: the rows it reaches and its filter policies there. */
interface Grant {
  /** rows where one of its policies certainly matches (TRUE for an entry without policies) */
  applies: Filter;
  /**
   * each filter policy must hold on the rows where its condition certainly holds: its filter, and its rule
   * folded for the request (`rule`)
   */
  filters: { where: Filter; policy: CompiledPolicy; rule?: Filter }[];
}

/** A rule applied to one request, before placeholders are bound. */
type Verdict =
  | { effect: "deny"; reason: string; matched: string[]; byPolicy?: boolean }
  | {
      effect: "allow";
      grants: Grant[];
      /** rows any deny possibly reaches (§4.12: an unknown deny applies) */
      deny: Filter;
      implicitAllow: boolean;
      fields?: ReadonlySet<string>;
      /** per-field rules folded for the request (§9.4): the rows where each field may be read / written */
      rowFields: Map<string, Filter>;
      matched: string[];
    };

export type Decision =
  /** `byPolicy`: a deny policy took the permission away, rather than no grant giving it */
  | { effect: "deny"; reason: string; matched: string[]; byPolicy?: boolean }
  | {
      effect: "allow";
      filter: Filter;
      fields?: ReadonlySet<string>;
      /** fields readable (or writable) only on some rows: the rows where each is (§9.4) */
      rowFields?: ReadonlyMap<string, Filter>;
      /** a write's owner column, pinned to the caller (§4.14); implicit_allow roles may name anyone */
      owner?: string;
      matched: string[];
    };

/**
 * What a secret key's server may beyond its role: write rows on behalf of any user (§4.14), and read the metrics
 * (§7.5), unless a deny policy of its role takes them away.
 */
function asSecretKey(decision: Decision, permission: string): Decision {
  if (decision.effect === "allow") return decision.owner ? { ...decision, owner: undefined } : decision;
  if (permission !== METRICS_PERMISSION || decision.byPolicy) return decision;
  return { effect: "allow", filter: TRUE, matched: [...decision.matched, "a secret key reads the metrics (7.5)"] };
}

export const METRICS_PERMISSION = "system.metrics.read";

/** Whether the subject came with a secret API key (beside a user token or not). */
export const isSecretKey = (subject: Subject): boolean => subject.key?.kind === "secret";

/** Fields only roles with implicit_allow may write (§3.6): a user's role. */
const PRIVILEGED_FIELDS: Record<string, string[]> = { users: ["role"] };

const isFalse = (f: Filter) => f.kind === "const" && !f.value;
const isTrue = (f: Filter) => f.kind === "const" && f.value;

function fieldsOf(policies: CompiledPolicy[], visible: string[]): ReadonlySet<string> | undefined {
  const allow = policies.filter((p) => p.fields);
  const omit = policies.filter((p) => p.omit);
  if (allow.length === 0 && omit.length === 0) return undefined;
  return new Set(
    visible.filter((f) => f === "id" || (allow.every((p) => p.fields!.has(f)) && !omit.some((p) => p.omit!.has(f)))),
  );
}

/** Field rules of a policy that may apply, and the rows it reaches when its condition depends on the row. */
interface PolicyFieldRules {
  rules: FieldRules;
  /** where its condition possibly holds; undefined: every row (a condition that does not depend on the row) */
  where?: Filter;
}

/**
 * §9.4: the field rules that bear on this permission — the entity's own and those of every policy that may
 * apply — each folded for the request, ANDed per field. A policy whose condition depends on the row restricts
 * only the rows it may reach (§4.12): its rule holds wherever its condition certainly does not.
 */
function foldFieldRules(
  rule: Rule,
  policies: PolicyFieldRules[],
  ctx: RequestContext,
  widest: boolean,
): Map<string, Filter> {
  const kind =
    rule.permission === "data.entity.read" ? "read" : WRITE_PERMISSIONS.has(rule.permission) ? "write" : undefined;
  const out = new Map<string, Filter>();
  if (!kind) return out;
  for (const { rules, where } of [{ rules: rule.fieldRules }, ...policies]) {
    if (!rules) continue;
    for (const [field, r] of rules) {
      const text = r[kind];
      if (!text) continue;
      const holds = foldCondition(text, ctx)[widest ? "possible" : "certain"];
      out.set(field, and(out.get(field), where ? or(not(where), holds) : holds));
    }
  }
  return out;
}

/**
 * §4.3, §4.12: entries without policies always apply; any deny that possibly holds removes the rows it
 * reaches (all of them when it does not depend on the row); several grants are ORed, each the AND of its
 * filters. A condition on `id` is a condition on the row, so on routes naming no row it becomes a filter.
 *
 * `widest` folds what the request does not tell (claims, the row's id) for the access report (§12.2): the most
 * any caller could get — an allow wherever it may hold, a deny only where it must, field lists and rules only
 * where they must apply. Enforcement never uses it.
 */
function evaluate(rule: Rule, ctx: RequestContext, visible: string[], widest = false): Verdict {
  const grants: Grant[] = [];
  const denials: { where: Filter; path: string }[] = [];
  const matched: string[] = [];
  const restrictions: ReadonlySet<string>[] = [];
  /** fields hidden by a policy whose condition depends on the row: hidden only where it possibly holds */
  const rowHidden: { field: string; where: Filter }[] = [];
  const possibleRules: PolicyFieldRules[] = [];
  for (const entry of rule.entries) {
    const folded = entry.policies.map((policy) => {
      const f = foldCondition(policy.condition, ctx);
      const denies = entry.effect === "deny" || policy.effect === "deny";
      return {
        policy,
        /** where its filter restricts the rows: where it certainly holds */
        certain: f.certain,
        /** where it grants */
        grants: widest ? f.possible : f.certain,
        /** whether it applies at all, and where a deny denies */
        possible: widest && denies ? f.certain : f.possible,
        /** whether its field list and field rules restrict fields (every row, or the rows it may reach) */
        restrictsFields: widest ? isTrue(f.certain) : !isFalse(f.possible),
      };
    });
    const possible = folded.filter((f) => !isFalse(f.possible));
    if (entry.hasPolicies && possible.length === 0) continue; // the entry does not apply
    matched.push(entry.path, ...possible.map((f) => f.policy.path));
    if (entry.effect === "deny") {
      const where = entry.hasPolicies ? or(...possible.map((f) => f.possible)) : TRUE;
      denials.push({ where, path: entry.path });
      continue;
    }
    for (const f of possible) if (f.policy.effect === "deny") denials.push({ where: f.possible, path: f.policy.path });
    const applies = entry.hasPolicies ? or(...folded.map((f) => f.grants)) : TRUE;
    if (isFalse(applies)) continue;
    const filters = folded
      .filter((f) => f.policy.effect === "filter" && !isFalse(f.certain))
      .map((f) => ({
        where: f.certain,
        policy: f.policy,
        rule: f.policy.rule && foldCondition(f.policy.rule, ctx)[widest ? "possible" : "certain"],
      }));
    grants.push({ applies, filters });
    // Every grant that may apply restricts fields, and a grant with no field rule never lifts another
    // grant's (§4.8). A policy whose condition does not depend on the row restricts every row; one whose
    // condition does (`id` on a route naming no row) restricts the rows it may reach, as read-one of each
    // would (§4.12), through per-row field rules (§9.4). The access report keeps whole rows.
    const restricting = folded.filter((f) => f.restrictsFields && f.policy.effect !== "deny");
    const perRow = (f: (typeof folded)[number]) => !widest && f.possible.kind !== "const";
    const restriction = fieldsOf(
      restricting.filter((f) => !perRow(f)).map((f) => f.policy),
      visible,
    );
    if (restriction) restrictions.push(restriction);
    for (const f of restricting) {
      const where = perRow(f) ? f.possible : undefined;
      if (f.policy.fieldRules) possibleRules.push({ rules: f.policy.fieldRules, where });
      if (!where) continue;
      const shown = fieldsOf([f.policy], visible);
      if (shown) for (const field of visible) if (!shown.has(field)) rowHidden.push({ field, where });
    }
  }
  const rowFields = foldFieldRules(rule, possibleRules, ctx, widest);
  for (const { field, where } of rowHidden) rowFields.set(field, and(rowFields.get(field), not(where)));
  const denial = denials.find((d) => isTrue(d.where));
  if (denial) return { effect: "deny", reason: `denied by ${denial.path}`, matched, byPolicy: true };
  if (grants.length === 0 && !rule.implicitAllow)
    return { effect: "deny", reason: `role "${rule.role}" lacks ${rule.permission} on ${rule.entity}`, matched };
  const fields =
    restrictions.length === 0 ? undefined : new Set(visible.filter((f) => restrictions.every((s) => s.has(f))));
  return {
    effect: "allow",
    grants,
    deny: or(...denials.map((d) => d.where)),
    implicitAllow: rule.implicitAllow,
    fields,
    rowFields,
    matched: rule.implicitAllow && grants.length === 0 ? [...matched, "implicit_allow"] : matched,
  };
}

/**
 * The verdict's rows: each policy filter bound on its own (one unbound placeholder empties only its own
 * policy), ANDed inside a grant where its condition holds, grants ORed, what a deny reaches removed. An
 * implicit_allow role also reaches the rows no grant speaks for.
 */
function rowsOf(v: Extract<Verdict, { effect: "allow" }>, bind: (filter: Filter) => Filter): Filter {
  const granted = v.grants.map((g) =>
    and(
      g.applies,
      ...g.filters.map((f) => {
        const filter = f.policy.filter && (f.policy.placeholders ? bind(f.policy.filter) : f.policy.filter);
        return or(not(f.where), and(filter, f.rule));
      }),
    ),
  );
  const implicit = v.implicitAllow ? [not(or(...v.grants.map((g) => g.applies)))] : [];
  return and(or(...granted, ...implicit), not(v.deny));
}

const needsBinding = (v: Verdict) =>
  v.effect === "allow" && v.grants.some((g) => g.filters.some((f) => f.policy.placeholders));

const unbound = (filter: Filter) => filter;

/** The caller's tenant as rules see it (`context.account_id`): its user's account, else its key's. */
const callerTenant = (subject: Subject): number | undefined =>
  subject.user ? subject.tenant : (subject.key?.tenant ?? undefined);

export class Guard {
  /** verdicts decided at startup (their conditions name nothing but the entity) */
  private readonly verdicts = new Map<string, Verdict>();
  /** finished decisions of those that depend on nothing about the subject */
  private readonly constant = new Map<string, Decision>();

  constructor(
    private readonly compiled: CompiledRoles,
    private readonly models: Models,
  ) {
    for (const [key, rule] of compiled.rules) {
      if (rule.dynamic) continue;
      const verdict = evaluate(rule, { entity: rule.entity }, this.visible(rule.entity));
      this.verdicts.set(key, verdict);
      if (!needsBinding(verdict)) this.constant.set(key, this.finish(rule, verdict, unbound));
    }
  }

  get defaultRole() {
    return this.compiled.defaultRole;
  }

  /** Whether a role has implicit_allow (granted whatever no entry denies, §4.3). */
  private implicitAllow(role: string | undefined): boolean {
    return role !== undefined && this.compiled.implicitAllow.has(role);
  }

  /**
   * Whether a role is granted everything with nothing held back: implicit_allow, no entry that denies or
   * narrows (a filter, a rule, a field list), and no field rule that does not hold for it. Only such a role
   * may hand out a key that bypasses the guard (§5.5): any other would escape its own limits through it.
   */
  private unrestricted(role: string | undefined): boolean {
    if (!this.implicitAllow(role)) return false;
    const holds = (f: Filter | undefined) => f === undefined || isTrue(f);
    for (const rule of this.compiled.rules.values()) {
      if (rule.role !== role) continue;
      for (const r of rule.fieldRules?.values() ?? []) if (!holds(r.read) || !holds(r.write)) return false;
      for (const entry of rule.entries) {
        if (entry.effect === "deny") return false;
        for (const p of entry.policies)
          if (p.effect !== "allow" || p.condition || p.fields || p.omit || p.fieldRules) return false;
      }
    }
    return true;
  }

  /**
   * Whether a role may give users other roles: implicit_allow (§3.6) with `users.role` left writable by its
   * update on users. Handing out a key acting as another role is the same grant (§5.5).
   */
  private grantsRoles(role: string | undefined): boolean {
    if (!this.implicitAllow(role) || !this.models.has("users")) return false;
    const d = this.decide(role, "data.entity.update", { entity: "users" });
    return d.effect === "allow" && (d.fields?.has("role") ?? true) && !d.rowFields?.has("role");
  }

  /**
   * §5.5: whether a subject may hand out (create, rotate or revoke) a key acting as `role` — undefined: a secret
   * key that bypasses the guard. Its own role and the default one (what a caller without a token has anyway)
   * always; another role if it may give users roles; a bypassing key only if it is granted everything.
   */
  mayHandOutKey(subject: Subject, role: string | undefined): boolean {
    if (subject.trusted) return true;
    if (role === undefined) return this.unrestricted(subject.role);
    return role === subject.role || role === this.defaultRole || this.grantsRoles(subject.role);
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

  /**
   * The one decision path (§4.15): enforcement binds placeholders to the caller's claims, explain leaves
   * them as they are; everything else — matched policies, rows, fields — is the same computation.
   */
  decide(role: string | undefined, permission: string, ctx: RequestContext, bind = unbound, widest = false): Decision {
    const rule = this.rule(role, permission, ctx.entity);
    if (typeof rule === "string") return { effect: "deny", reason: rule, matched: [] };
    const key = ruleKey(rule.role, permission, ctx.entity);
    const decision = this.constant.get(key) ?? this.evaluated(rule, key, ctx, bind, widest);
    return ctx.secretKey ? asSecretKey(decision, permission) : decision;
  }

  private evaluated(rule: Rule, key: string, ctx: RequestContext, bind: (f: Filter) => Filter, widest: boolean) {
    const asked = widest && ctx.user === undefined ? { ...ctx, claimsUnknown: true, knownRole: rule.role } : ctx;
    const verdict = this.verdicts.get(key) ?? evaluate(rule, asked, this.visible(ctx.entity), widest);
    return this.finish(rule, verdict, bind);
  }

  private finish(rule: Rule, verdict: Verdict, bind: (filter: Filter) => Filter): Decision {
    if (verdict.effect === "deny") return verdict;
    let fields = verdict.fields;
    const privileged = PRIVILEGED_FIELDS[rule.entity];
    if (privileged && WRITE_PERMISSIONS.has(rule.permission) && !rule.implicitAllow) {
      const base = fields ?? new Set(this.visible(rule.entity));
      fields = new Set([...base].filter((f) => !privileged.includes(f)));
    }
    const owner =
      WRITE_PERMISSIONS.has(rule.permission) && !rule.implicitAllow
        ? this.models.get(rule.entity)!.entity.owner
        : undefined;
    // a field rule that holds on no row takes the field away (§4.8); one that holds on every row adds nothing
    const rowFields = new Map<string, Filter>();
    for (const [field, where] of verdict.rowFields) {
      if (isTrue(where)) continue;
      if (isFalse(where)) {
        const base = fields ?? new Set(this.visible(rule.entity));
        fields = new Set([...base].filter((f) => f !== field));
      } else rowFields.set(field, where);
    }
    return {
      effect: "allow",
      filter: rowsOf(verdict, bind),
      fields,
      ...(rowFields.size > 0 ? { rowFields } : {}),
      owner,
      matched: verdict.matched,
    };
  }

  /** Fields of `entity` that field rules restrict for this role's reads, whatever it is granted (§9.4). */
  ruledFields(role: string | undefined, entity: string): string[] {
    const rule = this.rule(role, "data.entity.read", entity);
    if (typeof rule === "string") return [];
    const names = new Set(rule.fieldRules?.keys());
    for (const entry of rule.entries)
      for (const p of entry.policies) for (const f of p.fieldRules?.keys() ?? []) names.add(f);
    return [...names];
  }

  /** The policies (config paths) that can apply to one role, permission and entity (§12.2). */
  policyPaths(role: string, permission: string, entity: string): string[] {
    const rule = this.compiled.rules.get(ruleKey(role, permission, entity));
    return rule ? rule.entries.flatMap((e) => e.policies.map((p) => p.path)) : [];
  }

  /**
   * What of one role, permission and entity is decided per request (§12.2): the policies whose condition or rule
   * asks for the caller's claims or the row's id, and the fields whose field rule does.
   */
  perRequest(role: string, permission: string, entity: string): { policies: string[]; fields: string[] } {
    const rule = this.compiled.rules.get(ruleKey(role, permission, entity));
    if (!rule?.dynamic) return { policies: [], fields: [] };
    const policies = rule.entries.flatMap((e) => e.policies);
    const kind = permission === "data.entity.read" ? "read" : WRITE_PERMISSIONS.has(permission) ? "write" : undefined;
    const fields = new Set<string>();
    for (const rules of [rule.fieldRules, ...policies.map((p) => p.fieldRules)])
      for (const [field, r] of rules ?? []) if (kind && asksRequest(r[kind])) fields.add(field);
    return {
      policies: policies.filter((p) => asksRequest(p.condition) || asksRequest(p.rule)).map((p) => p.path),
      fields: [...fields],
    };
  }

  /** Whether the subject holds a system permission such as `system.explain` (not tied to an entity). */
  grantsSystem(subject: Subject, permission: string): boolean {
    if (subject.trusted) return true;
    return this.holdsSystem(subject.role, permission, { user: subject.user, secretKey: isSecretKey(subject) });
  }

  /**
   * Whether a role holds a system permission (§4.2). Rules are compiled per entity, and a system permission is
   * about none: it holds only where every entity's decision allows with nothing left to narrow. Startup refuses
   * the policies that could make them differ or leave a filter (compile.ts); should one get through, it fails closed.
   */
  holdsSystem(role: string | undefined, permission: string, ctx: Omit<RequestContext, "entity">, widest = false) {
    const entities = [...this.models.keys()];
    return (
      entities.length > 0 &&
      entities.every((entity) => {
        const decision = this.decide(role, permission, { ...ctx, entity }, unbound, widest);
        return decision.effect === "allow" && isTrue(decision.filter);
      })
    );
  }

  /** The scope of one permission for one subject; undefined when it is not granted. */
  find(subject: Subject, permission: string, entity: string, id?: number): Scope | undefined {
    const ctx = {
      entity,
      id,
      user: subject.user,
      tenant: callerTenant(subject),
      secretKey: isSecretKey(subject),
    };
    const decision = this.decide(subject.role, permission, ctx, (f) => bindPlaceholders(f, subject.user));
    if (decision.effect === "deny") return undefined;
    // what is left unbound comes from rules, whose caller values are bound one by one (§9.1)
    const bound = (f: Filter) => (hasPlaceholders(f) ? bindCallerValues(f, ctx) : f);
    const rowFields = decision.rowFields && new Map([...decision.rowFields].map(([k, f]) => [k, bound(f)] as const));
    return { filter: bound(decision.filter), fields: decision.fields, rowFields, owner: decision.owner };
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
