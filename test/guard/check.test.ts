/**
 * §12.2 `citadel check`'s report says what enforcement does: on the blog example, every role × entity × action
 * decision matches the answer over HTTP (deny: 403; allow or filter: past the guard), every field a role reads
 * per the report is what a list returns, and field write access matches what a PATCH is allowed to write.
 */
import type { AccessReport } from "citadel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import blog from "../../examples/blog/config.js";
import { ANON, type Booted, boot, insert, type Row } from "./helpers.js";

const USERS = { commenter: "commenter", author: "author", moderator: "moderator", admin: "admin" };
/** Who asks as each role: the anonymous default role has no token. */
const AS: Record<string, string> = { anonymous: ANON, ...USERS };
const MISSING = 999_999;

describe("citadel check's report is what the guard enforces (12.2, 4.15)", () => {
  let b: Booted<{ post: number; comment: number; ownComment: number }>;
  let report: AccessReport;
  beforeAll(async () => {
    b = await boot(blog, {
      users: USERS,
      rows: async (ctx, ids) => {
        const [post] = await insert(ctx, "posts", [{ title: "Hello", published: true, author_id: ids.author }]);
        const [comment, own] = await insert(ctx, "comments", [
          { body: "approved", approved: true, post_id: post!.id, author_id: ids.author },
          { body: "mine", approved: true, post_id: post!.id, author_id: ids.commenter },
        ]);
        return { post: post!.id, comment: comment!.id, ownComment: own!.id };
      },
    });
    report = b.server.app.accessReport();
  });
  afterAll(async () => {
    await b?.server.close();
  });

  it("lists every configured role and entity, and the default role (12.2)", () => {
    expect(report.roles).toEqual(["anonymous", "commenter", "author", "moderator", "admin"]);
    expect(report.entities).toEqual(["posts", "comments", "users"]);
    expect(report.default_role).toBe("anonymous");
    expect(report.enforced).toBe(true);
  });

  it("every decision matches HTTP: deny is 403, allow and filter get past the guard (12.2)", async () => {
    let checked = 0;
    for (const role of report.roles)
      for (const entity of report.entities) {
        const cells = report.decisions[role]![entity]!;
        const as = (method: string, path: string, body?: unknown) => b.as(AS[role]!, method, path, body);
        const answers = {
          read: await as("GET", `/api/data/${entity}`),
          // an empty body fails validation (400) once the guard lets it through
          create: await as("POST", `/api/data/${entity}`, {}),
          // no such row: 404 once the guard lets it through
          update: await as("PATCH", `/api/data/${entity}/${MISSING}`, {}),
          delete: await as("DELETE", `/api/data/${entity}/${MISSING}`),
        };
        for (const [action, res] of Object.entries(answers)) {
          const cell = cells[action as keyof typeof cells];
          const what = `${role} ${action} ${entity}: report ${cell.decision}, HTTP ${res.status} ${res.text}`;
          if (cell.decision === "deny") expect(res.status, what).toBe(403);
          else expect([200, 400, 404], what).toContain(res.status);
          if (cell.decision === "filter") expect(cell.where, what).toEqual(expect.any(String));
          checked++;
        }
      }
    expect(checked).toBe(5 * 3 * 4);
  });

  it("the fields each role reads are the ones a list returns (12.2, 4.8)", async () => {
    for (const role of report.roles)
      for (const entity of report.entities) {
        if (report.decisions[role]![entity]!.read.decision === "deny") continue;
        const res = await b.as(AS[role]!, "GET", `/api/data/${entity}?limit=100`);
        expect(res.status, res.text).toBe(200);
        const fields = report.fields[entity]!;
        const readable = Object.keys(fields).filter((f) => fields[f]![role]!.read !== "none");
        const always = Object.keys(fields).filter((f) => fields[f]![role]!.read === "all");
        expect(res.body.data.length, `${role} ${entity}`).toBeGreaterThan(0);
        for (const row of res.body.data as Row[]) {
          expect(readable, `${role} ${entity} ${JSON.stringify(row)}`).toEqual(
            expect.arrayContaining(Object.keys(row)),
          );
          expect(Object.keys(row), `${role} ${entity}`).toEqual(expect.arrayContaining(always));
        }
      }
  });

  it("a field a role may not update is refused 403, one it may is written (12.2, 4.8, 4.16)", async () => {
    // commenters update their own comments, moderators any comment; `approved` is the moderators' field
    const cases = [
      { role: "commenter", id: () => b.rows.ownComment },
      { role: "moderator", id: () => b.rows.comment },
    ];
    const values: Record<string, unknown> = { body: "edited", approved: true };
    for (const { role, id } of cases)
      for (const [field, value] of Object.entries(values)) {
        const access = report.fields.comments![field]![role]!.update;
        const res = await b.as(role, "PATCH", `/api/data/comments/${id()}`, { [field]: value });
        const what = `${role} update comments.${field}: report ${access}, HTTP ${res.status} ${res.text}`;
        if (access === "none") expect(res.status, what).toBe(403);
        else expect(res.status, what).toBe(200);
      }
    expect(report.fields.comments!.approved!.commenter!.update).toBe("none");
    expect(report.fields.comments!.approved!.moderator!.update).toBe("all");
  });

  it("an owner column is the caller's own user id; naming another user is refused (12.2, 4.14)", async () => {
    expect(report.fields.posts!.author_id!.author).toEqual({ read: "all", create: "own", update: "own" });
    const res = await b.as("author", "POST", "/api/data/posts", { title: "t", author_id: b.ids.admin });
    expect(res.status, res.text).toBe(403);
    expect(report.fields.posts!.author_id!.admin).toEqual({ read: "all", create: "all", update: "all" });
  });

  it("filters are shown as the SQL the engine runs, with the caller's id as a placeholder (12.2, 4.15)", () => {
    const cell = report.decisions.author!.posts!.update;
    expect(cell.decision).toBe("filter");
    expect(cell.where).toContain("author_id");
    expect(cell.parameters).toEqual(["@user.id"]);
  });
});
