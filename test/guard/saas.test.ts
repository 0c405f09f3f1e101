/** §9 "SaaS Application": landing data is public, tiers get more, pro users manage only their own rows (§4.2–4.7). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import saas from "../../examples/access/saas.js";
import { bearer, register } from "../helpers/auth.js";
import {
  ANON,
  type Booted,
  boot,
  dbRows,
  expectForbidden,
  idsOf,
  insert,
  PASSWORD,
  type Row,
  scenarios,
  sorted,
} from "./helpers.js";

type Ids = Record<"plan" | "proj1" | "proj2" | "proj3" | "proj4" | "proj5", number>;

describe("SaaS Application", () => {
  let b: Booted<Ids>;
  const projects = () => dbRows(b.server, "SELECT id, name, owner_id FROM projects ORDER BY id");
  beforeAll(async () => {
    b = await boot(saas, {
      users: { free: "free_user", pro1: "pro_user", pro2: "pro_user", admin: "admin" },
      rows: async (ctx, u) => {
        const [plan] = await insert(ctx, "plans", [
          { name: "Basic", price: 0 },
          { name: "Pro", price: 20 },
        ]);
        await insert(ctx, "features", [{ name: "Projects" }, { name: "Tasks", premium: true }]);
        const [proj1, proj2, proj3, proj4, proj5] = await insert(ctx, "projects", [
          { name: "Pro1 alpha", owner_id: u.pro1 },
          { name: "Pro2 secret", owner_id: u.pro2 },
          { name: "Pro1 beta", owner_id: u.pro1 },
          { name: "Pro2 other", owner_id: u.pro2 },
          { name: "Pro2 doomed", owner_id: u.pro2 },
        ]);
        await insert(ctx, "tasks", [{ title: "t1", owner_id: u.pro1, project_id: proj1!.id }]);
        const id = (r: Row | undefined) => r!.id as number;
        return {
          plan: id(plan),
          proj1: id(proj1),
          proj2: id(proj2),
          proj3: id(proj3),
          proj4: id(proj4),
          proj5: id(proj5),
        };
      },
    });
  });
  afterAll(async () => {
    await b?.server.close();
  });

  const [R, C, U, D] = ["read", "create", "update", "delete"].map((p) => `data.entity.${p}`) as [
    string,
    string,
    string,
    string,
  ];
  scenarios(
    () => b,
    [
      {
        name: "SaaS: anonymous reads plans",
        as: ANON,
        req: "GET /api/data/plans",
        status: 200,
        expected: { meta: { total: 2 } },
      },
      {
        name: "SaaS: anonymous reads features",
        as: ANON,
        req: "GET /api/data/features",
        status: 200,
        expected: { meta: { total: 2 } },
      },
      {
        name: "SaaS: anonymous cannot read projects (403)",
        as: ANON,
        req: "GET /api/data/projects",
        status: 403,
        forbidden: [R, "projects"],
        notExpected: ["Pro2 secret"],
      },
      {
        name: "SaaS: anonymous cannot read tasks (403)",
        as: ANON,
        req: "GET /api/data/tasks",
        status: 403,
        forbidden: [R, "tasks"],
      },
      {
        name: "SaaS: anonymous cannot read users (403)",
        as: ANON,
        req: "GET /api/data/users",
        status: 403,
        forbidden: [R, "users"],
      },
      {
        name: "SaaS: anonymous cannot create plans (403)",
        as: ANON,
        req: "POST /api/data/plans",
        body: { name: "Free lunch" },
        status: 403,
        forbidden: [C, "plans"],
      },
      {
        name: "SaaS: free_user reads projects",
        as: "free",
        req: "GET /api/data/projects",
        status: 200,
        expected: { meta: { total: 5 } },
      },
      {
        name: "SaaS: free_user creates projects (201)",
        as: "free",
        req: "POST /api/data/projects",
        body: { name: "Free project" },
        status: 201,
        expected: { data: { name: "Free project" } },
      },
      {
        name: "SaaS: free_user cannot create tasks (403)",
        as: "free",
        req: "POST /api/data/tasks",
        body: { title: "x" },
        status: 403,
        forbidden: [C, "tasks"],
      },
      {
        name: "SaaS: free_user cannot update projects (403)",
        as: "free",
        req: (b) => `PATCH /api/data/projects/${b.rows.proj1}`,
        body: { name: "x" },
        status: 403,
        forbidden: [U, "projects"],
      },
      {
        name: "SaaS: free_user cannot delete projects (403)",
        as: "free",
        req: (b) => `DELETE /api/data/projects/${b.rows.proj1}`,
        status: 403,
        forbidden: [D, "projects"],
      },
      {
        name: "SaaS: pro_user creates tasks (201)",
        as: "pro1",
        req: "POST /api/data/tasks",
        body: (b) => ({ title: "t2", owner_id: b.ids.pro1 }),
        status: 201,
      },
      {
        name: "SaaS: pro_user updates own project (200)",
        as: "pro1",
        req: (b) => `PATCH /api/data/projects/${b.rows.proj1}`,
        body: { name: "Pro1 alpha v2" },
        status: 200,
        expected: { data: { name: "Pro1 alpha v2" } },
      },
      {
        name: "SaaS: pro_user cannot update another's project (readable: 403, no row data)",
        as: "pro1",
        req: (b) => `PATCH /api/data/projects/${b.rows.proj2}`,
        body: { name: "mine now" },
        status: 403,
        forbidden: [U, "projects"],
        notExpected: ["Pro2 secret"],
      },
      {
        name: "SaaS: pro_user cannot delete another's project (403)",
        as: "pro1",
        req: (b) => `DELETE /api/data/projects/${b.rows.proj2}`,
        status: 403,
        forbidden: [D, "projects"],
      },
      {
        name: "SaaS: write check: pro_user cannot set owner_id to someone else (4.6)",
        as: "pro1",
        req: (b) => `PATCH /api/data/projects/${b.rows.proj1}`,
        body: (b) => ({ owner_id: b.ids.pro2 }),
        status: 403,
        forbidden: [U, "projects"],
      },
      {
        name: "SaaS: pro_user cannot update plans, which have no owner (403)",
        as: "pro1",
        req: (b) => `PATCH /api/data/plans/${b.rows.plan}`,
        body: { price: 0 },
        status: 403,
        forbidden: [U, "plans"],
      },
    ],
  );

  it("SaaS: refused writes left every project as it was (4.6)", async () => {
    const rows = await projects();
    expect(rows.find((r) => r.id === b.rows.proj1)).toEqual({
      id: b.rows.proj1,
      name: "Pro1 alpha v2",
      owner_id: b.ids.pro1,
    });
    expect(rows.find((r) => r.id === b.rows.proj2)).toEqual({
      id: b.rows.proj2,
      name: "Pro2 secret",
      owner_id: b.ids.pro2,
    });
    expect(await dbRows(b.server, "SELECT price FROM plans WHERE id = ?", b.rows.plan)).toEqual([{ price: 0 }]);
  });

  it("SaaS: update many by a pro_user reaches only own projects; owner_id to someone else is refused whole (4.5, 4.6)", async () => {
    const before = await projects();
    const steal = { update: { owner_id: b.ids.pro2 }, where: { id: { $gt: 0 } } };
    expectForbidden(await b.as("pro1", "PATCH", "/api/data/projects", steal), U, "projects");
    expect(await projects()).toEqual(before);
    const res = await b.as("pro1", "PATCH", "/api/data/projects", {
      update: { name: "renamed" },
      where: { id: { $gt: 0 } },
    });
    expect(res.status, res.text).toBe(200);
    expect(idsOf(res)).toEqual(sorted([b.rows.proj1, b.rows.proj3]));
    const renamed = (await projects()).filter((r) => r.name === "renamed").map((r) => r.id);
    expect(renamed).toEqual(sorted([b.rows.proj1, b.rows.proj3]));
  });

  it("SaaS: delete many with a where matching everything deletes only the pro_user's own rows (4.5)", async () => {
    const res = await b.as("pro1", "DELETE", "/api/data/projects", { id: { $gt: 0 } });
    expect(res.status, res.text).toBe(200);
    expect(idsOf(res)).toEqual(sorted([b.rows.proj1, b.rows.proj3]));
    const left = (await projects()).map((r) => r.id);
    expect(left).toEqual(expect.arrayContaining([b.rows.proj2, b.rows.proj4, b.rows.proj5]));
    expect(left).not.toContain(b.rows.proj1);
    expect(left).not.toContain(b.rows.proj3);
  });

  it("SaaS: admin (implicit_allow) updates and deletes anyone's project (4.7)", async () => {
    const updated = await b.as("admin", "PATCH", `/api/data/projects/${b.rows.proj4}`, { name: "by admin" });
    expect(updated.status, updated.text).toBe(200);
    const deleted = await b.as("admin", "DELETE", `/api/data/projects/${b.rows.proj5}`);
    expect(deleted.status, deleted.text).toBe(200);
    expect((await projects()).map((r) => r.id)).not.toContain(b.rows.proj5);
  });

  it("SaaS: a registered user is a free_user: projects yes, tasks no (3.3)", async () => {
    const { token } = await register(b.server, "signup@test.com", PASSWORD);
    const post = (path: string, body: unknown) => b.server.request("POST", path, body, bearer(token));
    expect((await post("/api/data/projects", { name: "Signup project" })).status).toBe(201);
    expectForbidden(await post("/api/data/tasks", { title: "nope" }), C, "tasks");
  });
});
