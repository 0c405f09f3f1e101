/**
 * Rule expressions (§9.1) compiled into the one Filter AST, once per role and entity at startup:
 * - what is known from the role alone folds now (`@has_role`, `@has_any_role`, `@is_superadmin`);
 * - what is about the caller becomes a request-context field (`@user.<claim>`, `@context.account_id`), folded
 *   per request with three-valued logic like a policy condition;
 * - what is about the row is a row predicate, whose caller values are placeholders bound per request;
 * - `exists(entity, …)` is an EXISTS subquery whose `outer.<field>` names the enclosing row.
 * Row leaves are built by the where parser itself, so a rule checks fields and values exactly as a filter does.
 */
import { ConfigError } from "../errors.js";
import type { CompiledField } from "../schema/compiled.js";
import { and, type Comparison, FALSE, type Filter, not, or, type Scalar, TRUE } from "./ast.js";
import { evaluate } from "./evaluate.js";
import { parseRuleSyntax, RuleError, type RuleLiteral, type RuleNode, type RuleOperator } from "./rule-syntax.js";
import { comparedAs, parseWhere, type Reach } from "./where.js";

export { RuleError } from "./rule-syntax.js";

/** What a rule is compiled for: the entity its row belongs to and the role asking. */
export interface RuleTarget {
  /** the entity's fields and relations, trusted as a policy's are (§4.13) */
  reach: Reach;
  /** the role the rule is compiled for; undefined for a caller without a role */
  role: string | undefined;
  /** `config.tenancy.superadmin_role`, for `@is_superadmin()` */
  superadminRole?: string;
}

/** A request-context value as a field of the condition language (`@user.role`, `@context.account_id`). */
export const contextField = (name: string, type: CompiledField["type"]): CompiledField => ({
  name,
  type,
  config: {},
  system: true,
  hidden: false,
});

const CLAIM = /^[A-Za-z_]\w*$/;
const OPERATORS: Record<RuleOperator, Comparison> = {
  "==": "$eq",
  "!=": "$ne",
  "<": "$lt",
  "<=": "$lte",
  ">": "$gt",
  ">=": "$gte",
};
/** `a < b` read from the other side: `b > a`. */
const FLIPPED: Record<Comparison, Comparison> = {
  $eq: "$eq",
  $ne: "$ne",
  $lt: "$gt",
  $lte: "$gte",
  $gt: "$lt",
  $gte: "$lte",
};

/** One side of a comparison, once its path is resolved. */
type Side =
  | { kind: "literal"; value: Scalar }
  | { kind: "row"; field: string }
  /** the caller: `name` is the placeholder / context key, e.g. `user.id`, `context.account_id` */
  | { kind: "caller"; name: string }
  | { kind: "outer"; field: string };

interface Frame {
  reach: Reach;
  outer?: Frame;
}

class RuleCompiler {
  constructor(
    private readonly source: string,
    private readonly target: RuleTarget,
  ) {}

  private fail(node: RuleNode, problem: string): never {
    throw new RuleError(node.at, problem, this.source);
  }

  compile(node: RuleNode, frame: Frame): Filter {
    switch (node.kind) {
      case "or":
        return or(...node.items.map((n) => this.compile(n, frame)));
      case "and":
        return and(...node.items.map((n) => this.compile(n, frame)));
      case "not":
        return not(this.compile(node.item, frame));
      case "compare":
        return this.comparison(node, frame);
      case "in":
        return this.membership(node, frame);
      case "call":
        return this.call(node, frame);
      case "exists":
        return this.exists(node, frame);
      case "literal":
        if (typeof node.value === "boolean") return node.value ? TRUE : FALSE;
        return this.fail(node, "expected a condition, found a lone value");
      case "path": {
        // a bare boolean: `published`, `user.verified`
        const side = this.side(node, frame);
        if (side.kind === "row" && frame.reach.resolve(side.field)?.type !== "boolean")
          this.fail(node, `"${side.field}" is not a boolean: compare it (==, !=, in …)`);
        return this.leaf(node, side, "$eq", { kind: "literal", value: true }, frame);
      }
    }
  }

  /** Resolve a path: `user.<claim>`, `context.account_id`, `record.<field>`, `outer.<field>` or a field. */
  private side(node: RuleNode, frame: Frame): Side {
    if (node.kind === "literal") return { kind: "literal", value: node.value };
    if (node.kind !== "path") return this.fail(node, "expected a value or a name here");
    const [head, ...rest] = node.parts as [string, ...string[]];
    if (head === "user") {
      if (rest.length !== 1 || !CLAIM.test(rest[0]!)) this.fail(node, "expected user.<claim>, e.g. user.id");
      return { kind: "caller", name: `user.${rest[0]}` };
    }
    if (head === "context") {
      if (rest.length !== 1 || rest[0] !== "account_id") this.fail(node, "expected context.account_id");
      return { kind: "caller", name: "context.account_id" };
    }
    if (head === "outer") {
      if (!frame.outer) this.fail(node, "outer.<field> names the enclosing row: only inside exists(…)");
      if (rest.length !== 1) this.fail(node, "expected outer.<field>");
      if (!frame.outer!.reach.resolve(rest[0]!))
        this.fail(node, `unknown field "${rest[0]}" of ${frame.outer!.reach.entity}`);
      return { kind: "outer", field: rest[0]! };
    }
    const parts = head === "record" ? rest : node.parts;
    if (parts.length !== 1)
      this.fail(node, `expected a field of ${frame.reach.entity} (relations are followed with exists(…))`);
    if (!frame.reach.resolve(parts[0]!)) this.fail(node, `unknown field "${parts[0]}" of ${frame.reach.entity}`);
    return { kind: "row", field: parts[0]! };
  }

  private comparison(node: Extract<RuleNode, { kind: "compare" }>, frame: Frame): Filter {
    const left = this.side(node.left, frame);
    const right = this.side(node.right, frame);
    const op = OPERATORS[node.op];
    // keep the row (or, failing that, the caller) on the left
    const rank = (s: Side) => (s.kind === "row" ? 0 : s.kind === "caller" ? 1 : 2);
    return rank(right) < rank(left)
      ? this.leaf(node, right, FLIPPED[op], left, frame)
      : this.leaf(node, left, op, right, frame);
  }

  private leaf(node: RuleNode, left: Side, op: Comparison, right: Side, frame: Frame): Filter {
    if (left.kind === "literal" && right.kind === "literal") {
      if (left.value === null || right.value === null)
        return this.fail(node, "compare a name with null (x == null), not two values");
      const truth = evaluate({ kind: "compare", field: "v", op, value: right.value }, () => left.value);
      return truth ? TRUE : FALSE;
    }
    if (left.kind === "outer" || (left.kind === "caller" && right.kind !== "literal"))
      this.fail(node, "compare a field of the row with the caller, a value or outer.<field>");
    if (left.kind === "row" && right.kind === "row")
      this.fail(node, "two fields of the same row cannot be compared; compare one with a value or the caller");
    if (left.kind === "caller")
      return this.where({ [left.name]: { [op]: (right as { value: Scalar }).value } }, node, true);
    const field = (left as { field: string }).field;
    if (right.kind === "outer") return this.outer(node, field, op, right.field, frame);
    const value = right.kind === "caller" ? `@${right.name}` : (right as { value: Scalar }).value;
    if (typeof value === "string" && value.startsWith("@") && right.kind === "literal")
      this.fail(node, 'a string starting with "@" is reserved for the caller; write user.<claim>');
    return this.where({ [field]: { [op]: value } }, node, false, frame);
  }

  private outer(node: RuleNode, field: string, op: Comparison, outerField: string, frame: Frame): Filter {
    const inner = frame.reach.resolve(field)!;
    const outer = frame.outer!.reach.resolve(outerField)!;
    if (comparedAs(inner.type) !== comparedAs(outer.type))
      this.fail(node, `"${field}" holds ${comparedAs(inner.type)}s and outer.${outerField} ${comparedAs(outer.type)}s`);
    if (inner.type === "json" || outer.type === "json") this.fail(node, "json fields cannot be compared");
    // two ciphertexts of one value differ (§10.1): a comparison across rows would compare the ciphertexts
    if (inner.encrypted || outer.encrypted) this.fail(node, "encrypted fields cannot be compared across rows");
    return { kind: "compare", field, op, value: { outer: outerField } };
  }

  private membership(node: Extract<RuleNode, { kind: "in" }>, frame: Frame): Filter {
    const side = this.side(node.item, frame);
    if (side.kind === "literal" || side.kind === "outer")
      return this.fail(node, "the left of in/not in is a field of the row or the caller");
    const name = side.kind === "row" ? side.field : side.name;
    if (side.kind === "row" && node.values.some((v) => typeof v === "string" && v.startsWith("@")))
      this.fail(node, 'a string starting with "@" is reserved for the caller; write user.<claim>');
    return this.where(
      { [name]: { [node.negated ? "$nin" : "$in"]: node.values } },
      node,
      side.kind === "caller",
      frame,
    );
  }

  /** A leaf through the where parser: the same field, operator and type checks as every filter. */
  private where(input: Record<string, unknown>, node: RuleNode, caller: boolean, frame?: Frame): Filter {
    const reach = frame?.reach;
    try {
      return parseWhere(input, caller ? (name) => contextField(`@${name}`, "text") : (name) => reach!.resolve(name), {
        placeholders: !caller,
        reach,
        asConfigError: true,
        path: "rule",
      });
    } catch (error) {
      if (error instanceof ConfigError) this.fail(node, error.problem);
      throw error;
    }
  }

  private call(node: Extract<RuleNode, { kind: "call" }>, frame: Frame): Filter {
    const { role, superadminRole } = this.target;
    const strings = (arg: RuleLiteral | RuleLiteral[] | undefined) =>
      Array.isArray(arg) && arg.every((a) => typeof a === "string") ? (arg as string[]) : undefined;
    const arity = (n: number, shape: string) => {
      if (node.args.length !== n) this.fail(node, `@${node.name} takes ${shape}`);
    };
    switch (node.name) {
      case "has_role": {
        arity(1, "one role name: @has_role('admin')");
        if (typeof node.args[0] !== "string") this.fail(node, "@has_role takes a role name in quotes");
        return role === node.args[0] ? TRUE : FALSE;
      }
      case "has_any_role": {
        arity(1, "a list of role names: @has_any_role(['admin', 'editor'])");
        const roles = strings(node.args[0]);
        if (!roles) return this.fail(node, "@has_any_role takes a list of role names in quotes");
        return role !== undefined && roles.includes(role) ? TRUE : FALSE;
      }
      case "is_superadmin":
        arity(0, "no arguments");
        if (!superadminRole) this.fail(node, "@is_superadmin() needs config.tenancy.superadmin_role");
        return role === superadminRole ? TRUE : FALSE;
      case "owns_record":
        arity(0, "no arguments");
        if (!frame.reach.owner)
          this.fail(
            node,
            `@owns_record(): "${frame.reach.entity}" has no owner relation (manyToOne(users, { owner: true }))`,
          );
        return this.where({ $owner: true }, node, false, frame);
      default:
        return this.fail(
          node,
          `unknown function @${node.name} (expected @has_role, @has_any_role, @owns_record, @is_superadmin)`,
        );
    }
  }

  private exists(node: Extract<RuleNode, { kind: "exists" }>, frame: Frame): Filter {
    const reach = frame.reach.other(node.entity);
    if (!reach) return this.fail(node, `unknown entity "${node.entity}"`);
    let depth = 0;
    for (let f: Frame | undefined = frame; f; f = f.outer) depth++;
    if (depth > 4) this.fail(node, "exists(…) nests at most 4 deep");
    return {
      kind: "exists",
      table: reach.entity,
      where: and(reach.scope, this.compile(node.where, { reach, outer: frame })),
    };
  }
}

/** Parse and compile a rule for one entity and role; RuleError points at the line and column of a problem. */
export function compileRule(source: string, target: RuleTarget): Filter {
  const tree = parseRuleSyntax(source);
  return new RuleCompiler(source, target).compile(tree, { reach: target.reach });
}

/** Parse a rule's syntax alone (at startup, before knowing which entities it applies to). */
export function checkRuleSyntax(source: string): RuleNode {
  return parseRuleSyntax(source);
}
