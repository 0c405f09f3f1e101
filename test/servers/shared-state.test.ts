/**
 * Several servers as one (11.4): three Citadel servers on one database (a libSQL server, PostgreSQL) share
 * revocation, rate limits and data. The servers are started here rather than by test/helpers/server.ts, which
 * gives every server a database of its own.
 */
import { type CitadelConfig, em, entity, text } from "citadel";
import { type ServerHandle, serve } from "citadel/adapter/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, dropDatabase, startPostgres, startSqld } from "../helpers/engines.js";
import { TEST_JWT_SECRET, type TestResponse } from "../helpers/server.js";

const MAX_PER_EMAIL = 10;
const MAX_PER_EMAIL_TOTAL = 20;
const PASSWORD = "correct horse battery";
const OWNER = "owner@example.com";
const ATTACKER = "203.0.113.5";
const OWNER_ADDRESS = "198.51.100.7";

const config: CitadelConfig = {
  data: em({ notes: entity("notes", { title: text() }) }).toJSON(),
  auth: {
    enabled: true,
    jwt: { secret: TEST_JWT_SECRET },
    password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
    // no `store`: a shared database keeps the counters by default
    rate_limit: { max_per_email: MAX_PER_EMAIL, max_per_email_total: MAX_PER_EMAIL_TOTAL, max_per_address: 50 },
    guard: { enabled: false },
  },
  // the test plays clients at several addresses through a proxy's X-Forwarded-For
  server: { trust_proxy: true },
};

/** The database the three servers share, and how to remove it. */
interface SharedDatabase {
  url: string;
  close(): Promise<void>;
}

const engines: Record<string, () => Promise<SharedDatabase>> = {
  sqld: async () => {
    const sqld = await startSqld();
    return { url: sqld.url, close: () => sqld.close() };
  },
  postgres: async () => {
    const external = process.env.CITADEL_TEST_POSTGRES_URL;
    const cluster = external ? undefined : await startPostgres();
    const url = await createDatabase(external ?? cluster!.baseUrl);
    return {
      url,
      async close() {
        await dropDatabase(url);
        await cluster?.close();
      },
    };
  },
};

interface Client {
  name: string;
  handle: ServerHandle;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>;
}

function client(name: string, handle: ServerHandle): Client {
  return {
    name,
    handle,
    async request(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (body !== undefined) {
        init.body = JSON.stringify(body);
        (init.headers as Record<string, string>)["content-type"] = "application/json";
      }
      const res = await fetch(handle.url + path, init);
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text };
    },
  };
}

async function start(name: string, url: string): Promise<Client> {
  const handle = serve({ connection: { url }, config, port: 0, hostname: "127.0.0.1", quiet: true });
  await handle.ready;
  return client(name, handle);
}

const from = (address: string) => ({ "x-forwarded-for": address });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const login = (server: Client, address: string, password: string) =>
  server.request("POST", "/api/auth/password/login", { email: OWNER, password }, from(address));

describe.each(Object.keys(engines))("three servers on one %s (11.4)", (engine) => {
  let database: SharedDatabase;
  let servers: Client[] = [];
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    const started = performance.now();
    database = await engines[engine]!();
    timings.engine = performance.now() - started;
    // all three start together on the empty database: schema sync takes a lock, so one creates the tables
    // and the others find them (without it, 2 of 3 died with `table "notes" already exists`)
    servers = await Promise.all(["A", "B", "C"].map((name) => start(name, database.url)));
    const a = servers[0]!;
    timings.servers = performance.now() - started - timings.engine;
    await a.handle.app!.module.auth.createUser({ email: OWNER, password: PASSWORD });
  }, 180_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.handle.close()));
    await database?.close();
    console.log(
      `${engine}: ${Object.entries(timings)
        .map(([k, ms]) => `${k} ${Math.round(ms)} ms`)
        .join(", ")}`,
    );
  }, 60_000);

  it("three servers started together on an empty database all serve, on one set of tables (11.4)", async () => {
    for (const server of servers) {
      const res = await server.request("POST", "/api/data/notes", { title: `from ${server.name}` });
      expect(res.status, `${server.name}: ${res.text}`).toBe(201);
    }
    const titles = servers.map(async (server) => {
      const res = await server.request(
        "GET",
        `/api/data/notes?sort=id&where=${encodeURIComponent('{"title":{"$like":"from *"}}')}`,
      );
      return res.body.data.map((n: { title: string }) => n.title);
    });
    for (const seen of await Promise.all(titles)) expect(seen).toEqual(["from A", "from B", "from C"]);
  });

  it("45 wrong passwords from one address spread over three servers get the configured 10 guesses, not 30 (3.4, 11.4)", async () => {
    const started = performance.now();
    const statuses = await Promise.all(
      Array.from({ length: 45 }, (_, i) => login(servers[i % 3]!, ATTACKER, "wrong-password").then((r) => r.status)),
    );
    timings["45 logins"] = performance.now() - started;
    expect(statuses.filter((s) => s === 401)).toHaveLength(MAX_PER_EMAIL);
    expect(statuses.filter((s) => s === 429)).toHaveLength(45 - MAX_PER_EMAIL);
    // the right password does not get through the attacker's bucket on any server
    for (const server of servers) {
      const res = await login(server, ATTACKER, PASSWORD);
      expect(res.status, `${server.name}: ${res.text}`).toBe(429);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    }
  });

  it("meanwhile the owner logs in from another address, on every server (3.4, 11.4)", async () => {
    for (const server of servers) {
      const res = await login(server, OWNER_ADDRESS, PASSWORD);
      expect(res.status, `${server.name}: ${res.text}`).toBe(200);
    }
  });

  it("guesses from many addresses on three servers count towards one per-email total; the owner's address is exempt (3.4, 11.4)", async () => {
    // counted so far from addresses new to the account: the attacker's 10 and the owner's first login
    const left = MAX_PER_EMAIL_TOTAL - MAX_PER_EMAIL - 1;
    const statuses = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        login(servers[i % 3]!, `10.9.0.${i}`, "wrong-password").then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 401)).toHaveLength(left);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30 - left);
    expect((await login(servers[1]!, "192.0.2.44", PASSWORD)).status).toBe(429);
    for (const server of servers) expect((await login(server, OWNER_ADDRESS, PASSWORD)).status).toBe(200);
  });

  it("a logout on A revokes the token on B and C (4.11, 11.4)", async () => {
    const [a, b, c] = servers as [Client, Client, Client];
    const token = (await login(a, OWNER_ADDRESS, PASSWORD)).body.token as string;
    for (const server of servers)
      expect((await server.request("GET", "/api/auth/me", undefined, bearer(token))).status).toBe(200);
    expect((await a.request("POST", "/api/auth/logout", undefined, bearer(token))).status).toBe(200);
    for (const server of [b, c]) {
      const res = await server.request("GET", "/api/auth/me", undefined, bearer(token));
      expect(res.status, `${server.name}: ${res.text}`).toBe(401);
    }
  });

  it("a write on A is read on C (11.4)", async () => {
    const [a, , c] = servers as [Client, Client, Client];
    const created = await a.request("POST", "/api/data/notes", { title: `written on A (${engine})` });
    expect(created.status, created.text).toBe(201);
    const id = created.body.data.id;
    const read = await c.request("GET", `/api/data/notes/${id}`);
    expect(read.status, read.text).toBe(200);
    expect(read.body.data.title).toBe(`written on A (${engine})`);
  });
});
