/** `explain` (§5): for a role, permission and entity, the decision, the policies that matched and the SQL WHERE. */
import type { Db } from "../db/connection.js";
import { BadRequestError } from "../errors.js";
import { type Filter, isPlaceholder, mapOperands, type Operand } from "../query/ast.js";
import { compileFilter } from "../query/compile.js";
import { PERMISSIONS } from "./compile.js";
import type { RequestContext } from "./conditions.js";
import type { Guard } from "./guard.js";

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
  /** a write's owner column, set to the caller and not to be named otherwise (§4.14) */
  owner?: string;
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
}

export function explain(guard: Guard, db: Db, entities: ReadonlySet<string>, input: ExplainQuery): Explanation {
  const { permission, entity } = input;
  if (!permission || !PERMISSIONS.includes(permission))
    throw new BadRequestError(`permission: expected one of ${PERMISSIONS.join(", ")}`);
  if (!entity || !entities.has(entity)) throw new BadRequestError(`entity: unknown entity "${entity ?? ""}"`);
  const role = input.role || undefined;
  if (role !== undefined && !guard.roles.has(role)) {
    const known = guard.roles.size > 0 ? `configured roles: ${[...guard.roles].join(", ")}` : "no roles are configured";
    throw new BadRequestError(`role: unknown role "${role}" (${known})`);
  }
  const ctx: RequestContext = { entity, user: input.user };
  const decision = guard.decide(role, permission, ctx);
  const base = { role: role ?? guard.defaultRole ?? null, permission, entity, matched: decision.matched };
  if (decision.effect === "deny") return { ...base, decision: "deny", reason: decision.reason };
  const unrestricted = decision.filter.kind === "const" && decision.filter.value;
  const compiled = db
    .selectFrom(entity)
    .select("id")
    .where((eb) => compileFilter(eb, showPlaceholders(decision.filter), entity))
    .compile();
  return {
    ...base,
    decision: unrestricted ? "allow" : "filter",
    where: compiled.sql.slice(compiled.sql.indexOf(" where ") + " where ".length),
    parameters: [...compiled.parameters],
    fields: decision.fields ? [...decision.fields] : undefined,
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
  if (e.owner) lines.push(`owner:      ${e.owner} is the caller's user id`);
  return lines.join("\n");
}
