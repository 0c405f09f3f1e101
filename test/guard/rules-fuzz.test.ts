/**
 * Issue 12's fuzz test of rule expressions (§9.1), on the engine under test:
 * (a) random well-formed rules, compiled by the guard for a random caller (roles, claims present or missing,
 *     anonymous) as a filter, allow or deny policy, select in SQL exactly the rows the SPEC's three-valued
 *     reference picks (`./rule-arbs.ts`), and the same rows as the in-memory evaluator where it can judge
 *     (it answers UNKNOWN for `exists`, which needs other rows);
 * (b) malformed rules — token soup, truncated and mutated rules, deep nesting, huge literals, unicode and
 *     control characters — stop createApp with a ConfigError naming the config path, the line and the
 *     column, and nothing else (no stack overflow, no TypeError, no hang).
 */
import { type CitadelConfig, ConfigError, createApp } from "citadel";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/schema.js";
import { buildModels, type Models } from "../../src/data/models.js";
import { compileRoles } from "../../src/guard/compile.js";
import { Guard } from "../../src/guard/guard.js";
import { type Filter, someNode } from "../../src/query/ast.js";
import { compileFilter } from "../../src/query/compile.js";
import { evaluate } from "../../src/query/evaluate.js";
import { compileSchema } from "../../src/schema/compile.js";
import type { SchemaJSON } from "../../src/schema/entity.js";
import { startServer, type TestServer } from "../helpers/server.js";
import {
  claimsArb,
  evalRule,
  foldRule,
  itemArb,
  otherArb,
  printRule,
  ROLES,
  type Row,
  type RuleCaller,
  ruleArb,
  ruleSchema,
  type Tables,
} from "./rule-arbs.js";

const READ = "data.entity.read";
const USERS = 3;
const SECRET = "rules-fuzz-secret-0123456789-abcdefghijklmnopqrstu";

const configWith = (roles: Record<string, unknown>, data = ruleSchema.toJSON()): CitadelConfig =>
  ({
    data,
    auth: {
      enabled: true,
      jwt: { secret: SECRET },
      guard: { enabled: true },
      password: { argon2: { memory_cost: 1024, time_cost: 1 } },
      roles,
    },
  }) as CitadelConfig;

type Effect = "filter" | "allow" | "deny entry" | "deny policy";

/** The role `r` (the default role) and `s`, each reading items under one policy with the rule. */
function rolesFor(rule: string, effect: Effect) {
  const on = { condition: { entity: "items" } };
  const entries =
    effect === "filter"
      ? [{ permission: READ, effect: "allow", policies: [{ ...on, effect: "filter", rule }] }]
      : effect === "allow"
        ? [{ permission: READ, effect: "allow", policies: [{ ...on, effect: "allow", rule }] }]
        : effect === "deny entry"
          ? [READ, { permission: READ, effect: "deny", policies: [{ ...on, effect: "allow", rule }] }]
          : [
              {
                permission: READ,
                effect: "allow",
                policies: [
                  { ...on, effect: "deny", rule },
                  { ...on, effect: "allow" },
                ],
              },
            ];
  return Object.fromEntries(ROLES.map((role, i) => [role, { is_default: i === 0, permissions: entries }]));
}

describe("rule expressions: SQL = the reference = the in-memory evaluator (9.1, 4.12)", () => {
  let server: TestServer;
  let tables: Tables;
  let models: Models;

  beforeAll(async () => {
    const items = fc.sample(fc.array(itemArb(USERS), { minLength: 14, maxLength: 14 }), { numRuns: 1, seed: 912 })[0]!;
    const others = fc.sample(fc.array(otherArb(items.length), { minLength: 10, maxLength: 10 }), {
      numRuns: 1,
      seed: 913,
    })[0]!;
    // every value NULL once, and an other pointing at nothing
    items.push({ t: null, n: null, b: null, e: null, owner_id: null });
    others.push({ t: null, n: null, item_id: null });
    server = await startServer(configWith({ r: { is_default: true, permissions: [READ] } }), {
      options: {
        seed: async (ctx) => {
          for (let i = 1; i <= USERS; i++)
            await ctx.app.module.auth.createUser({ email: `u${i}@test.com`, password: "pass-word-1234" });
          await ctx.app.module.data.create("items", items);
          await ctx.app.module.data.create("others", others);
        },
      },
    });
    const read = async (table: string, bools: string[]) =>
      (await server.rows(`SELECT * FROM ${table} ORDER BY id`)).map(
        (r) =>
          Object.fromEntries(Object.entries(r).map(([k, v]) => [k, bools.includes(k) && v !== null ? !!v : v])) as Row,
      );
    tables = { items: await read("items", ["b"]), others: await read("others", []) };
    expect(tables.items.map(({ id, created_at, updated_at, ...rest }) => rest)).toEqual(items);
    const validated = validateConfig(configWith({}));
    models = buildModels(compileSchema(validated.data as SchemaJSON, true));
  });
  afterAll(async () => {
    await server?.close();
  });

  const callerArb: fc.Arbitrary<RuleCaller> = fc.oneof(
    fc.constant({ role: ROLES[0]! }),
    fc
      .tuple(fc.constantFrom(...ROLES), fc.integer({ min: 1, max: USERS }), claimsArb)
      .map(([role, id, claims]) => ({ role, user: { id, role, ...claims } })),
  );

  async function selected(filter: Filter): Promise<number[]> {
    const rows = await server.app.db
      .selectFrom("items")
      .select("id")
      .where((eb) => compileFilter(eb, filter, "items"))
      .orderBy("id")
      .execute();
    return rows.map((r) => Number(r.id));
  }

  it("random rules select the same rows in SQL, in the reference and in the evaluator (9.1)", async () => {
    const stats = new Map<string, number>();
    const tally = (k: string) => stats.set(k, (stats.get(k) ?? 0) + 1);
    await fc.assert(
      fc.asyncProperty(
        ruleArb(),
        callerArb,
        fc.constantFrom<Effect>("filter", "allow", "deny entry", "deny policy"),
        fc.func(fc.boolean()),
        async (rule, caller, effect, swap) => {
          const text = printRule(rule, (r) => swap(JSON.stringify(r)));
          const auth = validateConfig(configWith(rolesFor(text, effect))).auth;
          const guard = new Guard(compileRoles(auth, models), models);
          const subject = { role: caller.user ? caller.role : undefined, user: caller.user };
          const scope = guard.find(subject, READ, "items");
          const deny = effect.startsWith("deny");
          const fold = foldRule(rule, caller);
          const what = `${effect} rule ${text} for ${JSON.stringify(caller)}`;
          // an allow that cannot hold, or a deny that holds whatever the row, refuses the permission (403)
          const refused = deny ? fold.possible === true : effect === "allow" && fold.certain === false;
          expect(scope === undefined, `refused: ${what}`).toBe(refused);
          const expected = refused
            ? []
            : tables.items
                .filter((row) => {
                  const truth = evalRule(rule, { caller, tables, row });
                  return deny ? truth.possible === false : truth.certain === true;
                })
                .map((r) => r.id);
          tally(
            `${effect} ${expected.length === 0 ? "none" : expected.length === tables.items.length ? "all" : "some"}`,
          );
          if (!scope) return;
          expect(await selected(scope.filter), `SQL: ${what}\n${JSON.stringify(scope.filter)}`).toEqual(expected);
          if (!someNode(scope.filter, (n) => n.kind === "exists")) {
            const judged = tables.items.filter((row) => evaluate(scope.filter, (f) => row[f]) === true);
            expect(
              judged.map((r) => r.id),
              `evaluator: ${what}`,
            ).toEqual(expected);
            tally("evaluator compared");
          }
        },
      ),
      {
        numRuns: Number(process.env.RULES_FUZZ_RUNS ?? 500),
        ...(process.env.RULES_FUZZ_SEED ? { seed: Number(process.env.RULES_FUZZ_SEED) } : {}),
      },
    );
    if (process.env.RULES_FUZZ_STATS) console.log(Object.fromEntries([...stats].sort()));
  });
});

// ---------- (b) malformed rules ----------

const TOKENS = [
  "(",
  ")",
  "[",
  "]",
  ",",
  ".",
  "==",
  "!=",
  "<",
  ">=",
  "=",
  "!",
  "&&",
  "||",
  "and",
  "or",
  "not",
  "in",
  "not in",
  "exists",
  "exists(",
  "outer",
  "outer.t",
  "user",
  "user.",
  "user.dept",
  "record.",
  "record.n",
  "context.account_id",
  "@has_role",
  "@has_role('r')",
  "@has_any_role([",
  "@owns_record()",
  "@is_superadmin()",
  "@",
  "@nope()",
  "'a",
  "'a'",
  '"',
  "'\\q'",
  "1",
  "-",
  "-1",
  "1e999",
  "0x10",
  "1.",
  "t",
  "n",
  "b",
  "e",
  "id",
  "owner",
  "owner.id",
  "others",
  "items",
  "nope",
  "null",
  "true",
  "'@user.id'",
  "\\",
  "\n",
  "\t",
  "\r",
  "\u0000",
  "\u001b",
  "\u2028",
  "é",
  "😀",
  "\u202e",
  "\ud800",
];

const soup = fc.array(fc.constantFrom(...TOKENS), { minLength: 0, maxLength: 16 }).map((ts) => ts.join(" "));
const glued = fc.array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 16 }).map((ts) => ts.join(""));
const mutated = fc
  .tuple(ruleArb(2), fc.nat(), fc.constantFrom(...TOKENS), fc.constantFrom("cut", "drop", "insert", "double"))
  .map(([rule, at, token, how]) => {
    const text = printRule(rule);
    const i = at % (text.length + 1);
    if (how === "cut") return text.slice(0, i);
    if (how === "drop") return text.slice(0, i) + text.slice(i + 1);
    if (how === "insert") return text.slice(0, i) + token + text.slice(i);
    return text.slice(0, i) + text.slice(i / 2);
  });
const deep = fc
  .tuple(fc.integer({ min: 20, max: 6000 }), fc.constantFrom("paren", "not", "exists", "list", "open"))
  .map(([n, kind]) => {
    if (kind === "paren") return `${"(".repeat(n)}t == 'a'${")".repeat(n)}`;
    if (kind === "not") return `${"not ".repeat(n)}b`;
    if (kind === "exists") return `${"exists(others, ".repeat(n)}n > 1${")".repeat(n)}`;
    if (kind === "list") return `t in ${"[".repeat(n)}`;
    return "(".repeat(n);
  });
const huge = fc
  .tuple(fc.integer({ min: 300, max: 12_000 }), fc.constantFrom("text", "digits", "list", "name", "lines"))
  .map(([n, kind]) => {
    if (kind === "text") return `t == '${"x".repeat(n)}`;
    if (kind === "digits") return `n == ${"9".repeat(n)}`;
    if (kind === "list") return `n in [${"1, ".repeat(n)}]`;
    if (kind === "name") return `${"a".repeat(n)} == 1`;
    return `${"\n".repeat(n)}n == =`;
  });
const anyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
);
const malformed = fc.oneof(soup, glued, mutated, mutated, deep, huge, anyText);

/** Where the rule goes: a policy's rule, a policy's field rule, or an entity's field rule. */
type Place = "policy" | "field" | "entity";
function configAt(rule: string, place: Place): { config: CitadelConfig; path: string } {
  const data = ruleSchema.toJSON();
  if (place === "entity") {
    // biome-ignore lint/suspicious/noExplicitAny: the schema JSON is edited in place
    (data.entities.items as any).config = { field_rules: { t: { read: rule } } };
    return {
      config: configWith({ r: { is_default: true, permissions: [READ] } }, data),
      path: "config.data.entities.items.config.field_rules.t.read",
    };
  }
  const policy =
    place === "policy"
      ? { condition: { entity: "items" }, effect: "allow", rule }
      : { condition: { entity: "items" }, effect: "allow", fields: { n: { read: rule } } };
  return {
    config: configWith({
      r: { is_default: true, permissions: [{ permission: READ, effect: "allow", policies: [policy] }] },
    }),
    path: `config.auth.roles.r.permissions[0].policies[0].${place === "policy" ? "rule" : "fields.n.read"}`,
  };
}

describe("malformed rules stop the start with a pointed ConfigError (9.1)", () => {
  let server: TestServer;
  beforeAll(async () => {
    // valid rules that a mutation happens to make start an app on this database
    server = await startServer(configWith({ r: { is_default: true, permissions: [READ] } }));
  });
  afterAll(async () => {
    await server?.close();
  });

  it("random malformed rules: ConfigError with the path, line and column, or a start (9.1)", async () => {
    let started = 0;
    await fc.assert(
      fc.asyncProperty(malformed, fc.constantFrom<Place>("policy", "field", "entity"), async (rule, place) => {
        const { config, path } = configAt(rule, place);
        let error: unknown;
        try {
          const app = await createApp({ config, connection: server.connection, options: { log: () => {} } });
          started++;
          await app.close();
          return;
        } catch (e) {
          error = e;
        }
        const what = `${JSON.stringify(rule.slice(0, 300))} at ${place}: ${String(error)}`;
        expect(error, what).toBeInstanceOf(ConfigError);
        const message = (error as ConfigError).message;
        expect(message.startsWith(`${path}: `), what).toBe(true);
        const at = /line (\d+), column (\d+): /.exec(message);
        expect(at, what).not.toBeNull();
        const [line, column] = [Number(at![1]), Number(at![2])];
        const lines = rule.split("\n");
        expect(line, what).toBeGreaterThanOrEqual(1);
        expect(line, what).toBeLessThanOrEqual(Math.max(1, lines.length));
        expect(column, what).toBeGreaterThanOrEqual(1);
        expect(column, what).toBeLessThanOrEqual((lines[line - 1]?.length ?? 0) + 1);
        // one line of problem, then the rule's line (a window of it) and a caret under the column
        expect(message.split("\n").length, what).toBe(3);
      }),
      {
        numRuns: Number(process.env.RULES_FUZZ_RUNS ?? 500),
        ...(process.env.RULES_FUZZ_SEED ? { seed: Number(process.env.RULES_FUZZ_SEED) } : {}),
        examples: [
          ["(".repeat(5000), "policy"],
          [`${"not ".repeat(2000)}b`, "policy"],
          ["t == 'unterminated", "field"],
          ["n == 1e999", "entity"],
          ["n == 1\n  and t = 'a'", "policy"],
          ["\u0000", "policy"],
          ["", "policy"],
          ["exists(others, outer.t == t)", "policy"],
        ],
      },
    );
    expect(started).toBeLessThan(Number(process.env.RULES_FUZZ_RUNS ?? 500));
  });
});
