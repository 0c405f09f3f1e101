/**
 * What a config change does to access (§12.4, `citadel diff`): two access reports compared per role × entity
 * × action and per role × field. A role, entity or field missing from one side counts as denied there, so a
 * new role or entity widens by everything it is granted. A filter whose SQL changed can widen or narrow:
 * only a reviewer can tell, so it is listed as a change and treated like a widening.
 */
import { ACTIONS, type AccessReport, type Action, type Cell, type FieldAccess, type Warning } from "./report.js";

export interface AccessChange {
  role: string;
  entity: string;
  action: Action;
  /** the field, for a field's access; absent for the action's decision */
  field?: string;
  from: string;
  to: string;
  /** a filter that changed: its SQL before and after */
  where?: { from: string; to: string };
}

export interface AccessDiff {
  widens: AccessChange[];
  narrows: AccessChange[];
  /** filters whose SQL changed, and field access that moved sideways (e.g. own user id → some rows) */
  changes: AccessChange[];
  /** warnings of the new config the old one did not have */
  new_warnings: Warning[];
  /** the role callers without a token act as, when it changed */
  default_role?: { from: string | null; to: string | null };
}

const DENIED: Cell = { decision: "deny" };
const RANK: Record<Cell["decision"], number> = { deny: 0, filter: 1, allow: 2 };
/** how much of a field a role reaches: own, server and some are each part of all, and not comparable */
const FIELD_RANK: Record<FieldAccess, number> = { none: 0, own: 1, server: 1, some: 1, all: 2 };

/** The caller without a token: its row is the default role's, compared like any role's. */
const NO_TOKEN = "(no token)";

function cellOf(report: AccessReport, role: string, entity: string, action: Action): Cell {
  const name = role === NO_TOKEN ? report.default_role : role;
  return (name !== null && report.decisions[name]?.[entity]?.[action]) || DENIED;
}

function fieldOf(report: AccessReport, role: string, entity: string, field: string, action: Action): FieldAccess {
  const name = role === NO_TOKEN ? report.default_role : role;
  if (name === null || action === "delete") return "none";
  return report.fields[entity]?.[field]?.[name]?.[action] ?? "none";
}

const sqlOf = (cell: Cell) => `${cell.where} -- ${JSON.stringify(cell.parameters)}`;

const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];

export function diffReports(before: AccessReport, after: AccessReport): AccessDiff {
  const out: AccessDiff = { widens: [], narrows: [], changes: [], new_warnings: [] };
  const sort = (change: AccessChange, from: number, to: number) => {
    if (to > from) out.widens.push(change);
    else if (to < from) out.narrows.push(change);
    else if (change.from !== change.to || change.where) out.changes.push(change);
  };
  const roles = [NO_TOKEN, ...union(before.roles, after.roles)];
  const entities = union(before.entities, after.entities);
  for (const role of roles)
    for (const entity of entities)
      for (const action of ACTIONS) {
        const was = cellOf(before, role, entity, action);
        const is = cellOf(after, role, entity, action);
        const filterChanged =
          was.decision === "filter" &&
          is.decision === "filter" &&
          (was.where !== is.where || JSON.stringify(was.parameters) !== JSON.stringify(is.parameters));
        sort(
          {
            role,
            entity,
            action,
            from: was.decision,
            to: is.decision,
            ...(filterChanged ? { where: { from: sqlOf(was), to: sqlOf(is) } } : {}),
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
          if (from !== to) sort({ role, entity, action, field, from, to }, FIELD_RANK[from], FIELD_RANK[to]);
        }
      }
  const known = new Set(before.warnings.map((w) => JSON.stringify(w)));
  out.new_warnings = after.warnings.filter((w) => !known.has(JSON.stringify(w)));
  if (before.default_role !== after.default_role)
    out.default_role = { from: before.default_role, to: after.default_role };
  return out;
}

/** Whether a CI should ask for a review: something is reachable that was not, or a filter changed. */
export const needsReview = (diff: AccessDiff) => diff.widens.length > 0 || diff.changes.length > 0;
