/**
 * Tenant isolation (§6) with the guard (§4), per principal: every data route (§2) against the caller's own note,
 * a public and a private note of its tenant, another tenant's note (and one a comment in the caller's tenant
 * links to) and a missing one. What each case must answer comes from its op's `decide`, the SPEC's rule restated
 * over plain rows (the tenant scope AND the role's policy in tenancyConfig()), never from the implementation.
 * After every refused write the database is as it was; after every allowed one it is what the rule says.
 *
 * Rows are made trusted (`app.module.data.create`, which may set account_id): one shared note and comment per
 * read target, and rows of its own for each write case, removed after each principal.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apikey, createKey } from "../auth/api-keys-fixture.js";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestResponse, type TestServer } from "../helpers/server.js";
import { PASSWORD, PEOPLE, type Person, seedTenants, tenancyConfig } from "./fixture.js";

type Account = "A" | "B";
type Who = Person | "dan";
type Role = "anonymous" | "member" | "admin" | "superadmin" | "secret";
type Entity = "notes" | "comments" | "users" | "accounts";
type Verb = "read" | "create" | "update" | "delete";

/** A row as the rule sees it: its tenant (an account's is itself), and for a note its author and whether it is public. */
interface Sym {
  account: Account | null;
  author?: Who | null;
  public?: boolean;
}

interface Principal {
  name: string;
  /** the role it acts as: a user's, the publishable role (anonymous), or a secret key's bypass */
  role: Role;
  /** the account its token or key binds it to (§6.1) */
  tenant: Account | null;
  user?: Person;
  key?: "pk" | "skA" | "sk";
  /** a key of one account beside a user of another: refused whatever it asks (§6.1) */
  clash?: true;
}

const PRINCIPALS: Principal[] = [
  { name: "anonymous", role: "anonymous", tenant: null },
  { name: "publishable key (A)", role: "anonymous", tenant: "A", key: "pk" },
  { name: "publishable key (A) + alice", role: "member", tenant: "A", key: "pk", user: "alice" },
  { name: "publishable key (A) + carol (B)", role: "member", tenant: "B", key: "pk", user: "carol", clash: true },
  { name: "alice (A)", role: "member", tenant: "A", user: "alice" },
  { name: "bob (A)", role: "member", tenant: "A", user: "bob" },
  { name: "carol (B)", role: "member", tenant: "B", user: "carol" },
  { name: "adam, admin of A", role: "admin", tenant: "A", user: "adam" },
  { name: "root, superadmin without an account", role: "superadmin", tenant: null, user: "root" },
  { name: "secret key (A)", role: "secret", tenant: "A", key: "skA" },
  { name: "secret key without a tenant", role: "secret", tenant: null, key: "sk" },
];

/** Every tenant (superadmin, a secret key without a tenant), one, or none (§6.2). */
const reach = (p: Principal): Account | "all" | null =>
  p.role === "superadmin" || (p.role === "secret" && p.tenant === null) ? "all" : p.tenant;
const inTenant = (p: Principal, row: Sym) => reach(p) === "all" || (reach(p) !== null && row.account === reach(p));
/** Where its rows live (A for the principals without an account), and the other account. */
const homeOf = (p: Principal): Account => p.tenant ?? "A";
const awayOf = (p: Principal): Account => (homeOf(p) === "A" ? "B" : "A");
/** The account a row the principal creates gets: its own, none when it reaches every tenant (§6.2). */
const createdIn = (p: Principal): Account | null => (reach(p) === "all" ? null : p.tenant);

type Rule = (row: Sym, p: Principal) => boolean;
const any: Rule = () => true;
const own: Rule = (row, p) => p.user !== undefined && row.author === p.user;
const every = { notes: any, comments: any, users: any, accounts: any };
const all = { read: every, create: every, update: every, delete: every };
/** tenancyConfig()'s roles; a secret key bypasses the guard (§5.1). Absent: the role lacks the permission. */
const POLICIES: Record<Role, Partial<Record<Verb, Partial<Record<Entity, Rule>>>>> = {
  anonymous: { read: { notes: (row) => row.public === true } },
  member: { read: every, create: { notes: any, comments: any }, update: { notes: own }, delete: { notes: own } },
  admin: all,
  superadmin: all,
  secret: all,
};

/** The rows of `entity` the principal may `verb`: its tenant AND its role's policy; undefined is 403 (§4.2). */
function scope(p: Principal, verb: Verb, entity: Entity): ((row: Sym) => boolean) | undefined {
  const rule = POLICIES[p.role][verb]?.[entity];
  return rule && ((row) => inTenant(p, row) && rule(row, p));
}
const sees = (p: Principal, entity: Entity, row: Sym | undefined) =>
  row !== undefined && (scope(p, "read", entity)?.(row) ?? false);

/** The target kinds, relative to the principal ("own" only for one with a user). */
const READ_TARGETS = ["own", "same tenant", "same tenant, private", "other tenant", "missing"];
/** where a comment is read, also another tenant's note a comment in the caller's tenant links to (planted) */
const COMMENT_TARGETS = [...READ_TARGETS, "other tenant, linked"];
/** a where following the comment's note: what matters is a comment of the caller's tenant on another's note */
const PATH_TARGETS = ["own", "same tenant", "other tenant, linked"];
/** the same route with the where in a body: a shorter row of the table */
const FEW_TARGETS = ["same tenant", "other tenant", "missing"];
/** no write policy looks at `public`, so writes skip the private note */
const WRITE_TARGETS = ["own", "same tenant", "other tenant", "missing"];
type Target = { note: Sym; comment: Sym; label: string } | { note: undefined; comment: undefined; label: string };

const USERS: Record<Account, Who[]> = { A: ["alice", "bob", "adam"], B: ["carol", "dan"] };
const accountOf = (who: Person): Account | null => PEOPLE[who].account ?? null;
const peer = (account: Account, p: Principal) => USERS[account].find((u) => u !== p.user)!;

function target(p: Principal, kind: string): Target | undefined {
  const home = homeOf(p);
  const away = awayOf(p);
  const note = (account: Account | null, author: Who, pub: boolean, linkedFrom?: Account): Target => ({
    note: { account, author, public: pub },
    comment: { account: linkedFrom ?? account },
    label: `${author}'s ${pub ? "" : "private "}note (${account ?? "no account"})${linkedFrom ? `, its comment in ${linkedFrom}` : ""}`,
  });
  if (kind === "own") return p.user ? note(accountOf(p.user), p.user, true) : undefined;
  if (kind === "same tenant") return note(home, peer(home, p), true);
  if (kind === "same tenant, private") return note(home, peer(home, p), false);
  if (kind === "other tenant") return note(away, USERS[away][0]!, true);
  if (kind === "other tenant, linked") return note(away, USERS[away][0]!, true, home);
  return { note: undefined, comment: undefined, label: "a missing note" };
}

/** Every note and comment in the database, as the rule sees them, for what lists must return. */
interface World {
  notes: (Sym & { id: number })[];
  comments: (Sym & { id: number; note_id: number | null })[];
  users: (Sym & { id: number })[];
  accounts: (Sym & { id: number })[];
}
const EMPTY: World = { notes: [], comments: [], users: [], accounts: [] };

interface Ctx {
  p: Principal;
  t: Target | undefined;
  world: World;
}
interface Decision {
  status: number;
  /** the response as `shape` reduces it: target rows as "note", "comment", "mover" */
  seen?: unknown;
}

/** What a list answers (§2.1, §4.5): the visible candidates, counted, and every visible row as its total. */
function listed(c: Ctx, entity: Entity, rows: { row: Sym | undefined; as: unknown }[]): Decision {
  const read = scope(c.p, "read", entity);
  if (!read) return { status: 403 };
  const seen = rows.filter((r) => r.row !== undefined && read(r.row)).map((r) => r.as);
  return { status: 200, seen: { rows: seen, count: seen.length, total: c.world[entity].filter(read).length } };
}
/** A single-row write (§4.5): 403 without the permission, 404 for a row it cannot see, 403 for one outside it. */
function single(c: Ctx, verb: Verb, entity: Entity, row: Sym | undefined, seen: unknown): Decision {
  const write = scope(c.p, verb, entity);
  if (!write) return { status: 403 };
  const visible = scope(c.p, "read", entity) ?? write;
  if (!row || !visible(row)) return { status: 404 };
  return write(row) ? { status: 200, seen } : { status: 403 };
}
/** A many-row write reaches the rows it may both read and write, and 403s only without the permission. */
function many(c: Ctx, verb: Verb, rows: { row: Sym | undefined; as: unknown }[]): Decision {
  const write = scope(c.p, verb, "notes");
  if (!write) return { status: 403 };
  const read = scope(c.p, "read", "notes") ?? write;
  return { status: 200, seen: rows.filter(({ row }) => row && read(row) && write(row)).map((r) => r.as) };
}

/** The ids of one case; `other` is the account the principal's `where` names in "… naming the other tenant". */
interface Ids {
  note: number;
  /** the target note's title: unique, and in no other row */
  title: string;
  comment: number;
  mover: number;
  other: number;
  A: number;
  B: number;
}
interface Db {
  notes: Row[];
  comments: Row[];
  users: Row[];
  accounts: Row[];
}
/** The response's ids as `decide` names them: target rows as "note"/"comment"/"mover", accounts and users by name. */
interface Names {
  row(id: unknown): unknown;
  account(id: unknown): unknown;
  user(id: unknown): unknown;
}
interface Op {
  name: string;
  spec: string;
  /** the targets it runs against; none: once per principal */
  targets: readonly string[];
  /** a write: run on fresh rows, the database checked afterwards */
  write?: boolean;
  /** a comment of the principal's home account, to move onto the target */
  mover?: boolean;
  request(ids: Ids, p: Principal): [method: string, path: string, body?: unknown];
  decide(c: Ctx): Decision;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are arbitrary JSON
  shape(body: any, n: Names): unknown;
  /** the database after an allowed write, by the rule */
  effect?(db: Db, ids: Ids, res: TestResponse, p: Principal, seen: unknown): Db;
}

const q = (value: unknown) => encodeURIComponent(JSON.stringify(value));
// biome-ignore lint/suspicious/noExplicitAny: response bodies are arbitrary JSON
const rowsOf = (b: any, n: Names) => ({
  rows: b.data.map((r: Row) => n.row(r.id)),
  count: b.meta.count,
  total: b.meta.total,
});
const target1 = (c: Ctx) => [{ row: c.t?.note, as: "note" }];
const whole = (c: Ctx, entity: Entity, keep: (row: Sym) => boolean = () => true) =>
  c.world[entity].filter(keep).map((row) => ({ row, as: row.id }));
const counted = (c: Ctx) => {
  const d = listed(c, "notes", target1(c));
  return d.status === 200 ? { status: 200, seen: (d.seen as { count: number }).count } : d;
};
const existing = (c: Ctx) => {
  const d = counted(c);
  return d.status === 200 ? { status: 200, seen: d.seen === 1 } : d;
};
const readOne = (c: Ctx, seen: unknown): Decision =>
  !scope(c.p, "read", "notes")
    ? { status: 403 }
    : sees(c.p, "notes", c.t?.note)
      ? { status: 200, seen }
      : { status: 404 };
const titled = (db: Db, ids: unknown[]): Db => ({
  ...db,
  notes: db.notes.map((r) => (ids.includes(r.id) ? { ...r, title: "edited" } : r)),
});
const deleted = (db: Db, id: number): Db => ({
  ...db,
  notes: db.notes.filter((r) => r.id !== id),
  comments: db.comments.map((r) => (r.note_id === id ? { ...r, note_id: null } : r)),
});
const created = (db: Db, table: "notes" | "comments", row: Row): Db => ({
  ...db,
  [table]: [...db[table], row].sort((x, y) => x.id - y.id),
});
const accountId = (ids: Ids, account: Account | null) => (account === null ? null : ids[account]);
const NEW_COMMENT = "a new comment";

const OPS: Op[] = [
  {
    name: "list",
    spec: "6.1, 4.5, 2.1",
    targets: READ_TARGETS,
    request: (ids) => ["GET", `/api/data/notes?where=${q({ id: ids.note })}`],
    decide: (c) => listed(c, "notes", target1(c)),
    shape: rowsOf,
  },
  {
    name: "list (POST query)",
    spec: "6.1, 2",
    targets: FEW_TARGETS,
    request: (ids) => ["POST", "/api/data/notes/query", { where: { id: ids.note } }],
    decide: (c) => listed(c, "notes", target1(c)),
    shape: rowsOf,
  },
  {
    name: "count",
    spec: "6.1, 4.5",
    targets: READ_TARGETS,
    request: (ids) => ["GET", `/api/data/notes/count?where=${q({ id: ids.note })}`],
    decide: counted,
    shape: (b) => b.data.count,
  },
  {
    name: "exists",
    spec: "6.1, 4.5",
    targets: READ_TARGETS,
    request: (ids) => ["GET", `/api/data/notes/exists?where=${q({ id: ids.note })}`],
    decide: existing,
    shape: (b) => b.data.exists,
  },
  {
    name: "count (bknd fn/count)",
    spec: "6.1, 2",
    targets: FEW_TARGETS,
    request: (ids) => ["POST", "/api/data/entity/notes/fn/count", { id: ids.note }],
    decide: counted,
    shape: (b) => b.count,
  },
  {
    name: "exists (bknd fn/exists)",
    spec: "6.1, 2",
    targets: FEW_TARGETS,
    request: (ids) => ["POST", "/api/data/entity/notes/fn/exists", { id: ids.note }],
    decide: existing,
    shape: (b) => b.exists,
  },
  {
    name: "read one",
    spec: "6.2, 4.5, 4.10",
    targets: READ_TARGETS,
    request: (ids) => ["GET", `/api/data/notes/${ids.note}`],
    decide: (c) => readOne(c, "note"),
    shape: (b, n) => n.row(b.data.id),
  },
  {
    name: "read one with comments",
    spec: "6.1, 4.5",
    targets: COMMENT_TARGETS,
    request: (ids) => ["GET", `/api/data/notes/${ids.note}?with=comments`],
    decide: (c) => {
      const comments = !scope(c.p, "read", "comments")
        ? "omitted"
        : sees(c.p, "comments", c.t?.comment)
          ? ["comment"]
          : [];
      return readOne(c, { id: "note", comments });
    },
    shape: (b, n) => ({ id: n.row(b.data.id), comments: b.data.comments?.map((r: Row) => n.row(r.id)) ?? "omitted" }),
  },
  {
    name: "comments with their note",
    spec: "6.1, 4.5",
    targets: COMMENT_TARGETS,
    request: (ids) => ["GET", `/api/data/comments?where=${q({ id: ids.comment })}&with=note`],
    decide: (c) => {
      const note = sees(c.p, "notes", c.t?.note) ? "note" : null;
      return listed(c, "comments", [{ row: c.t?.comment, as: { id: "comment", note } }]);
    },
    shape: (b, n) => ({
      ...rowsOf(b, n),
      rows: b.data.map((r: Row) => ({
        id: n.row(r.id),
        note: r.note === undefined ? "omitted" : r.note && n.row(r.note.id),
      })),
    }),
  },
  {
    name: "comments whose note has its title",
    spec: "6.2, 4.13",
    targets: PATH_TARGETS,
    request: (ids) => ["GET", `/api/data/comments?where=${q({ note: { title: ids.title } })}`],
    decide: (c) =>
      listed(c, "comments", [{ row: sees(c.p, "notes", c.t?.note) ? c.t?.comment : undefined, as: "comment" }]),
    shape: rowsOf,
  },
  {
    name: "comments with $exists a note of its title",
    spec: "6.2, 4.13",
    targets: PATH_TARGETS,
    request: (ids) => {
      const where = { $exists: { entity: "notes", where: { id: "@row.note_id", title: ids.title } } };
      return ["GET", `/api/data/comments?where=${q(where)}`];
    },
    decide: (c) =>
      listed(c, "comments", [{ row: sees(c.p, "notes", c.t?.note) ? c.t?.comment : undefined, as: "comment" }]),
    shape: rowsOf,
  },
  {
    name: "reference route (notes/:id/comments)",
    spec: "6.1, 4.5",
    targets: COMMENT_TARGETS,
    request: (ids) => ["GET", `/api/data/notes/${ids.note}/comments`],
    decide: (c) => {
      const parent = readOne(c, undefined);
      if (parent.status !== 200) return parent;
      const d = listed(c, "comments", [{ row: c.t?.comment, as: "comment" }]);
      if (d.status !== 200) return d;
      const { rows } = d.seen as { rows: unknown[] };
      return { status: 200, seen: { rows, count: rows.length } };
    },
    shape: (b, n) => ({ rows: b.data.map((r: Row) => n.row(r.id)), count: b.meta.count }),
  },
  {
    name: "list all notes",
    spec: "6.1, 4.5, 2.1",
    targets: [],
    request: () => ["GET", "/api/data/notes?sort=id&limit=1000"],
    decide: (c) => listed(c, "notes", whole(c, "notes")),
    shape: rowsOf,
  },
  {
    name: "list all comments",
    spec: "6.1, 4.5, 2.1",
    targets: [],
    request: () => ["GET", "/api/data/comments?sort=id&limit=1000"],
    decide: (c) => listed(c, "comments", whole(c, "comments")),
    shape: rowsOf,
  },
  {
    name: "list users",
    spec: "6.1, 6.4",
    targets: [],
    request: () => ["GET", "/api/data/users?sort=id&limit=1000"],
    decide: (c) => listed(c, "users", whole(c, "users")),
    shape: rowsOf,
  },
  {
    name: "list accounts",
    spec: "6.1",
    targets: [],
    request: () => ["GET", "/api/data/accounts?sort=id"],
    decide: (c) => listed(c, "accounts", whole(c, "accounts")),
    shape: rowsOf,
  },
  {
    name: "read the other account",
    spec: "6.2",
    targets: [],
    request: (ids) => ["GET", `/api/data/accounts/${ids.other}`],
    decide: (c) => {
      const other = { account: awayOf(c.p) };
      if (!scope(c.p, "read", "accounts")) return { status: 403 };
      return sees(c.p, "accounts", other) ? { status: 200, seen: awayOf(c.p) } : { status: 404 };
    },
    shape: (b, n) => n.account(b.data.id),
  },
  {
    name: "list naming the other tenant's account_id",
    spec: "6.2, 4.3a",
    targets: [],
    request: (ids) => ["GET", `/api/data/notes?where=${q({ account_id: ids.other })}&sort=id&limit=1000`],
    decide: (c) =>
      listed(
        c,
        "notes",
        whole(c, "notes", (row) => row.account === awayOf(c.p)),
      ),
    shape: rowsOf,
  },
  {
    name: "create a note",
    spec: "6.2, 4.14",
    targets: [],
    write: true,
    request: () => ["POST", "/api/data/notes", { title: "a new note" }],
    decide: (c) =>
      scope(c.p, "create", "notes")
        ? { status: 201, seen: { account: createdIn(c.p), author: c.p.user ?? null } }
        : { status: 403 },
    shape: (b, n) => ({ account: n.account(b.data.account_id), author: n.user(b.data.author_id) }),
    effect: (db, ids, res, p) =>
      created(db, "notes", {
        id: res.body.data.id,
        title: "a new note",
        public: 0,
        author_id: p.user ? db.users.find((u) => u.email === PEOPLE[p.user!].email)!.id : null,
        account_id: accountId(ids, createdIn(p)),
      }),
  },
  {
    name: "create a comment on it",
    spec: "6.2, 4.17",
    targets: WRITE_TARGETS,
    write: true,
    request: (ids) => ["POST", "/api/data/comments", { body: NEW_COMMENT, note_id: ids.note }],
    decide: (c) => {
      if (!scope(c.p, "create", "comments")) return { status: 403 };
      if (!sees(c.p, "notes", c.t?.note)) return { status: 409 };
      return { status: 201, seen: { note: "note", account: createdIn(c.p) } };
    },
    shape: (b, n) => ({ note: n.row(b.data.note_id), account: n.account(b.data.account_id) }),
    effect: (db, ids, res, p) =>
      created(db, "comments", {
        id: res.body.data.id,
        body: NEW_COMMENT,
        note_id: ids.note,
        account_id: accountId(ids, createdIn(p)),
      }),
  },
  {
    name: "move a comment of its own tenant onto it",
    spec: "6.2, 4.17",
    targets: WRITE_TARGETS,
    write: true,
    mover: true,
    request: (ids) => ["PATCH", `/api/data/comments/${ids.mover}`, { note_id: ids.note }],
    decide: (c) => {
      const d = single(c, "update", "comments", { account: homeOf(c.p) }, { id: "mover", note: "note" });
      if (d.status !== 200) return d;
      if (!sees(c.p, "notes", c.t?.note)) return { status: 409 };
      // one who reaches every tenant sees the note, but a key between two tenants' rows is refused (6.2)
      const onto = c.t?.note?.account;
      return onto !== undefined && onto !== null && onto !== homeOf(c.p) ? { status: 400 } : d;
    },
    shape: (b, n) => ({ id: n.row(b.data.id), note: n.row(b.data.note_id) }),
    effect: (db, ids) => ({
      ...db,
      comments: db.comments.map((r) => (r.id === ids.mover ? { ...r, note_id: ids.note } : r)),
    }),
  },
  {
    name: "update one",
    spec: "6.1, 4.5, 4.6",
    targets: WRITE_TARGETS,
    write: true,
    request: (ids) => ["PATCH", `/api/data/notes/${ids.note}`, { title: "edited" }],
    decide: (c) => single(c, "update", "notes", c.t?.note, { id: "note", title: "edited" }),
    shape: (b, n) => ({ id: n.row(b.data.id), title: b.data.title }),
    effect: (db, ids) => titled(db, [ids.note]),
  },
  {
    name: "update many",
    spec: "6.1, 2",
    targets: WRITE_TARGETS,
    write: true,
    request: (ids) => ["PATCH", "/api/data/notes", { update: { title: "edited" }, where: { id: ids.note } }],
    decide: (c) => many(c, "update", [{ row: c.t?.note, as: { id: "note", title: "edited" } }]),
    shape: (b, n) => b.data.map((r: Row) => ({ id: n.row(r.id), title: r.title })),
    effect: (db, ids, _res, _p, seen) => ((seen as unknown[]).length > 0 ? titled(db, [ids.note]) : db),
  },
  {
    name: "update many naming the other tenant's account_id",
    spec: "6.2, 4.3a",
    targets: [],
    write: true,
    request: (ids) => ["PATCH", "/api/data/notes", { update: { title: "edited" }, where: { account_id: ids.other } }],
    decide: (c) => {
      const rows = whole(c, "notes", (row) => row.account === awayOf(c.p));
      return many(
        c,
        "update",
        rows.map(({ row, as }) => ({ row, as: { id: as, title: "edited" } })),
      );
    },
    shape: (b) => b.data.map((r: Row) => ({ id: r.id, title: r.title })),
    effect: (db, _ids, _res, _p, seen) =>
      titled(
        db,
        (seen as { id: number }[]).map((r) => r.id),
      ),
  },
  {
    name: "delete one",
    spec: "6.1, 4.5",
    targets: WRITE_TARGETS,
    write: true,
    request: (ids) => ["DELETE", `/api/data/notes/${ids.note}`],
    decide: (c) => single(c, "delete", "notes", c.t?.note, "note"),
    shape: (b, n) => n.row(b.data.id),
    effect: (db, ids) => deleted(db, ids.note),
  },
  {
    name: "delete many",
    spec: "6.1, 2",
    targets: WRITE_TARGETS,
    write: true,
    request: (ids) => ["DELETE", "/api/data/notes", { id: ids.note }],
    decide: (c) => many(c, "delete", [{ row: c.t?.note, as: "note" }]),
    shape: (b, n) => b.data.map((r: Row) => n.row(r.id)),
    effect: (db, ids, _res, _p, seen) => ((seen as unknown[]).length > 0 ? deleted(db, ids.note) : db),
  },
];

/**
 * Everything a refused write could have touched, as stored: the four tables in one statement (a round trip to a
 * server engine per table made up most of a write case).
 */
async function snapshot(server: TestServer): Promise<Db> {
  const rows = await server.rows(
    `SELECT 'notes' AS t, id, title AS a, CAST(public AS INTEGER) AS b, author_id AS c, account_id AS d, NULL AS e FROM notes
     UNION ALL SELECT 'comments', id, body, NULL, note_id, account_id, NULL FROM comments
     UNION ALL SELECT 'users', id, email, NULL, NULL, account_id, role FROM users
     UNION ALL SELECT 'accounts', id, name, NULL, NULL, NULL, slug FROM accounts
     ORDER BY t, id`,
  );
  const of = (t: string) => rows.filter((r) => r.t === t);
  return {
    notes: of("notes").map((r) => ({ id: r.id, title: r.a, public: r.b, author_id: r.c, account_id: r.d })),
    comments: of("comments").map((r) => ({ id: r.id, body: r.a, note_id: r.c, account_id: r.d })),
    users: of("users").map((r) => ({ id: r.id, email: r.a, role: r.e, account_id: r.d })),
    accounts: of("accounts").map((r) => ({ id: r.id, name: r.a, slug: r.e })),
  };
}

/** Ids no row has. */
const MISSING = { note: 999_999, comment: 999_998, mover: 999_997, title: "no such title" };
/** In every target's title and comment: a refusal's body must never contain it. */
const MARK = "matrix-row";
const ERROR_CODES: Record<number, string> = {
  400: "validation_failed",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
};

/** The cases of one principal: each op once, or against each target the principal has. */
type Case = { op: Op; kind: string; t: Target | undefined };
function cases(p: Principal, which: (op: Op) => boolean): Case[] {
  return OPS.filter(which).flatMap((op): Case[] =>
    op.targets.length > 0
      ? (p.clash ? ["same tenant"] : op.targets).flatMap((kind) => {
          const t = target(p, kind);
          return t ? [{ op, kind, t }] : [];
        })
      : [{ op, kind: "-", t: undefined }],
  );
}
const key = (p: Principal, op: Op, kind: string) => `${p.name} | ${op.name} | ${kind}`;

describe("tenant isolation × the guard, per principal (6, 4.5)", () => {
  let server: TestServer;
  const headers: Record<string, Record<string, string>> = {};
  const accounts = {} as Record<Account, number>;
  const users = {} as Record<Who, number>;
  /** the rows of each case: one note and its comment per read target (shared), per write case (its own) */
  const planted = new Map<string, { note: number; comment: number; title: string; mover?: number }>();
  /** the database the reads run on: nothing writes before they are done */
  let world = EMPTY;
  /** the largest ids before the writes: what a principal's writes added is removed after it */
  let base = { note: 0, comment: 0 };
  /** the database after the last write case */
  let last: Db | undefined;
  /** the first 404 / 409 body per principal and route: every later one must be byte-identical (4.10, 6.2) */
  const refusals = new Map<string, string>();

  /** An account's or a user's name for its id, as the rule names them; null stays null. */
  const nameIn = (ids: Record<string, number>) => (id: unknown) =>
    id === null ? null : (Object.entries(ids).find(([, v]) => v === id)?.[0] ?? id);
  const names: Names = { account: nameIn(accounts), user: nameIn(users), row: (id) => id };
  const symOf = (r: Row): Sym => ({
    account: names.account(r.account_id ?? null) as Account | null,
    author: names.user(r.author_id ?? null) as Who | null,
    public: r.public === 1,
  });
  const worldOf = (db: Db): World => ({
    notes: db.notes.map((r) => ({ ...symOf(r), id: r.id })),
    comments: db.comments.map((r) => ({ ...symOf(r), id: r.id, note_id: r.note_id })),
    users: db.users.map((r) => ({ ...symOf(r), id: r.id })),
    accounts: db.accounts.map((r) => ({ account: names.account(r.id) as Account, id: r.id })),
  });
  const account = (a: Account | null) => (a === null ? {} : { account_id: accounts[a] });

  /** Rows created trusted (the server's own code may set account_id), all of them in one request. */
  const createAll = async (entity: Entity, rows: Row[]) =>
    rows.length === 0 ? [] : ((await server.app.module.data.create(entity, rows)) as Row[]);

  /**
   * The rows of every case: a note and its comment per target (reads share them; each write case has its own)
   * and, for the case moving a comment, a comment of the principal's home account.
   */
  async function plant(wanted: { key: string; t: Target | undefined; mover?: Account }[]) {
    const some = wanted.filter((w) => w.t?.note);
    const notes = await createAll(
      "notes",
      some.map(({ t }, i) => ({
        title: `${MARK} ${i}`,
        public: t!.note!.public,
        author_id: users[t!.note!.author!],
        ...account(t!.note!.account),
      })),
    );
    const comments = await createAll(
      "comments",
      some.map(({ t }, i) => ({
        body: `${MARK} comment ${i}`,
        note_id: notes[i]!.id,
        ...account(t!.comment!.account),
      })),
    );
    for (const [i, w] of some.entries())
      planted.set(w.key, { note: notes[i]!.id, comment: comments[i]!.id, title: notes[i]!.title });
    const movers = wanted.filter((w) => w.mover);
    const moved = await createAll(
      "comments",
      movers.map((w) => ({ body: "a comment to move", ...account(w.mover!) })),
    );
    for (const [i, w] of movers.entries())
      planted.set(w.key, { ...(planted.get(w.key) ?? MISSING), mover: moved[i]!.id });
  }

  beforeAll(async () => {
    server = await startServer(tenancyConfig(), {
      options: {
        seed: async (ctx) => {
          await seedTenants(ctx);
          const [b] = await ctx.app.module.data.list("accounts", { slug: "b" });
          const dan = { email: "dan@b.test", password: PASSWORD, role: "member", account_id: b!.id };
          await ctx.app.module.auth.createUser(dan);
        },
      },
    });
    for (const a of await server.rows("SELECT id, slug FROM accounts"))
      accounts[a.slug.toUpperCase() as Account] = a.id;
    for (const u of await server.rows("SELECT id, email FROM users")) users[u.email.split("@")[0] as Who] = u.id;
    const tokens: Partial<Record<Person, string>> = {};
    for (const [name, p] of Object.entries(PEOPLE)) tokens[name as Person] = await login(server, p.email, PASSWORD);
    const root = bearer(tokens.root);
    const keys = {
      pk: (await createKey(server, root, { name: "pk A", kind: "publishable", tenant: accounts.A })).key,
      skA: (await createKey(server, root, { name: "sk A", kind: "secret", tenant: accounts.A })).key,
      sk: (await createKey(server, root, { name: "sk", kind: "secret" })).key,
    };
    for (const p of PRINCIPALS)
      headers[p.name] = { ...(p.key ? apikey(keys[p.key]) : {}), ...bearer(p.user && tokens[p.user]) };
    // the reads share one note (and its comment) per distinct target
    const wanted = new Map<string, { key: string; t: Target | undefined }>();
    for (const p of PRINCIPALS)
      for (const { t } of cases(p, (op) => !op.write && op.targets.length > 0))
        if (t?.note) wanted.set(JSON.stringify(t), { key: JSON.stringify(t), t });
    await plant([...wanted.values()]);
    world = worldOf(await snapshot(server));
    base = { note: Math.max(...world.notes.map((r) => r.id)), comment: Math.max(...world.comments.map((r) => r.id)) };
  });
  afterAll(() => server?.close());

  /** Each write case of one principal gets rows of its own; they are gone again after that principal. */
  async function plantWrites(p: Principal) {
    await plant(
      cases(p, (op) => op.write === true)
        .filter(({ op, t }) => t?.note || op.mover)
        .map(({ op, kind, t }) => ({ key: key(p, op, kind), t, mover: op.mover ? homeOf(p) : undefined })),
    );
    last = undefined;
  }
  async function restore() {
    await server.rows("DELETE FROM comments WHERE id > ?", base.comment);
    await server.rows("DELETE FROM notes WHERE id > ?", base.note);
  }

  /** A case's request, and for a write the database before and after it. */
  interface Asked {
    ids: Ids;
    res: TestResponse;
    request: string;
    before?: Db;
    after?: Db;
  }

  async function ask(p: Principal, { op, kind, t }: Case): Promise<Asked> {
    const rows = planted.get(op.write ? key(p, op, kind) : JSON.stringify(t)) ?? MISSING;
    const ids: Ids = {
      note: rows.note,
      comment: rows.comment,
      title: rows.title,
      mover: rows.mover ?? MISSING.mover,
      other: accounts[awayOf(p)],
      ...accounts,
    };
    // writes run one after another, so the database before one is the database after the previous one
    const before = op.write ? (last ?? (await snapshot(server))) : undefined;
    const [method, path, body] = op.request(ids, p);
    const res = await server.request(method, path, body, headers[p.name]);
    const after = before && (await snapshot(server));
    if (op.write) last = after;
    return { ids, res, request: `${method} ${path}`, before, after };
  }

  function check(p: Principal, { op, t }: Case, { ids, res, request, before, after }: Asked) {
    const decision = p.clash ? { status: 403 } : op.decide({ p, t, world: before ? worldOf(before) : world });
    expect(res.status, `${request}: ${res.text}`).toBe(decision.status);
    const targets: Record<number, string> = { [ids.note]: "note", [ids.comment]: "comment", [ids.mover]: "mover" };
    const row = (id: unknown) => targets[id as number] ?? id;
    if (res.status < 400) expect(op.shape(res.body, { ...names, row })).toEqual(decision.seen);
    else {
      expect(res.body?.error?.code, res.text).toBe(ERROR_CODES[res.status]);
      // the guard's refusals name the permission (4.9); the clash of key and user is no permission's
      if (res.status === 403 && !p.clash) expect(res.body.error.permission, res.text).toMatch(/^data\.entity\./);
      // a refusal never shows the target's data, and a hidden row is refused exactly as a missing one
      expect(res.text).not.toContain(MARK);
      if (res.status !== 403) {
        const k = `${p.name} | ${op.name} | ${res.status}`;
        if (!refusals.has(k)) refusals.set(k, res.text);
        expect(res.text).toBe(refusals.get(k));
      }
    }
    if (before && after) {
      if (res.status >= 400) expect(after).toEqual(before);
      else expect(after).toEqual(op.effect!(before, ids, res, p, decision.seen));
    }
  }

  const title = (p: Principal, { op, t }: Case) =>
    `${op.name}${t ? ` · ${t.label}` : ""} → ${p.clash ? 403 : op.decide({ p, t, world: EMPTY }).status} (${op.spec})`;

  describe("reads", () => {
    // reads change nothing: they are all asked up front, side by side, and each case checks its answer
    const answers = new Map<string, Asked>();
    beforeAll(async () => {
      const all = PRINCIPALS.flatMap((p) => cases(p, (op) => !op.write).map((c) => [p, c] as const));
      const next = all.values();
      const worker = async () => {
        for (const [p, c] of next) answers.set(key(p, c.op, c.kind), await ask(p, c));
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    });
    for (const p of PRINCIPALS)
      describe(p.name, () => {
        for (const c of cases(p, (op) => !op.write))
          it(title(p, c), () => check(p, c, answers.get(key(p, c.op, c.kind))!));
      });
  });

  describe("writes (the database checked after each)", () => {
    for (const p of PRINCIPALS)
      describe(p.name, () => {
        beforeAll(() => plantWrites(p));
        afterAll(restore);
        for (const c of cases(p, (op) => op.write === true)) it(title(p, c), async () => check(p, c, await ask(p, c)));
      });
  });
});
