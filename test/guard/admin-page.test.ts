/**
 * The admin page (12.6): `/_admin` only when `config.admin.enabled`, served without any CDN under a strict CSP,
 * signing in with the auth cookie; the routes it drives answer admins (`system.admin`) and refuse everyone
 * else — the access report, explain for a role or a user, the audit trail and its verification, keys, metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import blog from "../../examples/blog/config.js";
import { ADMIN_SCRIPT } from "../../src/http/admin-page.js";
import { startServer } from "../helpers/server.js";
import { ANON, type Booted, boot, emailOf, PASSWORD } from "./helpers.js";

const USERS = { admin: "admin", author: "author", commenter: "commenter" };

const withAdmin = (enabled: boolean) => ({
  ...blog,
  config: {
    ...blog.config,
    auth: { ...blog.config!.auth, api_keys: { enabled: true } },
    admin: { enabled },
    audit: { enabled: true },
  },
});

describe("the admin page (12.6)", () => {
  let b: Booted<undefined>;
  beforeAll(async () => {
    b = await boot(withAdmin(true), { users: USERS });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  it("is served, with a strict CSP and nothing from another origin (no CDN)", async () => {
    const page = await b.server.request("GET", "/_admin");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    for (const asset of ["/_admin/app.js", "/_admin/app.css"]) {
      const res = await b.server.request("GET", asset);
      expect(res.status, asset).toBe(200);
      expect(res.text, asset).not.toMatch(/https?:\/\//);
      expect(page.text).toContain(asset);
    }
    expect(page.text).not.toMatch(/https?:\/\//);
    // the script builds the page from text only: no innerHTML, no eval
    expect(ADMIN_SCRIPT).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|eval\(|new Function/);
  });

  it("every route its script calls exists and answers an admin (12.6)", async () => {
    const calls = [...ADMIN_SCRIPT.matchAll(/api\("(GET|POST|DELETE)", "([^"]+)"/g)].map((m) => ({
      method: m[1]!,
      path: m[2]!,
    }));
    const reads = calls.filter((c) => c.method === "GET" && !c.path.endsWith("/") && !c.path.endsWith("?"));
    expect(reads.map((c) => c.path)).toEqual(
      expect.arrayContaining(["/api/auth/me", "/api/system/report", "/api/system/audit/verify", "/api/system/keys"]),
    );
    for (const { path } of reads) {
      const res = await b.as("admin", "GET", path);
      expect(res.status, `${path}: ${res.text}`).toBe(200);
    }
  });

  it("signs in with the cookie: an admin gets the report, anyone else is refused (12.6, 3.7)", async () => {
    const cookieOf = async (name: string) => {
      const res = await b.server.request(
        "POST",
        "/api/auth/password/login",
        { email: emailOf(name), password: PASSWORD },
        { origin: b.server.url },
      );
      expect(res.status, res.text).toBe(200);
      return res.headers.getSetCookie()[0]!.split(";")[0]!;
    };
    const admin = await b.server.request("GET", "/api/system/report", undefined, { cookie: await cookieOf("admin") });
    expect(admin.status, admin.text).toBe(200);
    expect(admin.body.data.roles).toEqual(expect.arrayContaining(["admin", "author"]));
    const author = await b.server.request("GET", "/api/system/report", undefined, { cookie: await cookieOf("author") });
    expect(author.status).toBe(403);
    expect(author.body.error.permission).toBe("system.admin");
    expect((await b.as(ANON, "GET", "/api/system/report")).status).toBe(403);
  });

  it("verifies the audit chain for auditors only (12.6, 7.3)", async () => {
    const ok = await b.as("admin", "GET", "/api/system/audit/verify");
    expect(ok.body.data).toMatchObject({ ok: true });
    expect(ok.body.data.entries).toBeGreaterThan(0);
    expect((await b.as("author", "GET", "/api/system/audit/verify")).status).toBe(403);
  });

  it("explains for a user: its role and claims decide (12.6, 4.15)", async () => {
    const q = (who: string) => `/api/system/explain?user=${b.ids[who]}&permission=data.entity.update&entity=posts`;
    const author = await b.as("admin", "GET", q("author"));
    expect(author.status, author.text).toBe(200);
    expect(author.body.data).toMatchObject({ role: "author", decision: "filter" });
    const commenter = await b.as("admin", "GET", q("commenter"));
    expect(commenter.body.data).toMatchObject({ role: "commenter", decision: "deny" });
    const missing = await b.as(
      "admin",
      "GET",
      "/api/system/explain?user=999999&permission=data.entity.read&entity=posts",
    );
    expect(missing.status).toBe(404);
    expect((await b.as("author", "GET", q("commenter"))).status).toBe(403);
  });

  it("is not there unless config.admin.enabled (12.6)", async () => {
    const off = await startServer(withAdmin(false).config);
    try {
      for (const path of ["/_admin", "/_admin/app.js"]) expect((await off.request("GET", path)).status, path).toBe(404);
    } finally {
      await off.close();
    }
  });
});
