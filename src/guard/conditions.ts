/**
 * Policy conditions (§4.3, §4.12) are written in the `where` language and parsed into the one Filter AST.
 * Their keys are request-context values (`entity` → field `@entity`, `user.<claim>` → `@user.<claim>`) and
 * `id`, which is the row's own id: on a route naming one row it is that row's id, elsewhere it stays a row
 * predicate, so a list treats each row exactly as read-one would.
 *
 * Folding binds the context with the one evaluator's three-valued logic and answers two filters over rows:
 * where the condition is certainly TRUE (an allow or filter applies only there) and where it is possibly
 * TRUE, i.e. not certainly FALSE (a deny applies there: an unknown deny applies, fail closed).
 */
import { ConfigError } from "../errors.js";
import {
  and,
  FALSE,
  type Filter,
  hasPlaceholders,
  isPlaceholder,
  mapOperands,
  not,
  or,
  type Scalar,
  TRUE,
} from "../query/ast.js";
import { evaluate, type Lookup } from "../query/evaluate.js";
import { contextField } from "../query/rule.js";
import { parseWhere } from "../query/where.js";
import type { CompiledField } from "../schema/compiled.js";
import { callerValue, fittingValue } from "./bind.js";

export interface RequestContext {
  entity: string;
  /** the row a route names; undefined on routes that name no single row */
  id?: number;
  user?: Record<string, unknown>;
  /** the caller's tenant (§6), `context.account_id` in a rule */
  tenant?: number;
  /**
   * no caller is at hand (the access report, §12.2): every claim and the tenant are unknown, even to `is null`
   * (a role's users may carry any claim), not missing
   */
  claimsUnknown?: boolean;
  /** with `claimsUnknown`: the role decided for, which is `user.role` of every caller holding it */
  knownRole?: string;
  /** the caller came with a secret API key: a trusted server, which may name any row's owner (§4.14) */
  secretKey?: boolean;
}

export const ENTITY_KEY = "@entity";
/** `"*"` as the entity of a condition: every entity, present and future (§9.3) */
export const EVERY_ENTITY = "*";
const CLAIM = /^user\.([A-Za-z_]\w*)$/;
const TENANT_KEY = "context.account_id";

const ID_FIELD = contextField("id", "primary");

function resolveKey(key: string): CompiledField | undefined {
  if (key === "entity") return contextField(ENTITY_KEY, "text");
  if (key === "id") return ID_FIELD;
  return CLAIM.test(key) || key === TENANT_KEY ? contextField(`@${key}`, "text") : undefined;
}

/** Every value compared with `@entity`, to check that each names an entity. */
function entityNames(filter: Filter, into: unknown[] = []): unknown[] {
  switch (filter.kind) {
    case "and":
    case "or":
      for (const f of filter.items) entityNames(f, into);
      return into;
    case "not":
      return entityNames(filter.item, into);
    case "compare":
      if (filter.field === ENTITY_KEY) into.push(filter.value);
      return into;
    case "in":
      if (filter.field === ENTITY_KEY) into.push(...filter.values);
      return into;
    default:
      return into;
  }
}

/** Parse a condition at startup; unknown keys, operators and entities are ConfigErrors naming the path. */
export function parseCondition(condition: unknown, path: string, entities: ReadonlySet<string>): Filter {
  const filter = parseWhere(
    condition,
    (key) => {
      const field = resolveKey(key);
      if (!field)
        throw new ConfigError(
          `${path}.${key}`,
          `unknown condition key "${key}" (expected entity, id, user.<claim> or context.account_id)`,
        );
      return field;
    },
    { path, asConfigError: true },
  );
  for (const name of entityNames(filter))
    if (typeof name !== "string" || (!entities.has(name) && name !== EVERY_ENTITY))
      throw new ConfigError(`${path}.entity`, `unknown entity "${String(name)}"`);
  return filter;
}

/** Where a condition certainly holds, and where it possibly holds, as filters over the entity's rows. */
export interface Folded {
  certain: Filter;
  possible: Filter;
}

const ALWAYS: Folded = { certain: TRUE, possible: TRUE };
const isFalse = (f: Filter) => f.kind === "const" && !f.value;
const constant = (truth: boolean | null): Folded => ({
  certain: truth === true ? TRUE : FALSE,
  possible: truth === false ? FALSE : TRUE,
});

function claim(ctx: RequestContext, field: string): unknown {
  if (field === ENTITY_KEY) return ctx.entity;
  if (field === "id") return ctx.id;
  if (field === `@${TENANT_KEY}`) return ctx.tenant;
  return ctx.user?.[field.slice("@user.".length)];
}

/**
 * The context as the values it is compared with see it: a claim is compared as a column of the literal's type
 * would compare it (bind.ts), so `"0" >= 3` or `true >= 3` is unknown, as `min_level <= user.clearance` is for
 * that claim, never SQLite's "text after numbers". A claim that is no scalar (an object, a list) is unknown too.
 */
const contextLookup =
  (read: (field: string) => unknown): Lookup =>
  (field, against) =>
    fittingValue(read(field), against === undefined || against === null ? undefined : typeOf(against));

const typeOf = (v: Exclude<Scalar, null>) => typeof v as "string" | "number" | "boolean";

/**
 * Unknown for every row, as a pair of predicates on the subquery's rows that are FALSE and TRUE for each of them
 * (`x IN ()` and `x NOT IN ()`, even for a NULL x), not constants: the subquery stays a filter, so an allow that
 * cannot hold matches no row, as the NULL it replaces did, rather than not applying at all.
 */
const unknownRow = (field: string): Folded => ({
  certain: { kind: "in", field, negated: false, values: [] },
  possible: { kind: "in", field, negated: true, values: [] },
});

/** Whether every caller value of a leaf binds (bind.ts): then SQL compares it, else the leaf is unknown. */
function bindsAll(filter: Filter, ctx: RequestContext): boolean {
  if (ctx.claimsUnknown) return false;
  let all = true;
  mapOperands(filter, (operand) => {
    if (isPlaceholder(operand) && callerValue(operand, ctx) === undefined) all = false;
    return operand;
  });
  return all;
}

/**
 * Fold the context into a condition (Kleene logic as a pair of two-valued filters). Fields of the row (a
 * rule's, or `id` on a route naming no row) stay predicates: SQL's own three-valued logic treats them as
 * the evaluator would. Inside a subquery every field is the subquery's row; EXISTS is monotone, so the
 * certain and possible subqueries bound the real one from both sides. There a leaf comparing the row with a
 * caller value the caller lacks (`dept == user.dept`, no `dept` claim) is unknown, not SQL's NULL: EXISTS would
 * make it FALSE, and an unknown deny must apply (§4.12). Rules with such leaves are folded per request
 * (compile.ts, asksRequest).
 */
export function foldCondition(filter: Filter | undefined, ctx: RequestContext, inner = false): Folded {
  if (!filter) return ALWAYS;
  switch (filter.kind) {
    case "const":
      return constant(filter.value);
    case "and": {
      const items = filter.items.map((f) => foldCondition(f, ctx, inner));
      return { certain: and(...items.map((i) => i.certain)), possible: and(...items.map((i) => i.possible)) };
    }
    case "or": {
      const items = filter.items.map((f) => foldCondition(f, ctx, inner));
      return { certain: or(...items.map((i) => i.certain)), possible: or(...items.map((i) => i.possible)) };
    }
    case "not": {
      const folded = foldCondition(filter.item, ctx, inner);
      return { certain: not(folded.possible), possible: not(folded.certain) };
    }
    case "exists": {
      const where = foldCondition(filter.where, ctx, true);
      const exists = (w: Filter): Filter => (isFalse(w) ? FALSE : { kind: "exists", table: filter.table, where: w });
      return { certain: exists(where.certain), possible: exists(where.possible) };
    }
    default:
      // `id` compared with a caller's value (a rule's `id == user.id`) stays a row predicate even on a route
      // naming the row: its placeholder is bound later (bindCallerValues), the evaluator cannot fold it
      if (
        !filter.field.startsWith("@") &&
        (inner || filter.field !== "id" || ctx.id === undefined || hasPlaceholders(filter))
      )
        return inner && hasPlaceholders(filter) && !bindsAll(filter, ctx)
          ? unknownRow(filter.field)
          : { certain: filter, possible: filter };
      if (ctx.claimsUnknown && filter.field !== ENTITY_KEY && filter.field !== "id") {
        if (filter.field !== "@user.role" || ctx.knownRole === undefined) return constant(null);
        return constant(
          evaluate(
            filter,
            contextLookup(() => ctx.knownRole),
          ),
        );
      }
      return constant(
        evaluate(
          filter,
          contextLookup((field) => claim(ctx, field)),
        ),
      );
  }
}

/** The condition for one entity: `@entity` folded, the rest left for the request (TRUE: always applies). */
export function bindEntity(filter: Filter, entity: string): Filter {
  switch (filter.kind) {
    case "const":
      return filter;
    case "and":
      return and(...filter.items.map((f) => bindEntity(f, entity)));
    case "or":
      return or(...filter.items.map((f) => bindEntity(f, entity)));
    case "not":
      return not(bindEntity(filter.item, entity));
    case "exists":
      return filter;
    default: {
      if (filter.field !== ENTITY_KEY) return filter;
      // `"*"` stands for whichever entity the condition is bound to
      const bound = mapOperands(filter, (o) => (o === EVERY_ENTITY ? entity : o));
      return evaluate(bound, () => entity) ? TRUE : FALSE;
    }
  }
}
