/**
 * Tenant isolation (§6): which tenant a caller is bound to, and the scope that binding ANDs into every read
 * and write of a scoped entity. It wraps the caller's Access, so it holds before and independent of the
 * guard (with the guard disabled too), and every route gets it from the one enforcement point (scoped.ts).
 */
import type { ValidatedConfig } from "../config/schema.js";
import { CitadelError, ConfigError } from "../errors.js";
import { and, FALSE, type Filter, type Operand, or, TRUE } from "../query/ast.js";
import type { Scope } from "../query/options.js";
import type { CompiledTenancy } from "../schema/compiled.js";
import { type Access, type DataPermission, type Subject, WRITE_PERMISSIONS } from "./access.js";

export interface Tenancy extends CompiledTenancy {
  register: "create" | "closed";
  /** the role that is not scoped (SnackBase's @is_superadmin) */
  superadminRole?: string;
}

/** The tenancy of a config whose schema compiled its scope (§6); undefined when it is off. */
export function tenancyOf(config: ValidatedConfig, schema: CompiledTenancy | undefined): Tenancy | undefined {
  if (!schema) return undefined;
  const superadminRole = config.tenancy.superadmin_role;
  if (superadminRole !== undefined && !(superadminRole in config.auth.roles))
    throw new ConfigError(
      "config.tenancy.superadmin_role",
      `unknown role "${superadminRole}" (configured roles: ${Object.keys(config.auth.roles).join(", ") || "none"})`,
    );
  // §6.3: users' email is the one signal that crosses accounts; a 409 on a new account's name would be another
  if (config.tenancy.register === "create" && config.auth.allow_register && schema.unique.has("name"))
    throw new ConfigError(
      "config.tenancy.register",
      `a unique account name would tell a registrant which accounts exist (409 on another account's name): drop .unique() from ${schema.entity}.name or set register: "closed"`,
    );
  return { ...schema, register: config.tenancy.register, superadminRole };
}

/** All tenants (superadmin, a secret key without a tenant, server code), none, or one. */
export type TenantBinding = { kind: "all" } | { kind: "none" } | { kind: "tenant"; id: Operand };

const ALL: TenantBinding = { kind: "all" };
const NONE: TenantBinding = { kind: "none" };

/**
 * §6.1: the tenant comes from the user (their account, or a verified external token's claim) or from the API
 * key, never from the request. A user's tenant wins over a key's: the middleware refuses the two when they
 * differ, and a user without a tenant is bound to none, not to a publishable key's. A key's tenant binds it
 * whatever role it acts as, the superadmin role included; only an unbound principal acting as the superadmin
 * role, a secret key without a tenant, or server code reaches every tenant.
 */
export function bindingOf(tenancy: Tenancy, subject: Subject): TenantBinding {
  const superadmin = subject.role !== undefined && subject.role === tenancy.superadminRole;
  if (subject.user) {
    if (superadmin) return ALL;
    return subject.tenant === undefined ? NONE : { kind: "tenant", id: subject.tenant };
  }
  if (subject.key && subject.key.tenant !== null) return { kind: "tenant", id: subject.key.tenant };
  if (superadmin) return ALL;
  if (subject.key) return subject.key.kind === "secret" ? ALL : NONE;
  return subject.trusted ? ALL : NONE;
}

/** The rows of `entity` a binding reaches: its tenant's (the tenant row itself for the tenant entity). */
export function tenantFilter(tenancy: Tenancy, entity: string, binding: TenantBinding): Filter {
  if (binding.kind === "all") return TRUE;
  const column = entity === tenancy.entity ? "id" : tenancy.scoped.has(entity) ? tenancy.field : undefined;
  if (column === undefined) return TRUE;
  if (binding.kind === "none") return FALSE;
  return { kind: "compare", field: column, op: "$eq", value: binding.id };
}

/**
 * §6.1, §9.1: a policy's filter and a rule's `exists(…)` or relation path are compiled once, trusted and
 * unscoped (§4.13), so their subqueries would read every tenant's rows: a flag of account B would open a row
 * of account A, and a caller could probe B's rows through its own. The caller's tenant goes into each
 * subquery too, as into the query around it (explain shows it the same way).
 */
export function withinSubqueries(tenancy: Tenancy, filter: Filter, binding: TenantBinding): Filter {
  switch (filter.kind) {
    case "and":
    case "or":
      return { ...filter, items: filter.items.map((f) => withinSubqueries(tenancy, f, binding)) };
    case "not":
      return { ...filter, item: withinSubqueries(tenancy, filter.item, binding) };
    case "exists":
      return {
        ...filter,
        where: and(tenantFilter(tenancy, filter.table, binding), withinSubqueries(tenancy, filter.where, binding)),
      };
    default:
      return filter;
  }
}

/** A field of the tenant entity whose values are unique across accounts: a bound caller may not write it (§6.3). */
export const uniqueAcrossTenants = (tenancy: Tenancy, entity: string, field: string) =>
  entity === tenancy.entity && tenancy.unique.has(field);

/** What a bound caller may write of its account: what it is granted, less the values unique across accounts. */
function writableOfTenant(tenancy: Tenancy, scope: Scope): ReadonlySet<string> {
  const granted = scope.fields ?? tenancy.tenantFields;
  return new Set([...granted].filter((f) => !uniqueAcrossTenants(tenancy, tenancy.entity, f)));
}

/**
 * A tenant's admin adds users to its own account (§6.4), but a superadmin that belongs to it (SnackBase's
 * system account) reaches every tenant: its email and role are not one tenant's to change, nor its row to
 * delete. Undefined where nothing is taken away.
 */
function outOfTenantReach(tenancy: Tenancy, permission: DataPermission, entity: string): Filter | undefined {
  const role = tenancy.superadminRole;
  if (role === undefined || entity !== "users") return undefined;
  if (permission !== "data.entity.update" && permission !== "data.entity.delete") return undefined;
  return or(
    { kind: "isnull", field: "role", isNull: true },
    { kind: "compare", field: "role", op: "$ne", value: role },
  );
}

/** The caller's Access with its tenant ANDed into every scope it hands out. */
export function tenantAccess(access: Access, tenancy: Tenancy): Access {
  const binding = bindingOf(tenancy, access.subject);
  if (binding.kind === "all") return access;
  const id = binding.kind === "tenant" ? (binding.id as number) : undefined;
  const subqueries = (f: Filter) => withinSubqueries(tenancy, f, binding);
  const within = (permission: DataPermission, entity: string, scope: Scope): Scope => ({
    ...scope,
    filter: and(
      subqueries(scope.filter),
      tenantFilter(tenancy, entity, binding),
      outOfTenantReach(tenancy, permission, entity),
    ),
    rowFields: scope.rowFields && new Map([...scope.rowFields].map(([f, rule]) => [f, subqueries(rule)] as const)),
    fields:
      entity === tenancy.entity && WRITE_PERMISSIONS.has(permission) ? writableOfTenant(tenancy, scope) : scope.fields,
    tenant: tenancy.scoped.has(entity)
      ? { field: tenancy.field, id, superadminRole: tenancy.superadminRole }
      : undefined,
  });
  return {
    subject: access.subject,
    role: access.role,
    find(permission: DataPermission, entity: string, rowId?: number) {
      const scope = access.find(permission, entity, rowId);
      return scope && within(permission, entity, scope);
    },
    require: (permission, entity, rowId) => within(permission, entity, access.require(permission, entity, rowId)),
  };
}

/**
 * A user token and an API key of two different tenants in one request (§6.1): neither may lend the other its
 * tenant. A key with a tenant beside a user without one is refused the same way.
 */
export function checkSameTenant(subject: Subject): void {
  const keyTenant = subject.key?.tenant ?? null;
  if (keyTenant === null || !subject.user) return;
  if (subject.tenant !== keyTenant)
    throw new CitadelError("forbidden", 403, "this API key belongs to another account than the signed-in user");
}
