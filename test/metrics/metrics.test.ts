/**
 * Monitoring (§7.5) over HTTP: `GET /api/system/metrics` under `system.metrics.read` (or a secret key) serves
 * Prometheus text whose counters move with requests, denials, failed logins, 429s, escalation and cross-tenant
 * attempts, secret keys sent by browsers and audit entries; each denial and failed login is one JSON log line
 * without a secret.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, login } from "../helpers/auth.js";
import { type Row, startServer, type TestResponse, type TestServer } from "../helpers/server.js";
import { PASSWORD, seedTenants, tenancyConfig } from "../tenancy/fixture.js";
import { parsePrometheus, type Scrape } from "./prometheus-text.js";

type Headers = Record<string, string>;
const q = (where: unknown) => encodeURIComponent(JSON.stringify(where));

/** The JSON lines an app logged (other messages, such as warnings, are not JSON). */
function jsonLines(logged: string[]): Row[] {
  return logged.flatMap((line) => {
    try {
      const parsed = JSON.parse(line);
      return typeof parsed === "object" && parsed !== null && typeof parsed.event === "string" ? [parsed] : [];
    } catch {
      return [];
    }
  });
}

describe("metrics under tenancy and the audit trail (7.5)", () => {
  let server: TestServer;
  const logged: string[] = [];
  /** everything secret the tests send or receive: no log line may contain one */
  const secrets: string[] = [PASSWORD];
  let as: Record<"alice" | "adam" | "carol" | "root" | "secret", Headers>;
  let ids: { A: number; B: number; alice: number; bob: number };

  const scrape = async (headers: Headers = as.secret): Promise<Scrape> => {
    const res = await server.request("GET", "/api/system/metrics", undefined, headers);
    expect(res.status, res.text).toBe(200);
    return parsePrometheus(res.text);
  };
  /** How much `name` moved over `act`. */
  const moved = async (name: string, act: () => Promise<unknown>, labels?: Record<string, string>) => {
    const before = (await scrape()).value(name, labels);
    await act();
    return (await scrape()).value(name, labels) - before;
  };
  const send = async (method: string, path: string, body: unknown, headers: Headers, status: number) => {
    const res = await server.request(method, path, body, headers);
    expect(res.status, `${method} ${path}: ${res.text}`).toBe(status);
    return res;
  };

  beforeAll(async () => {
    server = await startServer(tenancyConfig({ audit: { enabled: true } }), {
      options: { seed: seedTenants, log: (message) => logged.push(message) },
    });
    const token = async (email: string) => {
      const t = await login(server, email, PASSWORD);
      secrets.push(t);
      return bearer(t);
    };
    const [alice, adam, carol, root] = await Promise.all(
      ["alice@a.test", "adam@a.test", "carol@b.test", "root@test.com"].map(token),
    );
    const key = await server.request("POST", "/api/system/keys", { name: "scraper", kind: "secret" }, root!);
    expect(key.status, key.text).toBe(201);
    secrets.push(key.body.data.key);
    as = { alice: alice!, adam: adam!, carol: carol!, root: root!, secret: { apikey: key.body.data.key } };
    const accounts = await server.rows(`SELECT "id", "slug" FROM accounts ORDER BY "id"`);
    const users = await server.rows(`SELECT "id", "email" FROM users`);
    const user = (email: string) => users.find((u) => u.email === email)!.id as number;
    ids = {
      A: accounts.find((a) => a.slug === "a")!.id,
      B: accounts.find((a) => a.slug === "b")!.id,
      alice: user("alice@a.test"),
      bob: user("bob@a.test"),
    };
  });
  afterAll(() => server?.close());

  it("serves Prometheus text with the counters and the runtime's default metrics (7.5)", async () => {
    const res = await server.request("GET", "/api/system/metrics", undefined, as.root);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const scrape = parsePrometheus(res.text);
    for (const name of [
      "citadel_requests_total",
      "citadel_denials_total",
      "citadel_login_failures_total",
      "citadel_rate_limited_total",
      "citadel_escalation_attempts_total",
      "citadel_cross_tenant_attempts_total",
      "citadel_secret_key_browser_total",
      "citadel_audit_entries_total",
    ])
      expect(scrape.types.get(name), name).toBe("counter");
    for (const name of [
      "process_cpu_user_seconds_total",
      "nodejs_heap_size_used_bytes",
      "nodejs_eventloop_lag_seconds",
    ])
      expect(scrape.types.has(name), name).toBe(true);
  });

  it("needs system.metrics.read or a secret key; a caller bound to one account may not read them (7.5)", async () => {
    const alice = await send("GET", "/api/system/metrics", undefined, as.alice, 403);
    expect(alice.body.error.permission).toBe("system.metrics.read");
    await send("GET", "/api/system/metrics", undefined, {}, 403);
    // adam has implicit_allow, inside account A: the counters cover every account
    const adam = await send("GET", "/api/system/metrics", undefined, as.adam, 403);
    expect(adam.body.error.message).toMatch(/every account/);
    await send("GET", "/api/system/metrics", undefined, as.root, 200);
    await send("GET", "/api/system/metrics", undefined, as.secret, 200);
    await send("GET", "/api/system/metrics", undefined, bearer(as.secret.apikey), 200);
    // a secret key acting as a role without the permission is still a server's credential (7.5); not one bound
    // to an account, nor a publishable key
    const keys: [Record<string, unknown>, number][] = [
      [{ name: "reads", kind: "secret", role: "reader" }, 200],
      [{ name: "a's", kind: "secret", role: "reader", tenant: ids.A }, 403],
      [{ name: "page", kind: "publishable", role: "reader" }, 403],
    ];
    for (const [key, status] of keys) {
      const made = await send("POST", "/api/system/keys", key, as.root, 201);
      secrets.push(made.body.data.key);
      await send("GET", "/api/system/metrics", undefined, { apikey: made.body.data.key }, status);
    }
  });

  it("counts requests by matched route and status, never the raw path (7.5)", async () => {
    const route = { route: "GET /api/data/:entity/:id" };
    expect(
      await moved("citadel_requests_total", () => send("GET", "/api/data/notes/1", undefined, as.alice, 200), {
        ...route,
        status: "200",
      }),
    ).toBe(1);
    expect(
      await moved("citadel_requests_total", () => send("GET", "/api/data/notes/987654", undefined, as.alice, 404), {
        ...route,
        status: "404",
      }),
    ).toBe(1);
    // the route that answered, not a later one that also matches the path
    expect(
      await moved("citadel_requests_total", () => send("GET", "/api/data/notes/count", undefined, as.alice, 200), {
        route: "GET /api/data/:entity/count",
        status: "200",
      }),
    ).toBe(1);
    expect(
      await moved("citadel_requests_total", () => send("GET", "/nowhere/123", undefined, {}, 404), {
        route: "none",
        status: "404",
      }),
    ).toBe(1);
    const text = (await server.request("GET", "/api/system/metrics", undefined, as.secret)).text;
    expect(text).not.toContain("notes/987654");
    expect(text).not.toContain("nowhere");
  });

  it("counts denials by reason, role, entity and permission (7.5)", async () => {
    const denied = { reason: "access_denied", role: "member", entity: "users", permission: "data.entity.create" };
    expect(
      await moved(
        "citadel_denials_total",
        () => send("POST", "/api/data/users", { email: "x@a.test" }, as.alice, 403),
        denied,
      ),
    ).toBe(1);
    // a caller without a credential is refused as the default role the guard applied (4.1)
    const anonymous = { reason: "access_denied", role: "anonymous", entity: "notes", permission: "data.entity.create" };
    expect(
      await moved("citadel_denials_total", () => send("POST", "/api/data/notes", { title: "t" }, {}, 403), anonymous),
    ).toBe(1);
    // a credential refused before any role applied names none
    const token = { reason: "token_rejected", role: "" };
    expect(
      await moved(
        "citadel_denials_total",
        () => send("GET", "/api/data/notes", undefined, bearer("not.a.jwt"), 401),
        token,
      ),
    ).toBe(1);
    const key = { reason: "key_rejected" };
    expect(
      await moved(
        "citadel_denials_total",
        () => send("GET", "/api/data/notes", undefined, { apikey: `sk_test_${"x".repeat(43)}` }, 401),
        key,
      ),
    ).toBe(1);
    const none = { reason: "authentication_required" };
    expect(await moved("citadel_denials_total", () => send("GET", "/api/auth/me", undefined, {}, 401), none)).toBe(1);
  });

  it("counts a failed login apart from denials (7.5)", async () => {
    const before = await scrape();
    await send("POST", "/api/auth/password/login", { email: "alice@a.test", password: "wrong-password-1" }, {}, 401);
    await send("POST", "/api/auth/password/login", { email: "nobody@a.test", password: "wrong-password-2" }, {}, 401);
    secrets.push("wrong-password-1", "wrong-password-2");
    const after = await scrape();
    expect(after.value("citadel_login_failures_total") - before.value("citadel_login_failures_total")).toBe(2);
    expect(after.value("citadel_denials_total") - before.value("citadel_denials_total")).toBe(0);
  });

  it("counts writes naming privileged fields as escalation attempts (7.5)", async () => {
    const escalation = "citadel_escalation_attempts_total";
    // a member writing a user's role: refused before its body is read
    expect(
      await moved(escalation, () => send("PATCH", `/api/data/users/${ids.alice}`, { role: "admin" }, as.alice, 403)),
    ).toBe(1);
    // a tenant admin granting the superadmin role
    const grant = { email: "new@a.test", password: "new-user-password", role: "superadmin" };
    secrets.push(grant.password);
    expect(await moved(escalation, () => send("POST", "/api/data/users", grant, as.adam, 403))).toBe(1);
    // the tenant scope column, its own account's id too (6.2)
    expect(
      await moved(escalation, () => send("POST", "/api/data/notes", { title: "t", account_id: ids.A }, as.alice, 400)),
    ).toBe(1);
    // another user as a row's owner (4.14)
    expect(
      await moved(escalation, () => send("POST", "/api/data/notes", { title: "t", author_id: ids.bob }, as.alice, 403)),
    ).toBe(1);
    // a refusal that names no privileged field, and an allowed write, are not attempts
    expect(await moved(escalation, () => send("POST", "/api/data/accounts", { name: "x" }, as.alice, 403))).toBe(0);
    expect(await moved(escalation, () => send("POST", "/api/data/notes", { title: "mine" }, as.alice, 201))).toBe(0);
  });

  it("counts a bound caller's path, where or body naming another account as cross-tenant (6.5, 7.5)", async () => {
    const cross = "citadel_cross_tenant_attempts_total";
    const { A, B } = ids;
    const cases: [string, string, unknown, Headers, number, number][] = [
      ["GET", `/api/data/notes?where=${q({ account_id: B })}`, undefined, as.alice, 200, 1],
      [
        "GET",
        `/api/data/notes?where=${q({ $or: [{ title: "x" }, { account_id: { $in: [A, B] } }] })}`,
        undefined,
        as.alice,
        200,
        1,
      ],
      ["GET", `/api/data/comments/count?where=${q({ note: { account_id: B } })}`, undefined, as.alice, 200, 1],
      ["POST", "/api/data/notes/query", { where: { account_id: { $eq: String(B) } } }, as.alice, 400, 1],
      ["POST", "/api/data/notes/fn/count", { account_id: B }, as.alice, 200, 1],
      ["POST", "/api/data/notes", { title: "t", account_id: B }, as.alice, 400, 1],
      ["PATCH", "/api/data/notes", { update: { title: "x" }, where: { account_id: B } }, as.alice, 200, 1],
      ["GET", `/api/data/accounts/${B}`, undefined, as.alice, 404, 1],
      ["GET", `/api/data/accounts?where=${q({ id: B })}`, undefined, as.alice, 200, 1],
      ["GET", `/api/data/notes?where=${q({ account_id: A })}`, undefined, {}, 200, 1],
      // its own account, a superadmin and a secret key without a tenant are not attempts
      ["GET", `/api/data/notes?where=${q({ account_id: A })}`, undefined, as.alice, 200, 0],
      ["GET", `/api/data/accounts/${A}`, undefined, as.alice, 200, 0],
      ["GET", `/api/data/notes?where=${q({ account_id: B })}`, undefined, as.root, 200, 0],
      ["GET", `/api/data/notes?where=${q({ account_id: A })}`, undefined, as.secret, 200, 0],
      ["GET", `/api/data/notes?where=${q({ id: B })}`, undefined, as.alice, 200, 0],
    ];
    for (const [method, path, body, headers, status, count] of cases)
      expect(
        await moved(cross, () => send(method, path, body, headers, status)),
        `${method} ${path} ${JSON.stringify(body)}`,
      ).toBe(count);
  });

  it("counts secret keys sent by a browser (5.4, 7.5)", async () => {
    const browser = { ...as.secret, origin: "https://evil.test" };
    const before = await scrape();
    await send("GET", "/api/data/notes", undefined, browser, 401);
    const after = await scrape();
    expect(after.value("citadel_secret_key_browser_total") - before.value("citadel_secret_key_browser_total")).toBe(1);
    expect(
      after.value("citadel_denials_total", { reason: "key_rejected" }) -
        before.value("citadel_denials_total", { reason: "key_rejected" }),
    ).toBe(1);
  });

  it("counts the audit entries the app writes (7.5)", async () => {
    const table = async () => Number((await server.rows("SELECT count(*) AS n FROM citadel_audit"))[0]!.n);
    const before = { metric: (await scrape()).value("citadel_audit_entries_total"), table: await table() };
    const note = await send("POST", "/api/data/notes", { title: "audited" }, as.alice, 201);
    await send("PATCH", `/api/data/notes/${note.body.data.id}`, { title: "audited 2" }, as.alice, 200);
    await send("POST", "/api/data/notes", [{ title: "one" }, { title: "two" }], as.alice, 201);
    await send("PATCH", `/api/data/users/${ids.bob}`, { role: "reader" }, as.root, 200);
    await send("POST", "/api/data/users", { email: "y@a.test" }, as.alice, 403);
    await send("POST", "/api/auth/password/login", { email: "bob@a.test", password: "wrong-password-3" }, {}, 401);
    secrets.push("wrong-password-3");
    const after = { metric: (await scrape()).value("citadel_audit_entries_total"), table: await table() };
    // 1 + 1 + 2 rows, the role change's data.update and auth.role_change, the denial, the failed login
    expect(after.table - before.table).toBe(8);
    expect(after.metric - before.metric).toBe(after.table - before.table);
  });

  it("logs one JSON line per denial and failed login, without a secret (7.5)", async () => {
    const missing = await send("GET", "/api/data/notes/987654", undefined, as.carol, 404);
    const refused = await send("POST", "/api/data/users", { email: "z@b.test" }, as.carol, 403);
    const failed = await send(
      "POST",
      "/api/auth/password/login",
      { email: "carol@b.test", password: "wrong-password-4" },
      {},
      401,
    );
    secrets.push("wrong-password-4");
    const badToken = `${secrets[1]}x`;
    const rejected = await send("GET", "/api/data/notes", undefined, bearer(badToken), 401);
    const anonymous = await send("POST", "/api/data/notes", { title: "t" }, {}, 403);
    const lines = jsonLines(logged);
    const of = (res: TestResponse) => lines.filter((l) => l.request_id === res.headers.get("x-request-id"));
    expect(of(missing)).toEqual([]);
    expect(of(refused)).toEqual([
      expect.objectContaining({
        event: "access.denied",
        status: 403,
        reason: "access_denied",
        method: "POST",
        route: "POST /api/data/:entity",
        role: "member",
        entity: "users",
        permission: "data.entity.create",
        account_id: ids.B,
        ip: expect.any(String),
      }),
    ]);
    expect(of(failed)).toEqual([
      expect.objectContaining({ event: "auth.login_failed", status: 401, route: "POST /api/auth/password/login" }),
    ]);
    expect(of(rejected)).toEqual([
      expect.objectContaining({ event: "auth.token_rejected", reason: "token_rejected", role: null }),
    ]);
    expect(of(anonymous)).toEqual([
      expect.objectContaining({ event: "access.denied", role: "anonymous", user_id: null, entity: "notes" }),
    ]);
    // the audit entries name the same roles
    const roleIn = async (res: TestResponse) => {
      const id = res.headers.get("x-request-id");
      const [entry] = await server.rows("SELECT actor FROM citadel_audit WHERE request_id = ?", id);
      return JSON.parse(entry!.actor as string).role;
    };
    expect(await roleIn(anonymous)).toBe("anonymous");
    expect(await roleIn(rejected)).toBeNull();
    // every line is one line of JSON; none holds a password, token, key or hash
    const json = logged.filter((l) => l.startsWith("{"));
    expect(json.length).toBe(lines.length);
    for (const line of json) {
      expect(line).not.toContain("\n");
      for (const secret of [...secrets, badToken, "$argon2"]) expect(line).not.toContain(secret);
    }
    expect(JSON.stringify(lines)).not.toMatch(/carol@b\.test|password_hash/);
  });
});

describe("metrics without tenancy (7.5)", () => {
  let server: TestServer;
  const config = {
    data: tenancyConfig().data,
    auth: {
      enabled: true,
      jwt: { secret: "metrics-tests-secret-0123456789-abcdefghijkl" },
      password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
      rate_limit: { max_per_email: 2, max_per_address: 10_000 },
      api_keys: { enabled: true, publishable_role: "member" },
      roles: {
        admin: { implicit_allow: true },
        member: { permissions: ["data.entity.read"] },
        // a role whose deny takes the metrics away, even from a secret key acting as it (4.3, 7.5)
        sealed: { permissions: ["data.entity.read", { permission: "system.metrics.read", effect: "deny" as const }] },
      },
    },
  };

  beforeAll(async () => {
    server = await startServer(config, {
      options: {
        seed: async ({ app }) => {
          await app.module.auth.createUser({ email: "admin@test.com", password: PASSWORD, role: "admin" });
          await app.module.auth.createUser({ email: "member@test.com", password: PASSWORD, role: "member" });
        },
        log: () => {},
      },
    });
  });
  afterAll(() => server?.close());

  it("an implicit_allow admin reads them, a member may not (7.5)", async () => {
    const admin = bearer(await login(server, "admin@test.com", PASSWORD));
    const member = bearer(await login(server, "member@test.com", PASSWORD));
    expect((await server.request("GET", "/api/system/metrics", undefined, member)).status).toBe(403);
    const res = await server.request("GET", "/api/system/metrics", undefined, admin);
    expect(res.status, res.text).toBe(200);
    expect(parsePrometheus(res.text).value("citadel_requests_total", { route: "POST /api/auth/password/login" })).toBe(
      2,
    );
  });

  it("a secret key reads them whatever its role, unless a deny of its role takes them away; explain agrees (7.5, 4.3, 4.15)", async () => {
    const keys = server.app.module.auth.apiKeys!;
    const admin = bearer(await login(server, "admin@test.com", PASSWORD));
    for (const [role, status, decision] of [
      ["member", 200, "allow"],
      ["sealed", 403, "deny"],
    ] as const) {
      const key = await keys.create({ name: role, kind: "secret", role });
      const res = await server.request("GET", "/api/system/metrics", undefined, { apikey: key.key });
      expect(res.status, `${role}: ${res.text}`).toBe(status);
      const explained = await server.request(
        "GET",
        `/api/system/explain?key=${key.id}&permission=system.metrics.read&entity=notes`,
        undefined,
        admin,
      );
      expect(explained.body.data, role).toMatchObject({ role, decision });
    }
  });

  it("counts 429s and the failed logins before them (7.5)", async () => {
    const admin = bearer(await login(server, "admin@test.com", PASSWORD));
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push(
        (await server.request("POST", "/api/auth/password/login", { email: "member@test.com", password: "wrong" }))
          .status,
      );
    expect(statuses).toContain(429);
    const scrape = parsePrometheus((await server.request("GET", "/api/system/metrics", undefined, admin)).text);
    expect(scrape.value("citadel_rate_limited_total")).toBe(statuses.filter((s) => s === 429).length);
    expect(scrape.value("citadel_login_failures_total")).toBe(statuses.filter((s) => s === 401).length);
    expect(scrape.value("citadel_requests_total", { route: "POST /api/auth/password/login", status: "429" })).toBe(
      statuses.filter((s) => s === 429).length,
    );
    // nothing about accounts without tenancy, and no audit trail
    expect(scrape.value("citadel_cross_tenant_attempts_total")).toBe(0);
    expect(scrape.value("citadel_audit_entries_total")).toBe(0);
  });
});

describe("a key refused on the login route under api_keys.require (7.1, 7.5)", () => {
  let server: TestServer;
  const logged: string[] = [];
  let scraper: Headers;
  let web: Headers;

  beforeAll(async () => {
    const base = tenancyConfig();
    const config = tenancyConfig({
      audit: { enabled: true },
      auth: { ...base.auth, api_keys: { enabled: true, require: true } },
    });
    server = await startServer(config, { options: { seed: seedTenants, log: (message) => logged.push(message) } });
    const keys = server.app.module.auth.apiKeys!;
    scraper = { apikey: (await keys.create({ name: "scraper", kind: "secret" })).key };
    web = { apikey: (await keys.create({ name: "web", kind: "publishable" })).key };
  });
  afterAll(() => server?.close());

  /** What one request left: its status, the entries and log lines it wrote, how the counters moved. */
  const outcome = async (path: string, body: Row, headers: Headers) => {
    const scrape = async () =>
      parsePrometheus((await server.request("GET", "/api/system/metrics", undefined, scraper)).text);
    const before = { scrape: await scrape(), lines: logged.length };
    const last = Number((await server.rows("select max(id) as n from citadel_audit"))[0]!.n ?? 0);
    const res = await server.request("POST", path, body, headers);
    const after = await scrape();
    const moved = (name: string, labels?: Record<string, string>) =>
      after.value(name, labels) - before.scrape.value(name, labels);
    return {
      status: res.status,
      entries: await server.rows("select action, reason from citadel_audit where id > ? order by id", last),
      events: jsonLines(logged.slice(before.lines)).map((line) => line.event),
      keyRejected: moved("citadel_denials_total", { reason: "key_rejected" }),
      loginFailures: moved("citadel_login_failures_total"),
    };
  };
  const rejected = (path: string) => ({
    status: 401,
    entries: [{ action: "key.rejected", reason: `POST ${path}: invalid or missing API key` }],
    events: ["key.rejected"],
    keyRejected: 1,
    loginFailures: 0,
  });

  it("a bogus or missing key on login is recorded and counted as on register: key.rejected, no failed login", async () => {
    const login = "/api/auth/password/login";
    const register = "/api/auth/password/register";
    const bogus = { apikey: `pk_live_${"A".repeat(55)}` };
    const credentials = { email: "alice@a.test", password: PASSWORD };
    expect(await outcome(login, credentials, bogus)).toEqual(rejected(login));
    expect(await outcome(login, credentials, {})).toEqual(rejected(login));
    const newcomer = { email: "new@c.test", password: PASSWORD, account: { name: "C" } };
    expect(await outcome(register, newcomer, bogus)).toEqual(rejected(register));
    // with a working key, a wrong password is still a failed login and no denial
    expect(await outcome(login, { ...credentials, password: "wrong-password" }, web)).toMatchObject({
      status: 401,
      entries: [{ action: "auth.login_failed" }],
      events: ["auth.login_failed"],
      keyRejected: 0,
      loginFailures: 1,
    });
  });
});
