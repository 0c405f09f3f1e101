/** `explain` (§5): for a role, permission and entity, the decision, the policies that matched and the SQL WHERE. */
import type { Db } from "../db/connection.js";
import { BadRequestError } from "../errors.js";
import { and, type Filter, isPlaceholder, mapOperands, type Operand, TRUE } from "../query/ast.js";
import { compileFilter } from "../query/compile.js";
import { PERMISSIONS } from "./compile.js";
import type { RequestContext } from "./conditions.js";
import type { Decision, Guard } from "./guard.js";
import { bindingOf, type Tenancy, type TenantBinding, tenantFilter, withinSubqueries } from "./tenancy.js";

export interface Explanation {
  role: string | null;
  permission: string;
  entity: string;
  decision: "allow" | "filter" | "deny";
  reason?: string;
  matched: string[];
  /** the SQL the guard ANDs into every query, placeholders shown as `@user.…` parameters */
  where?: string;
  parameters?: unknown[];
  fields?: string[];
  /** fields readable (or writable) only on some rows (§9.4): the SQL saying on which */
  row_fields?: Record<string, string>;
  /** a write's owner column, set to the caller and not to be named otherwise (§4.14) */
  owner?: string;
  /** the tenant scope ANDed into the SQL (§6): one account, `@tenant` (the caller's), or all (superadmin) */
  tenant?: { field: string; scope: number | "@tenant" | "all tenants" | "no tenant: no rows" };
  /** the API key explained: its role is the one decided on */
  key?: { id: number; kind: "publishable" | "secret" };
}

/** Show placeholders as their names instead of binding them. */
const showPlaceholders = (filter: Filter) =>
  mapOperands(filter, (o: Operand) => (isPlaceholder(o) ? `@${o.placeholder}` : o));

export interface ExplainQuery {
  role?: string;
  permission?: string;
  entity?: string;
  /** token claims to match conditions against (placeholders stay unbound either way) */
  user?: Record<string, unknown>;
  /** the row a route names (GET, PATCH, DELETE /:id): conditions on `id` fold to it */
  id?: number;
  /** the caller's account (§6); unset: shown as `@tenant` */
  tenant?: number;
  /** an API key to explain: its role and tenant replace `role` and `tenant` */
  key?: { id: number; kind: "publishable" | "secret"; role: string | undefined; tenant: number | null };
  /**
   * what the request does not tell (claims not given, the row's id) folded to the most any caller could get,
   * as the access report shows it (§12.2); otherwise as enforcement folds it for a caller without them
   */
  widest?: boolean;
}

/** The binding explain shows: the given account, a key's, or any caller's (`@tenant`) — the same filter. */
function explainedBinding(tenancy: Tenancy, role: string | undefined, input: ExplainQuery): TenantBinding {
  if (input.key)
    return bindingOf(tenancy, { role, key: { id: input.key.id, kind: input.key.kind, tenant: input.key.tenant } });
  if (role !== undefined && role === tenancy.superadminRole) return { kind: "all" };
  return { kind: "tenant", id: input.tenant ?? { placeholder: "tenant" } };
}

function tenantShown(tenancy: Tenancy, entity: string, binding: TenantBinding): Explanation["tenant"] {
  if (entity !== tenancy.entity && !tenancy.scoped.has(entity)) return undefined;
  const field = entity === tenancy.entity ? "id" : tenancy.field;
  if (binding.kind !== "tenant") return { field, scope: binding.kind === "all" ? "all tenants" : "no tenant: no rows" };
  return { field, scope: typeof binding.id === "number" ? binding.id : "@tenant" };
}

export function explain(
  guard: Guard,
  db: Db,
  entities: ReadonlySet<string>,
  input: ExplainQuery,
  tenancy?: Tenancy,
): Explanation {
  const { permission, entity } = input;
  if (!permission || !PERMISSIONS.includes(permission))
    throw new BadRequestError(`permission: expected one of ${PERMISSIONS.join(", ")}`);
  if (!entity) throw new BadRequestError(`entity: required (one of ${[...entities].join(", ")})`);
  if (!entities.has(entity)) throw new BadRequestError(`entity: unknown entity "${entity}"`);
  if (input.tenant !== undefined && !tenancy)
    throw new BadRequestError("tenant: tenant isolation is not enabled (config.tenancy)");
  const role = input.key ? input.key.role : input.role || undefined;
  if (role !== undefined && !guard.roles.has(role)) {
    const known = guard.roles.size > 0 ? `configured roles: ${[...guard.roles].join(", ")}` : "no roles are configured";
    throw new BadRequestError(`role: unknown role "${role}" (${known})`);
  }
  const ctx: RequestContext = {
    entity,
    user: input.user,
    id: input.id,
    tenant: input.tenant,
    secretKey: input.key?.kind === "secret",
  };
  // a secret key without a role bypasses the guard (§5.1); everything else is the role's decision
  const decision: Decision =
    input.key && role === undefined && input.key.kind === "secret"
      ? { effect: "allow", filter: TRUE, matched: ["secret key without a role: the guard does not apply"] }
      : guard.decide(role, permission, ctx, undefined, input.widest);
  const binding = tenancy && explainedBinding(tenancy, role, input);
  const base = {
    role: role ?? (input.key ? null : (guard.defaultRole ?? null)),
    permission,
    entity,
    matched: decision.matched,
    ...(input.key ? { key: { id: input.key.id, kind: input.key.kind } } : {}),
    ...(tenancy && binding ? { tenant: tenantShown(tenancy, entity, binding) } : {}),
  };
  if (decision.effect === "deny") return { ...base, decision: "deny", reason: decision.reason };
  // the same tenant filter the caller's Access ANDs in (tenancy.ts)
  const scoped = (f: Filter) => (tenancy && binding ? withinSubqueries(tenancy, f, binding) : f);
  const filter = and(scoped(decision.filter), tenancy && binding ? tenantFilter(tenancy, entity, binding) : TRUE);
  const unrestricted = filter.kind === "const" && filter.value;
  const sqlOf = (f: Filter) => {
    const compiled = db
      .selectFrom(entity)
      .select("id")
      .where((eb) => compileFilter(eb, showPlaceholders(f), entity))
      .compile();
    return { where: compiled.sql.slice(compiled.sql.indexOf(" where ") + " where ".length), compiled };
  };
  const { where, compiled } = sqlOf(filter);
  const rowFields = decision.rowFields && [...decision.rowFields].map(([f, rule]) => [f, sqlOf(scoped(rule))] as const);
  return {
    ...base,
    decision: unrestricted ? "allow" : "filter",
    where,
    parameters: [...compiled.parameters],
    fields: decision.fields ? [...decision.fields] : undefined,
    ...(rowFields
      ? {
          row_fields: Object.fromEntries(
            rowFields.map(([f, r]) => [f, `${r.where} -- ${JSON.stringify(r.compiled.parameters)}`]),
          ),
        }
      : {}),
    owner: decision.owner,
  };
}

/** A person-readable rendering for the CLI. */
export function formatExplanation(e: Explanation): string {
  const lines = [
    `role:       ${e.role ?? "(none: no default role)"}`,
    `permission: ${e.permission}`,
    `entity:     ${e.entity}`,
    `decision:   ${e.decision.toUpperCase()}${e.reason ? ` (${e.reason})` : ""}`,
    `matched:    ${e.matched.length > 0 ? e.matched.join("\n            ") : "(nothing)"}`,
  ];
  if (e.where !== undefined) lines.push(`sql where:  ${e.where}`, `parameters: ${JSON.stringify(e.parameters)}`);
  if (e.fields) lines.push(`fields:     ${e.fields.join(", ")}`);
  for (const [field, where] of Object.entries(e.row_fields ?? {}))
    lines.push(`field rule: ${field} only where ${where}`);
  if (e.owner) lines.push(`owner:      ${e.owner} is the caller's user id`);
  if (e.tenant) lines.push(`tenant:     ${e.tenant.field} = ${e.tenant.scope}`);
  if (e.key) lines.push(`key:        #${e.key.id} (${e.key.kind})`);
  return lines.join("\n");
}
