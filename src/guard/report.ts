/**
 * The static access report (§12.2, `citadel check`): for every role × entity × action the decision explain
 * gives (the one decision path, §4.15), for every field who may read and write it, and warnings a security
 * review asks about first — wide grants, roles that can write `role`, unreadable entities, dead policies.
 */
import { guardEnforced, type ValidatedConfig } from "../config/schema.js";
import type { Models } from "../data/models.js";
import type { Db } from "../db/connection.js";
import { canHold } from "../query/evaluate.js";
import { DATA_PERMISSIONS, type DataPermission } from "./access.js";
import { SYSTEM_PERMISSIONS } from "./compile.js";
import { EVERY_ENTITY } from "./conditions.js";
import { type Explanation, explain } from "./explain.js";
import type { Guard } from "./guard.js";
import { type Tenancy, uniqueAcrossTenants } from "./tenancy.js";

export const ACTIONS = ["read", "create", "update", "delete"] as const;
export type Action = (typeof ACTIONS)[number];
const FIELD_ACTIONS: FieldAction[] = ["read", "create", "update"];
const PERMISSION_OF = Object.fromEntries(ACTIONS.map((a, i) => [a, DATA_PERMISSIONS[i]!])) as Record<
  Action,
  DataPermission
>;

export interface Cell {
  decision: Explanation["decision"];
  /** deny: why */
  reason?: string;
  /** filter: the SQL the guard ANDs in, placeholders shown as `@user.…` */
  where?: string;
  parameters?: unknown[];
  /**
   * policies decided per request (on the caller's claims or the row's id), each as its config path and its text:
   * the decision shown is the most any caller could get (an allow that may hold holds, a deny that may not hold
   * does not)
   */
  per_request?: string[];
}

/**
 * One role's access to one field: `all` rows, `some` (a field rule, §9.4), `own` (the owner column: only the
 * caller's own user id, §4.14), `server` (the tenant column, set from the caller's account, §6.2), `none`.
 */
export type FieldAccess = "all" | "some" | "own" | "server" | "none";
export type FieldAction = Exclude<Action, "delete">;
export type FieldGrant = Record<FieldAction, FieldAccess> & {
  /**
   * for `some`: the SQL saying on which rows its field rule holds; for a rule that depends on the caller,
   * `per caller: ` and the rules' texts (no SQL to show, but a diff sees them change)
   */
  rules?: Partial<Record<FieldAction, string>>;
};

export type WarningKind = "guard-off" | "wide-grant" | "role-write" | "unreadable" | "never-applies" | "secret-keys";

export interface Warning {
  kind: WarningKind;
  /** the config path it is about, when one */
  path?: string;
  message: string;
}

export interface AccessReport {
  /** whether the guard enforces these decisions (§1.9); when not, every route is open */
  enforced: boolean;
  roles: string[];
  /** the role callers without a token act as; null: they are refused everything */
  default_role: string | null;
  entities: string[];
  /** role → entity → action → decision */
  decisions: Record<string, Record<string, Record<Action, Cell>>>;
  /** entity → field → role → access (hidden fields are never listed: no role reads them) */
  fields: Record<string, Record<string, Record<string, FieldGrant>>>;
  /** role → the system permissions it holds (§4.2): explain, keys, audit, metrics, admin */
  system: Record<string, string[]>;
  /** who acts as which role without being a user of it */
  principals: {
    /** registration (§3.3): whether it is open, and the role new users get */
    registration: { open: boolean; role: string | null };
    /** API keys (§5.1): the roles keys without one of their own act as; secret_role null: they bypass the guard */
    api_keys?: { require: boolean; publishable_role: string; secret_role: string | null };
    /** an identity provider whose tokens are trusted (§3.2): its users act as the role its `role_claim` names */
    external_tokens?: { jwks_url: string; issuer: string; audience: string; role_claim: string };
    /** the other origins whose pages may call the API with the visitor's cookie (§3.7); empty: same origin only */
    browser_origins: string[];
    /** whether the client address (secret keys' allowed IPs, rate limits) is read from X-Forwarded-For */
    trust_proxy: boolean;
  };
  /** the tenant scope ANDed into every scoped entity's queries on top of the decisions (§6) */
  tenancy?: { field: string; entities: string[]; superadmin_role: string | null };
  warnings: Warning[];
}

export interface ReportInput {
  guard: Guard;
  db: Db;
  models: Models;
  config: ValidatedConfig;
  tenancy?: Tenancy;
}

interface FieldFacts {
  /** the API may write it at all (not id, created_at, ...) */
  writable: boolean;
  /** the tenant column of a tenant-bound role */
  serverSet: boolean;
  /** its field rule asks for the caller's claims or the row's id: it holds for some callers */
  perRequest: boolean;
}

function fieldAccess(e: Explanation, field: string, facts: FieldFacts, action: Action): FieldAccess {
  if (e.decision === "deny" || (action !== "read" && !facts.writable)) return "none";
  if (action !== "read" && facts.serverSet) return "server";
  // left out at the widest (a field list, a rule that holds for no caller): for every caller
  if (e.fields && !e.fields.includes(field)) return "none";
  if (facts.perRequest) return "some";
  if (action !== "read" && e.owner === field) return "own";
  return e.row_fields?.[field] !== undefined ? "some" : "all";
}

/** Wide grants (§9.3, §12.2): data permissions that reach every entity, present and future. */
function wideGrants(config: ValidatedConfig, usersExist: boolean): Warning[] {
  const out: Warning[] = [];
  const every = usersExist ? "every entity, users included" : "every entity, present and future";
  for (const [role, { permissions }] of Object.entries(config.auth.roles))
    permissions.forEach((p, i) => {
      const path = `config.auth.roles.${role}.permissions[${i}]`;
      const entry = typeof p === "string" ? { permission: p, effect: "allow" as const, policies: undefined } : p;
      if (entry.effect !== "allow" || !(DATA_PERMISSIONS as readonly string[]).includes(entry.permission)) return;
      if (!entry.policies?.length)
        out.push({
          kind: "wide-grant",
          path,
          message: `"${entry.permission}" ${typeof p === "string" ? "as a string" : "without policies"} grants it on ${every}`,
        });
      entry.policies?.forEach((policy, j) => {
        if (policy.effect !== "deny" && policy.condition?.entity === EVERY_ENTITY)
          out.push({
            kind: "wide-grant",
            path: `${path}.policies[${j}]`,
            message: `"${entry.permission}" for entity "*" reaches ${every}`,
          });
      });
    });
  return out;
}

/** Policies that reach no entity for their role: a condition or rule that cannot hold (e.g. `@has_role` of another). */
function deadPolicies(config: ValidatedConfig, guard: Guard, entities: string[]): Warning[] {
  const out: Warning[] = [];
  for (const [role, { permissions }] of Object.entries(config.auth.roles)) {
    const reached = new Set(
      entities.flatMap((entity) =>
        [...new Set(permissions.map((p) => (typeof p === "string" ? p : p.permission)))].flatMap((permission) =>
          guard.policyPaths(role, permission, entity),
        ),
      ),
    );
    permissions.forEach((p, i) => {
      if (typeof p === "string") return;
      p.policies?.forEach((_, j) => {
        const path = `config.auth.roles.${role}.permissions[${i}].policies[${j}]`;
        if (!reached.has(path))
          out.push({
            kind: "never-applies",
            path,
            message: `never applies to role "${role}": its condition or rule holds on no entity for it`,
          });
      });
    });
  }
  return out;
}

/** Each policy's config as written, by its path (`config.auth.roles.R.permissions[i].policies[j]`). */
export function policySources(config: ValidatedConfig): Map<string, string> {
  const out = new Map<string, string>();
  for (const [role, { permissions }] of Object.entries(config.auth.roles))
    for (const [i, p] of permissions.entries())
      for (const [j, policy] of (typeof p === "string" ? [] : (p.policies ?? [])).entries())
        out.set(`config.auth.roles.${role}.permissions[${i}].policies[${j}]`, JSON.stringify(policy));
  return out;
}

/** The texts of every field rule on one field for one role and action: the entity's and its policies'. */
function fieldRuleText(config: ValidatedConfig, role: string, entity: string, field: string, action: FieldAction) {
  const kind = action === "read" ? "read" : "write";
  const texts: unknown[] = [config.data.entities?.[entity]?.config?.field_rules?.[field]?.[kind]];
  for (const p of config.auth.roles[role]?.permissions ?? [])
    if (typeof p !== "string" && p.permission === PERMISSION_OF[action])
      for (const policy of p.policies ?? [])
        if (policy.fields && !Array.isArray(policy.fields)) texts.push(policy.fields[field]?.[kind]);
  return JSON.stringify(texts.filter((t) => t !== undefined));
}

/** What one role gets: per entity its decisions and fields, and its system permissions. */
export interface RoleView {
  decisions: Record<string, Record<Action, Cell>>;
  /** entity → field → access */
  fields: Record<string, Record<string, FieldGrant>>;
  system: string[];
}

/**
 * One role's view, every cell through explain: `widest` for the report (the most any caller holding the role
 * could get); without it, what a caller holding the role without any claim gets (no token: a key, or nobody).
 */
export function roleView({ guard, db, models, config, tenancy }: ReportInput, role: string, widest: boolean): RoleView {
  const names = new Set(models.keys());
  const sources = policySources(config);
  const decisions: RoleView["decisions"] = {};
  const fields: RoleView["fields"] = {};
  for (const entity of names) {
    const explained = Object.fromEntries(
      ACTIONS.map((a) => {
        const e = explain(guard, db, names, { role, permission: PERMISSION_OF[a], entity, widest });
        // without claims, a filter that needs one (a rule's `user.id`) reaches no row: as good as denied
        if (widest || e.decision === "deny") return [a, e];
        const scope = guard.find({ role }, PERMISSION_OF[a], entity);
        return [a, scope && canHold(scope.filter) ? e : { ...e, decision: "deny", reason: "no row without claims" }];
      }),
    ) as Record<Action, Explanation>;
    decisions[entity] = Object.fromEntries(
      ACTIONS.map((a) => {
        const e = explained[a];
        // with each policy's text: a diff sees one rewritten in place (its path stays the same)
        const perRequest = widest
          ? guard
              .perRequest(role, PERMISSION_OF[a], entity)
              .policies.map((path) => `${path} ${sources.get(path) ?? ""}`.trimEnd())
          : [];
        const cell: Cell = {
          decision: e.decision,
          ...(e.reason ? { reason: e.reason } : {}),
          ...(e.decision === "filter" ? { where: e.where, parameters: e.parameters } : {}),
          ...(perRequest.length > 0 ? { per_request: perRequest } : {}),
        };
        return [a, cell];
      }),
    ) as Record<Action, Cell>;
    const model = models.get(entity)!;
    const bound = tenancy !== undefined && role !== tenancy.superadminRole;
    // without claims a field rule on them is decided (explain folds it); at the widest it holds for some callers
    const perRequestFields = (a: Action) => (widest ? guard.perRequest(role, PERMISSION_OF[a], entity).fields : []);
    const ruled = {
      read: perRequestFields("read"),
      create: perRequestFields("create"),
      update: perRequestFields("update"),
    };
    fields[entity] = {};
    for (const field of model.visibleFields) {
      // a tenant-bound writer's account column is the server's, its account's unique values no one's (§6.2, §6.3)
      const writable =
        !model.entity.fields.get(field)!.system && !(bound && uniqueAcrossTenants(tenancy, entity, field));
      const serverSet = bound && tenancy.scoped.has(entity) && field === tenancy.field;
      const access = (a: FieldAction) =>
        fieldAccess(explained[a], field, { writable, serverSet, perRequest: ruled[a].includes(field) }, a);
      const grant: FieldGrant = { read: access("read"), create: access("create"), update: access("update") };
      const rules = Object.fromEntries(
        FIELD_ACTIONS.flatMap((a) => {
          if (grant[a] !== "some") return [];
          // a rule on the caller has no SQL to show: its text instead, so a diff sees it change
          const where = ruled[a].includes(field)
            ? `per caller: ${fieldRuleText(config, role, entity, field, a)}`
            : explained[a].row_fields?.[field];
          return where === undefined ? [] : [[a, where]];
        }),
      );
      if (Object.keys(rules).length > 0) grant.rules = rules;
      fields[entity][field] = grant;
    }
  }
  // system permissions are decided as grantsSystem decides them
  const system = SYSTEM_PERMISSIONS.filter((p) => guard.holdsSystem(role, p, {}, widest));
  return { decisions, fields, system };
}

/** Build the report: every cell through explain, so it says what enforcement does. */
export function accessReport(input: ReportInput): AccessReport {
  const { guard, models, config, tenancy } = input;
  const entities = [...models.keys()];
  const system: Record<string, string[]> = {};
  const roles = [...guard.roles];
  const names = new Set(entities);
  const decisions: AccessReport["decisions"] = {};
  const fields: AccessReport["fields"] = Object.fromEntries(entities.map((e) => [e, {}]));
  const warnings: Warning[] = [];
  const enforced = guardEnforced(config);
  if (!enforced)
    warnings.push({
      kind: "guard-off",
      message:
        roles.length === 0
          ? "no roles are configured (config.auth.roles): every /api/data route is open to every caller"
          : "the guard is disabled (config.auth.guard.enabled: false): the decisions below are not enforced",
    });
  for (const role of roles) {
    const view = roleView(input, role, true);
    decisions[role] = view.decisions;
    for (const entity of entities)
      for (const [field, grant] of Object.entries(view.fields[entity] ?? {})) {
        fields[entity]![field] ??= {};
        fields[entity]![field]![role] = grant;
      }
    system[role] = view.system;
  }
  warnings.push(...wideGrants(config, names.has("users")));
  if (names.has("users"))
    for (const role of roles) {
      const grant = fields.users?.role?.[role];
      const ways = (["create", "update"] as const).filter((a) => grant && grant[a] !== "none");
      if (ways.length > 0)
        warnings.push({
          kind: "role-write",
          path: `config.auth.roles.${role}`,
          message: `role "${role}" can write users.role (${ways.join(", ")}): it can give any user any role, its own included`,
        });
    }
  for (const entity of entities)
    if (roles.every((role) => decisions[role]![entity]!.read.decision === "deny"))
      warnings.push({ kind: "unreadable", message: `no role can read entity "${entity}"` });
  warnings.push(...deadPolicies(config, guard, entities));
  const keys = config.auth.enabled && config.auth.api_keys.enabled ? config.auth.api_keys : undefined;
  const jwks = config.auth.enabled ? config.auth.jwt.jwks : undefined;
  if (keys?.secret_role === undefined && keys)
    warnings.push({
      kind: "secret-keys",
      path: "config.auth.api_keys.secret_role",
      message:
        "secret keys created without a role of their own bypass the guard (§5.1); set secret_role to give them one",
    });
  if (keys && tenancy)
    warnings.push({
      kind: "secret-keys",
      path: "config.tenancy",
      message: "secret keys created without a tenant reach every account (§6.1); give each key its account",
    });
  return {
    enforced,
    roles,
    default_role: guard.defaultRole ?? null,
    entities,
    decisions,
    fields,
    system,
    principals: {
      registration: {
        open: config.auth.enabled && config.auth.allow_register && tenancy?.register !== "closed",
        role: config.auth.default_role_register ?? null,
      },
      ...(keys
        ? {
            api_keys: {
              require: keys.require,
              publishable_role: keys.publishable_role,
              secret_role: keys.secret_role ?? null,
            },
          }
        : {}),
      ...(jwks
        ? {
            external_tokens: {
              jwks_url: jwks.url,
              issuer: jwks.issuer,
              audience: jwks.audience,
              role_claim: jwks.role_claim,
            },
          }
        : {}),
      browser_origins: [config.server.cors.origin ?? []].flat(),
      trust_proxy: config.server.trust_proxy,
    },
    ...(tenancy
      ? {
          tenancy: {
            field: tenancy.field,
            entities: entities.filter((e) => tenancy.scoped.has(e) || e === tenancy.entity),
            superadmin_role: tenancy.superadminRole ?? null,
          },
        }
      : {}),
    warnings,
  };
}
