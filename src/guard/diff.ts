/**
 * What a config change does to access (§12.4, `citadel diff`): two access reports compared per role × entity
 * × action, per role × field, per role × system permission, and in who acts as which role (the default role,
 * registration, API keys, the guard itself, tenancy). A role, entity or field missing from one side counts as
 * denied there, so a new role or entity widens by everything it is granted. What can widen or narrow — a
 * filter or field rule whose SQL changed, a decision that now depends on other claims, a changed setting, a
 * new warning — is listed for review and asks for one like a widening does.
 */
import {
  ACTIONS,
  type AccessReport,
  type Action,
  type Cell,
  type FieldAccess,
  type FieldAction,
  type Warning,
} from "./report.js";

export interface AccessChange {
  role: string;
  /** absent for a system permission */
  entity?: string;
  action?: Action;
  /** the field, for a field's access */
  field?: string;
  /** a system permission (§4.2) */
  permission?: string;
  from: string;
  to: string;
  /** a filter or field rule that changed: its SQL before and after */
  where?: { from: string; to: string };
  /** the policies deciding per request, when they changed */
  per_request?: { from: string[]; to: string[] };
}

/** A setting that decides who acts as which role, or whether the guard enforces at all. */
export interface SettingChange {
  setting: string;
  from: string;
  to: string;
}

export interface AccessDiff {
  widens: AccessChange[];
  narrows: AccessChange[];
  /** filters and field rules whose SQL changed, decisions now taken per request on other policies, sideways moves */
  changes: AccessChange[];
  settings: SettingChange[];
  /** warnings of the new config the old one did not have */
  new_warnings: Warning[];
}

const DENIED: Cell = { decision: "deny" };
const RANK: Record<Cell["decision"], number> = { deny: 0, filter: 1, allow: 2 };
/** how much of a field a role reaches: own, server and some are each part of all, and not comparable */
const FIELD_RANK: Record<FieldAccess, number> = { none: 0, own: 1, server: 1, some: 1, all: 2 };

/** The caller without a token: its row is the default role's, compared like any role's. */
const NO_TOKEN = "(no token)";

const roleOf = (report: AccessReport, role: string) => (role === NO_TOKEN ? report.default_role : role);

function cellOf(report: AccessReport, role: string, entity: string, action: Action): Cell {
  const name = roleOf(report, role);
  return (name !== null && report.decisions[name]?.[entity]?.[action]) || DENIED;
}

function fieldOf(report: AccessReport, role: string, entity: string, field: string, action: FieldAction) {
  const name = roleOf(report, role);
  const grant = name === null ? undefined : report.fields[entity]?.[field]?.[name];
  return { access: grant?.[action] ?? "none", rule: grant?.rules?.[action] };
}

const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];
const sqlOf = (cell: Cell) => `${cell.where} -- ${JSON.stringify(cell.parameters)}`;
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The settings a reviewer must see change, as text. */
function settingsOf(report: AccessReport): Record<string, string> {
  const { registration, api_keys: keys, external_tokens: idp, browser_origins: origins } = report.principals;
  const text = (v: unknown) => (v === null || v === undefined ? "(none)" : String(v));
  return {
    // a new or re-pointed identity provider decides who acts as which role as much as registration does
    "external tokens (JWKS)": idp
      ? `${idp.jwks_url}, issuer ${idp.issuer}, audience ${idp.audience}, role from claim "${idp.role_claim}"`
      : "(none)",
    "browser origins sending the cookie (CORS)": origins.length > 0 ? origins.join(", ") : "(same origin only)",
    "client address from X-Forwarded-For": String(report.principals.trust_proxy),
    "guard enforces": String(report.enforced),
    "default role (callers without a token)": text(report.default_role),
    registration: registration.open ? `open, role ${text(registration.role)}` : "closed",
    "api keys": keys ? `on${keys.require ? ", required" : ""}` : "off",
    "publishable keys act as": text(keys?.publishable_role),
    "secret keys act as": keys ? (keys.secret_role ?? "(none: they bypass the guard)") : "(no keys)",
    "tenant-scoped entities": report.tenancy ? report.tenancy.entities.join(", ") : "(no tenancy)",
    "tenancy superadmin role": text(report.tenancy?.superadmin_role),
  };
}

/** Compare the access reports of an old and a new config: what widens, narrows or changes, and the settings. */
export function diffReports(before: AccessReport, after: AccessReport): AccessDiff {
  const out: AccessDiff = { widens: [], narrows: [], changes: [], settings: [], new_warnings: [] };
  const sort = (change: AccessChange, from: number, to: number) => {
    if (to > from) out.widens.push(change);
    else if (to < from) out.narrows.push(change);
    else if (change.from !== change.to || change.where || change.per_request) out.changes.push(change);
  };
  const roles = [NO_TOKEN, ...union(before.roles, after.roles)];
  const entities = union(before.entities, after.entities);
  for (const role of roles) {
    for (const entity of entities)
      for (const action of ACTIONS) {
        const was = cellOf(before, role, entity, action);
        const is = cellOf(after, role, entity, action);
        const filterChanged = was.decision === "filter" && is.decision === "filter" && sqlOf(was) !== sqlOf(is);
        const perRequest = same(was.per_request ?? [], is.per_request ?? [])
          ? undefined
          : { from: was.per_request ?? [], to: is.per_request ?? [] };
        sort(
          {
            role,
            entity,
            action,
            from: was.decision,
            to: is.decision,
            ...(filterChanged ? { where: { from: sqlOf(was), to: sqlOf(is) } } : {}),
            ...(perRequest ? { per_request: perRequest } : {}),
          },
          RANK[was.decision],
          RANK[is.decision],
        );
        // a decision to or from deny says it all; fields are compared where both sides reach the rows
        if (action === "delete" || was.decision === "deny" || is.decision === "deny") continue;
        const fields = union(Object.keys(before.fields[entity] ?? {}), Object.keys(after.fields[entity] ?? {}));
        for (const field of fields) {
          const from = fieldOf(before, role, entity, field, action);
          const to = fieldOf(after, role, entity, field, action);
          const ruleChanged = from.access === "some" && to.access === "some" && from.rule !== to.rule;
          if (from.access !== to.access || ruleChanged)
            sort(
              {
                role,
                entity,
                action,
                field,
                from: from.access,
                to: to.access,
                ...(ruleChanged ? { where: { from: from.rule ?? "(per caller)", to: to.rule ?? "(per caller)" } } : {}),
              },
              FIELD_RANK[from.access],
              FIELD_RANK[to.access],
            );
        }
      }
    const name = { before: roleOf(before, role), after: roleOf(after, role) };
    const held = (report: AccessReport, r: string | null) => (r === null ? [] : (report.system[r] ?? []));
    for (const permission of union(held(before, name.before), held(after, name.after))) {
      const was = held(before, name.before).includes(permission);
      const is = held(after, name.after).includes(permission);
      if (was !== is)
        sort({ role, permission, from: was ? "allow" : "deny", to: is ? "allow" : "deny" }, Number(was), Number(is));
    }
  }
  const [was, is] = [settingsOf(before), settingsOf(after)];
  for (const setting of Object.keys(is))
    if (was[setting] !== is[setting]) out.settings.push({ setting, from: was[setting]!, to: is[setting]! });
  const known = new Set(before.warnings.map((w) => JSON.stringify(w)));
  out.new_warnings = after.warnings.filter((w) => !known.has(JSON.stringify(w)));
  return out;
}

/** Whether a CI should ask for a review: more is reachable, or something changed that may make it so. */
export const needsReview = (diff: AccessDiff) =>
  diff.widens.length > 0 || diff.changes.length > 0 || diff.settings.length > 0 || diff.new_warnings.length > 0;
