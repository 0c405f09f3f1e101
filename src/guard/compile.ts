/**
 * Roles → rules, once at startup (§4.2–4.8): for every role × permission × entity, the entries and policies
 * that can apply, with filters already parsed into the Filter AST. Rules whose conditions only look at the
 * entity are decided here too, so a request does a lookup plus placeholder binding.
 */
import type { PermissionConfig, ValidatedConfig } from "../config/schema.js";
import type { Models } from "../data/models.js";
import { ConfigError } from "../errors.js";
import { and, FALSE, type Filter, fieldsOf, hasPlaceholders, someNode, TRUE } from "../query/ast.js";
import { checkRuleSyntax, compileRule, RuleError } from "../query/rule.js";
import { type FieldResolver, parseWhere, type Reach } from "../query/where.js";
import { DATA_PERMISSIONS, WRITE_PERMISSIONS } from "./access.js";
import { bindEntity, ENTITY_KEY, EVERY_ENTITY, parseCondition } from "./conditions.js";

export const SYSTEM_PERMISSIONS = [
  "system.explain",
  "system.keys.manage",
  "system.audit.read",
  "system.metrics.read",
  "system.admin",
] as const;
export const PERMISSIONS: readonly string[] = [...DATA_PERMISSIONS, ...SYSTEM_PERMISSIONS];

export interface CompiledPolicy {
  path: string;
  description?: string;
  /**
   * the condition with `@entity` folded, ANDed with an allow or deny policy's rule (§9.1): what is only known
   * per request (id, user.*, the row's fields); undefined when none
   */
  condition?: Filter;
  /** a filter policy's rule: the rows must satisfy it besides the filter (folded per request) */
  rule?: Filter;
  effect: "allow" | "deny" | "filter";
  /** parsed for this rule's entity; may hold `@user.*` placeholders */
  filter?: Filter;
  /** whether `filter` holds placeholders (bound per request) */
  placeholders: boolean;
  fields?: ReadonlySet<string>;
  omit?: ReadonlySet<string>;
  /** per-field rules (§9.4), compiled for this entity and role */
  fieldRules?: FieldRules;
}

/** Where one field may be read, and when it may be written (§9.4): rules over the caller and the row. */
export interface FieldRule {
  read?: Filter;
  write?: Filter;
}
export type FieldRules = ReadonlyMap<string, FieldRule>;

export interface CompiledEntry {
  path: string;
  effect: "allow" | "deny";
  /** an entry with policies applies only when one of them matches */
  hasPolicies: boolean;
  policies: CompiledPolicy[];
}

export interface Rule {
  role: string;
  permission: string;
  entity: string;
  implicitAllow: boolean;
  entries: CompiledEntry[];
  /** the entity's own field rules for every role (§9.4), compiled for this role */
  fieldRules?: FieldRules;
  /** whether deciding needs the request context (id or user conditions, rules) */
  dynamic: boolean;
}

export interface CompiledRoles {
  rules: Map<string, Rule>;
  roles: ReadonlySet<string>;
  /** the roles with implicit_allow: granted whatever no entry denies */
  implicitAllow: ReadonlySet<string>;
  defaultRole: string | undefined;
}

export const ruleKey = (role: string, permission: string, entity: string) =>
  `${role}\u0000${permission}\u0000${entity}`;

type PermissionObject = Exclude<PermissionConfig, string>;
type PolicyObject = NonNullable<PermissionObject["policies"]>[number];

const isFalse = (f: Filter) => f.kind === "const" && !f.value;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function checkPlaceholders(value: unknown, path: string): void {
  if (typeof value === "string" && value.startsWith("@") && !/^@(user|row)\.[A-Za-z_]\w*$/.test(value))
    throw new ConfigError(path, `unknown placeholder "${value}" (expected @user.<claim> or, in $exists, @row.<field>)`);
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) checkPlaceholders(v, `${path}[${i}]`);
  } else if (isObject(value)) for (const [k, v] of Object.entries(value)) checkPlaceholders(v, `${path}.${k}`);
}

function fieldSet(names: string[] | undefined, models: Models, entities: string[], path: string) {
  if (!names) return undefined;
  for (const name of names)
    if (!entities.some((e) => models.get(e)?.entity.fields.has(name)))
      throw new ConfigError(path, `unknown field "${name}"`);
  return new Set(names);
}

interface PolicyTemplate {
  path: string;
  description?: string;
  entities: string[];
  /** filters are checked strictly when the condition names entities, leniently when it applies to all */
  strict: boolean;
  /** per entity it can apply to: the condition with `@entity` folded (TRUE: no condition left) */
  conditions: Map<string, Filter>;
  /** per entity it can apply to: the compiled rule (TRUE when the policy has none) */
  rules: Map<string, Filter>;
  effect: "allow" | "deny" | "filter";
  rawFilter?: Record<string, unknown>;
  fields?: ReadonlySet<string>;
  omit?: ReadonlySet<string>;
  /** per entity it can apply to: its field rules */
  fieldRules?: Map<string, FieldRules>;
}

type RuleTexts = Record<string, { read?: string; write?: string }>;

/** Who the rules of a role are compiled for (§9.1: the role folds `@has_role` at startup). */
interface RoleTarget {
  role: string;
  superadminRole?: string;
}

/**
 * A policy's rule for every entity it can apply to. A rule written for named entities must fit each; one
 * written for every entity reaches none of the rows of an entity it does not fit, but must fit one — unless it
 * denies: a deny that skipped the entities it does not fit would fail open there, so it must fit them all.
 */
function compileRules(
  rule: string | undefined,
  path: string,
  entities: string[],
  strict: boolean | "deny",
  models: Models,
  target: RoleTarget,
): Map<string, Filter> {
  const out = new Map<string, Filter>();
  if (rule === undefined) {
    for (const e of entities) out.set(e, TRUE);
    return out;
  }
  const pointed = (error: RuleError) => new ConfigError(path, error.message);
  try {
    checkRuleSyntax(rule);
  } catch (error) {
    throw error instanceof RuleError ? pointed(error) : error;
  }
  let firstError: RuleError | undefined;
  for (const entity of entities) {
    try {
      out.set(entity, compileRule(rule, { reach: trustedReach(models, entity), ...target }));
    } catch (error) {
      if (!(error instanceof RuleError)) throw error;
      // a deny that names its entities has nothing to narrow: only the rule's own error helps
      if (strict === "deny" && entities.length > 1)
        throw new ConfigError(
          path,
          `a deny's rule must fit every entity it applies to (name them in the condition's entity); on ${entity}: ${error.message}`,
        );
      if (strict) throw new ConfigError(path, `on ${entity}: ${error.message}`);
      firstError ??= error;
      out.set(entity, FALSE);
    }
  }
  if (firstError && [...out.values()].every(isFalse)) throw pointed(firstError);
  return out;
}

/** Field rules (§9.4) for each entity that has the fields; every named field must exist in one of them. */
function compileFieldRules(
  texts: RuleTexts,
  path: string,
  entities: string[],
  models: Models,
  target: RoleTarget,
): Map<string, FieldRules> {
  const out = new Map<string, FieldRules>();
  for (const name of Object.keys(texts))
    if (name === "id" || !entities.some((e) => models.get(e)?.entity.fields.has(name)))
      throw new ConfigError(`${path}.${name}`, `unknown field "${name}"`);
  for (const entity of entities) {
    const fields = models.get(entity)!.entity.fields;
    const rules = new Map<string, FieldRule>();
    for (const [name, text] of Object.entries(texts)) {
      if (!fields.has(name)) continue;
      const compile = (source: string | undefined, kind: "read" | "write") =>
        source === undefined
          ? undefined
          : compileRules(source, `${path}.${name}.${kind}`, [entity], true, models, target).get(entity);
      rules.set(name, { read: compile(text.read, "read"), write: compile(text.write, "write") });
    }
    out.set(entity, rules);
  }
  return out;
}

/**
 * A policy's field rule is read by its own permission only (§9.4): `read` by data.entity.read, `write` by create
 * and update. One written on another would never apply, and a field meant to be guarded would not be.
 */
function checkFieldRuleKinds(rules: RuleTexts, permission: string, path: string): void {
  const kinds = permission === "data.entity.read" ? ["read"] : WRITE_PERMISSIONS.has(permission) ? ["write"] : [];
  for (const [field, rule] of Object.entries(rules))
    for (const kind of ["read", "write"] as const)
      if (rule[kind] !== undefined && !kinds.includes(kind))
        throw new ConfigError(
          `${path}.${field}.${kind}`,
          `a ${kind} rule on a ${permission} policy never applies: put it on a ${kind === "read" ? "data.entity.read" : "data.entity.create or data.entity.update"} policy, or in the entity's config.field_rules (every role)`,
        );
}

const isSystem = (permission: string) => (SYSTEM_PERMISSIONS as readonly string[]).includes(permission);

/** A field of the row, or a query over rows: anything a filter asks beyond the caller (`@user.*`, `@context.*`). */
const asksRows = (f: Filter) => someNode(f, (n) => n.kind === "exists" || ("field" in n && !n.field.startsWith("@")));

/**
 * A system permission (§4.2) is about no entity and no row: a policy can only say, from the caller, whether it is
 * granted or taken away. A filter, a field list, or a condition on the entity or the row would have nothing to
 * apply to when it is decided (a filter would become a full grant, an entity would be whichever comes first).
 */
function checkSystemPolicy(p: PolicyObject, condition: Filter, at: string): void {
  if (p.effect === "filter")
    throw new ConfigError(
      `${at}.effect`,
      "a system permission has no rows to filter: use allow or deny, with a condition on the caller",
    );
  for (const key of ["fields", "omit"] as const)
    if (p[key] !== undefined)
      throw new ConfigError(
        `${at}.${key}`,
        `a system permission has no fields to ${key === "fields" ? "allow" : "omit"}`,
      );
  const named = fieldsOf(condition);
  for (const [field, key] of [
    [ENTITY_KEY, "entity"],
    ["id", "id"],
  ] as const)
    if (named.has(field))
      throw new ConfigError(
        `${at}.condition`,
        `a system permission is about no ${key === "id" ? "row" : "entity"}: a condition on "${key}" cannot apply; condition on the caller (user.<claim>)`,
      );
}

/** A system permission's rule may ask only about the caller: it is decided with no row at hand. */
function checkSystemRules(rules: Map<string, Filter>, at: string): void {
  for (const rule of rules.values())
    if (asksRows(rule))
      throw new ConfigError(
        at,
        "a system permission has no rows: its rule may ask only about the caller (user.<claim>, @has_role(…)), not a record's fields or exists(…)",
      );
}

function policyTemplates(entry: PermissionObject, path: string, models: Models, target: RoleTarget): PolicyTemplate[] {
  const all = [...models.keys()];
  const names = new Set(all);
  const system = isSystem(entry.permission);
  return (entry.policies ?? []).map((p, i) => {
    const at = `${path}.policies[${i}]`;
    const parsed = p.condition ? parseCondition(p.condition, `${at}.condition`, names) : TRUE;
    if (system) checkSystemPolicy(p, parsed, at);
    const conditions = new Map(all.map((e) => [e, bindEntity(parsed, e)] as const));
    // an entity for which the condition is false whatever the request is out of the policy's reach
    const possible = all.filter((e) => !isFalse(conditions.get(e)!));
    if (p.effect === "filter" && !p.filter && p.rule === undefined)
      throw new ConfigError(at, 'a policy with effect "filter" needs a filter or a rule');
    if (p.filter && p.effect !== "filter")
      throw new ConfigError(`${at}.filter`, 'a filter only applies to a policy with effect "filter"');
    if (p.filter) checkPlaceholders(p.filter, `${at}.filter`);
    if (p.fields && !Array.isArray(p.fields)) checkFieldRuleKinds(p.fields, entry.permission, `${at}.fields`);
    // a top-level `entity` (other than "*") says which entities the policy is written for: it must fit each
    const strict = p.condition !== undefined && "entity" in p.condition && p.condition.entity !== EVERY_ENTITY;
    const denies = entry.effect === "deny" || p.effect === "deny";
    const rules = compileRules(p.rule, `${at}.rule`, possible, denies ? "deny" : strict, models, target);
    if (system) checkSystemRules(rules, `${at}.rule`);
    return {
      path: at,
      description: p.description,
      // an allow or deny rule that cannot hold takes the policy off the entity; a filter policy's rule is its
      // filter, so one that cannot hold keeps the policy and matches no row, as a JSON filter does (§4.3)
      entities: p.effect === "filter" ? possible : possible.filter((e) => !isFalse(rules.get(e)!)),
      strict,
      conditions,
      rules,
      effect: p.effect,
      rawFilter: p.filter,
      fields: Array.isArray(p.fields) ? fieldSet(p.fields, models, possible, `${at}.fields`) : undefined,
      omit: fieldSet(p.omit, models, possible, `${at}.omit`),
      fieldRules:
        p.fields && !Array.isArray(p.fields)
          ? compileFieldRules(p.fields, `${at}.fields`, possible, models, target)
          : undefined,
    };
  });
}

/** A policy filter is trusted as written (§4.13): it may follow every relation and name every field. */
function trustedReach(models: Models, entity: string): Reach {
  const model = models.get(entity)!;
  return {
    entity,
    owner: model.entity.owner,
    resolve: (name) => model.entity.fields.get(name),
    scope: TRUE,
    relation(name) {
      const relation = model.entity.relations.get(name);
      return relation && { relation, target: trustedReach(models, relation.target) };
    },
    other: (name) => (models.has(name) ? trustedReach(models, name) : undefined),
  };
}

/** Parse each policy's filter for every entity it can apply to. */
function policiesFor(templates: PolicyTemplate[], entity: string, models: Models): CompiledPolicy[] {
  const model = models.get(entity)!;
  const resolve: FieldResolver = (name) => model.entity.fields.get(name);
  const out: CompiledPolicy[] = [];
  for (const t of templates) {
    if (!t.entities.includes(entity)) continue;
    let filter: Filter | undefined;
    if (t.rawFilter) {
      const path = `${t.path}.filter`;
      try {
        filter = parseWhere(t.rawFilter, resolve, {
          placeholders: true,
          path,
          asConfigError: true,
          reach: trustedReach(models, entity),
        });
      } catch (error) {
        // A policy for every entity, naming a field this entity lacks, reaches none of its rows.
        if (t.strict || !(error instanceof ConfigError)) throw error;
        filter = FALSE;
      }
    }
    const rule = t.rules.get(entity)!;
    // an allow or deny rule says where the policy applies; a filter policy's rule is a filter
    const condition = t.effect === "filter" ? t.conditions.get(entity)! : and(t.conditions.get(entity)!, rule);
    out.push({
      path: t.path,
      description: t.description,
      condition: condition.kind === "const" ? undefined : condition,
      rule: t.effect === "filter" && !(rule.kind === "const" && rule.value) ? rule : undefined,
      effect: t.effect,
      filter,
      placeholders: filter !== undefined && hasPlaceholders(filter),
      fields: t.fields,
      omit: t.omit,
      fieldRules: t.fieldRules?.get(entity),
    });
  }
  return out;
}

/** A lenient filter must fit at least one entity, or it is a typo. */
function checkLenientFilters(templates: PolicyTemplate[], models: Models) {
  for (const t of templates) {
    if (t.strict || !t.rawFilter) continue;
    let firstError: unknown;
    const fits = [...models.keys()].some((e) => {
      const model = models.get(e)!;
      try {
        parseWhere(t.rawFilter, (n) => model.entity.fields.get(n), {
          reach: trustedReach(models, e),
          placeholders: true,
          path: `${t.path}.filter`,
          asConfigError: true,
        });
        return true;
      } catch (error) {
        firstError ??= error;
        return false;
      }
    });
    if (!fits) throw firstError;
  }
}

/**
 * Whether deciding needs the request: a claim or context value (`@user.<claim>`, `@context.account_id`) or `id`
 * (the route's row) to fold, or a caller value inside a subquery (unknown there when the caller lacks it, §4.12).
 * A rule over the row alone is decided at startup; its caller values (placeholders) are bound per request all the
 * same.
 */
export const asksRequest = (filter: Filter | undefined) =>
  filter !== undefined &&
  someNode(
    filter,
    (n) =>
      ("field" in n && (n.field.startsWith("@") || n.field === "id")) ||
      // a caller value inside a subquery is folded with the caller's claims (conditions.ts)
      (n.kind === "exists" && hasPlaceholders(n.where)),
  );

const fieldRulesAsk = (rules: FieldRules | undefined) =>
  [...(rules?.values() ?? [])].some((r) => asksRequest(r.read) || asksRequest(r.write));

/** Compile every role; throws ConfigError naming the path of the first problem. */
export function compileRoles(
  auth: ValidatedConfig["auth"],
  models: Models,
  options: { superadminRole?: string; fieldRules?: Record<string, RuleTexts> } = {},
): CompiledRoles {
  const rules = new Map<string, Rule>();
  const defaults = Object.entries(auth.roles).filter(([, r]) => r.is_default);
  if (defaults.length > 1)
    throw new ConfigError(
      `config.auth.roles.${defaults[1]![0]}.is_default`,
      `only one role can be the default (already "${defaults[0]![0]}")`,
    );
  for (const [role, config] of Object.entries(auth.roles)) {
    const path = `config.auth.roles.${role}.permissions`;
    const target: RoleTarget = { role, superadminRole: options.superadminRole };
    const entityRules = new Map<string, FieldRules>();
    for (const [entity, texts] of Object.entries(options.fieldRules ?? {}))
      if (models.has(entity))
        for (const [e, rules] of compileFieldRules(
          texts,
          `config.data.entities.${entity}.config.field_rules`,
          [entity],
          models,
          target,
        ))
          entityRules.set(e, rules);
    const byPermission = new Map<string, { path: string; entry: PermissionObject; templates: PolicyTemplate[] }[]>();
    config.permissions.forEach((p, i) => {
      const at = `${path}[${i}]`;
      const entry: PermissionObject = typeof p === "string" ? { permission: p, effect: "allow" } : p;
      if (!PERMISSIONS.includes(entry.permission))
        throw new ConfigError(
          typeof p === "string" ? at : `${at}.permission`,
          `unknown permission "${entry.permission}" (expected one of ${PERMISSIONS.join(", ")})`,
        );
      const templates = policyTemplates(entry, at, models, target);
      checkLenientFilters(templates, models);
      const list = byPermission.get(entry.permission) ?? [];
      list.push({ path: at, entry, templates });
      byPermission.set(entry.permission, list);
    });
    for (const permission of PERMISSIONS)
      for (const entity of models.keys()) {
        const entries: CompiledEntry[] = (byPermission.get(permission) ?? []).map(({ path, entry, templates }) => ({
          path,
          effect: entry.effect,
          hasPolicies: templates.length > 0,
          policies: policiesFor(templates, entity, models),
        }));
        const fieldRules = entityRules.get(entity);
        const dynamic =
          fieldRulesAsk(fieldRules) ||
          entries.some((e) =>
            e.policies.some((p) => asksRequest(p.condition) || asksRequest(p.rule) || fieldRulesAsk(p.fieldRules)),
          );
        rules.set(ruleKey(role, permission, entity), {
          role,
          permission,
          entity,
          implicitAllow: config.implicit_allow,
          entries,
          fieldRules,
          dynamic,
        });
      }
  }
  return {
    rules,
    roles: new Set(Object.keys(auth.roles)),
    implicitAllow: new Set(Object.entries(auth.roles).flatMap(([name, r]) => (r.implicit_allow ? [name] : []))),
    defaultRole: defaults[0]?.[0],
  };
}
