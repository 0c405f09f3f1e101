/**
 * `citadel openapi` (12.1, 12.5): the document `GET /api/system/openapi.json` serves, per role; `citadel serve`
 * (12.1): the config's app on Node until stopped, driven in-process through `io.signal` (the abort Ctrl-C and
 * SIGTERM cause in the bin), plus one run of the bin in its own process stopped by a real SIGINT.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import blog from "../../examples/blog/config.js";
import type { CliIo } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";
import { login } from "../helpers/auth.js";
import { startServer, TEST_JWT_SECRET, type TestServer } from "../helpers/server.js";
import { BLOG, blogOnFile, cli, ROOT, tempDir } from "./helpers.js";

const { dir } = tempDir("citadel-cli-serve-");
const SECRET_ENV = { CITADEL_JWT_SECRET: TEST_JWT_SECRET };

/** `citadel openapi --config blog [--role role]`, parsed; fails the test unless it is exit 0 with JSON on stdout. */
async function openapi(role?: string): Promise<Record<string, unknown>> {
  const run = await cli(["openapi", "--config", BLOG, ...(role ? ["--role", role] : [])]);
  expect(run.code, run.stderr).toBe(0);
  expect(run.stderr).toBe("");
  return JSON.parse(run.stdout);
}

describe("citadel openapi (12.1, 12.5)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(blog.config!);
  });
  afterAll(() => server?.close());

  /** What the route answers over HTTP: a caller without a token, or a signed-in user of `role`. */
  async function served(role?: string): Promise<unknown> {
    let headers: Record<string, string> = {};
    if (role) {
      const email = `${role}-openapi@example.com`;
      await server.app.module.auth.createUser({ email, password: "openapi-password", role });
      headers = { authorization: `Bearer ${await login(server, email, "openapi-password")}` };
    }
    const res = await server.request("GET", "/api/system/openapi.json", undefined, headers);
    expect(res.status, res.text).toBe(200);
    return res.body;
  }

  it("without --role prints, as JSON, what the route answers a caller without a token (12.5)", async () => {
    const document = await openapi();
    expect(document.openapi).toMatch(/^3\.1\./);
    expect(document).toEqual(await served());
  });

  it("with --role prints what the route answers a signed-in user of that role (12.5)", async () => {
    expect(await openapi("author")).toEqual(await served("author"));
  });

  it("a role that reaches less gets a smaller document: anonymous cannot create posts, an author can (12.5)", async () => {
    const anonymous = (await openapi()) as { paths: Record<string, Record<string, unknown>> };
    const author = (await openapi("author")) as { paths: Record<string, Record<string, unknown>> };
    expect(anonymous).not.toEqual(author);
    expect(author.paths["/api/data/posts"]?.post).toBeDefined();
    expect(anonymous.paths["/api/data/posts"]?.post).toBeUndefined();
  });

  it("an unknown role is exit 1 naming the configured roles, in one line (12.1)", async () => {
    const run = await cli(["openapi", "--config", BLOG, "--role", "nope"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(
      'citadel: unknown role "nope" (configured roles: anonymous, commenter, author, moderator, admin)\n',
    );
  });

  it("--help says which caller the document is for (12.1)", async () => {
    const run = await cli(["openapi", "--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Usage: citadel openapi --config <file> [--role <role>]");
    expect(run.stdout).toContain("Without --role: the API as a caller without a token sees it (the default role)");
  });
});

/** An io for a run of `serve`: `url` resolves once it prints where it listens, `stop()` is what Ctrl-C does. */
function serveIo(env: Record<string, string>) {
  const stop = new AbortController();
  const out = { stdout: "", stderr: "" };
  let listening: (url: string) => void = () => {};
  const url = new Promise<string>((resolve) => {
    listening = resolve;
  });
  const io: CliIo = {
    stdout(text) {
      out.stdout += text;
      const match = /^listening on (\S+)$/m.exec(out.stdout);
      if (match) listening(match[1]!);
    },
    stderr(text) {
      out.stderr += text;
    },
    stdin: async () => undefined,
    prompt: async (question) => {
      throw new Error(`unexpected prompt: ${question}`);
    },
    env,
    signal: stop.signal,
  };
  return { io, url, out, stop: () => stop.abort() };
}

/** Start `citadel serve` in-process; resolves with its URL once it listens, or fails with what it printed. */
async function startServe(argv: string[], env: Record<string, string> = SECRET_ENV) {
  const run = serveIo(env);
  const exit = main(["serve", ...argv, "--port", "0", "--hostname", "127.0.0.1"], run.io);
  const url = await Promise.race([
    run.url,
    exit.then((code) => {
      throw new Error(`serve ended with exit ${code} before listening: ${run.out.stderr}`);
    }),
  ]);
  return { ...run, url, exit };
}

/** A config module: the blog on its own SQLite file, with a seed that writes one published post. */
function seededBlog(name: string): string {
  const config = join(dir, `${name}.config.ts`);
  writeFileSync(
    config,
    `import blog from ${JSON.stringify(BLOG)};\n` +
      "export default {\n" +
      "  ...blog,\n" +
      `  connection: { url: ${JSON.stringify(`file:${join(dir, `${name}.db`)}`)} },\n` +
      "  options: { seed: ({ app }) => app.module.data.create('posts', { title: 'Seeded', published: true }) },\n" +
      "};\n",
  );
  return config;
}

describe("citadel serve (12.1)", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("serves the config's app on its own database and seed, and closes cleanly when stopped: exit 0 (12.1)", async () => {
    const config = seededBlog("served");
    const served = await startServe(["--config", config]);
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const posts = await fetch(`${served.url}/api/data/posts`);
    expect(posts.status).toBe(200);
    expect(((await posts.json()) as { data: { title: string }[] }).data.map((p) => p.title)).toEqual(["Seeded"]);
    const register = await fetch(`${served.url}/api/auth/password/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "reader@example.com", password: "a long reader password" }),
    });
    expect(register.status, await register.clone().text()).toBe(201);
    const document = await fetch(`${served.url}/api/system/openapi.json`);
    expect(await document.json()).toEqual(await openapi());

    served.stop();
    expect(await served.exit, served.out.stderr).toBe(0);
    expect(served.out.stdout).toBe(`listening on ${served.url}\nstopped\n`);
    await expect(fetch(`${served.url}/api/data/posts`)).rejects.toThrow();
    // the user it registered is in the config's own database, which it left closed and readable
    const users = await cli(["user", "list", "--config", config]);
    expect(users.stdout).toContain("reader@example.com");
  });

  it("refuses to start without a JWT secret rather than invent one: one line, exit 1 (12.1, 3.2)", async () => {
    vi.stubEnv("CITADEL_JWT_SECRET", "");
    vi.stubEnv("CITADEL_DEV", "");
    const run = serveIo({});
    run.stop(); // stopped from the start: a server that did start would end at once with exit 0, not hang
    const code = await main(["serve", "--config", blogOnFile(dir, join(dir, "no-secret.db")), "--port", "0"], run.io);
    expect(code).toBe(1);
    expect(run.out.stdout).toBe("");
    expect(run.out.stderr).toMatch(
      /^citadel: cannot start: config\.auth\.jwt\.secret: no JWT secret is set \(set config\.auth\.jwt\.secret or CITADEL_JWT_SECRET[^\n]*\n$/,
    );
  });

  it("a port that is taken is one line, exit 1 (12.1)", async () => {
    const first = await startServe(["--config", blogOnFile(dir, join(dir, "first.db"))]);
    const port = new URL(first.url).port;
    try {
      const second = serveIo(SECRET_ENV);
      second.stop(); // as above: a second server that did start would end at once
      const argv = ["serve", "--config", blogOnFile(dir, join(dir, "second.db")), "--hostname", "127.0.0.1"];
      const code = await main([...argv, "--port", port], second.io);
      expect(code).toBe(1);
      expect(second.out.stderr).toMatch(/^citadel: cannot start: [^\n]*EADDRINUSE[^\n]*\n$/);
    } finally {
      first.stop();
      expect(await first.exit).toBe(0);
    }
  });

  it.each([["abc"], ["65536"], ["-1"]])("--port %s is a wrong command line: exit 2 (12.1)", async (port) => {
    const run = await cli(["serve", "--config", BLOG, `--port=${port}`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--port expects a port number from 0 to 65535");
  });

  it("--help names its options and how it stops (12.1)", async () => {
    const run = await cli(["serve", "--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Usage: citadel serve --config <file> [--db <url>] [--port <n>] [--hostname <host>]");
    expect(run.stdout).toContain("Ctrl-C or SIGTERM closes");
  });

  it("the bin stops on SIGINT, closing cleanly with exit 0 (12.1)", async () => {
    const args = ["--import", "tsx", join(ROOT, "src/cli/index.ts"), "serve", "--config", seededBlog("bin")];
    const child = spawn(process.execPath, [...args, "--port", "0", "--hostname", "127.0.0.1"], {
      cwd: ROOT,
      env: { ...process.env, ...SECRET_ENV },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const exited = new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", resolve);
    });
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (d) => {
        stdout += d;
        const match = /^listening on (\S+)$/m.exec(stdout);
        if (match) resolve(match[1]!);
      });
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      exited.then((code) => reject(new Error(`the bin ended with ${code} before listening: ${stderr}`)));
    });
    const res = await fetch(`${url}/api/data/posts`);
    expect(res.status).toBe(200);
    child.kill("SIGINT");
    expect(await exited, stderr).toBe(0);
    expect(stdout).toBe(`listening on ${url}\nstopped\n`);
  });
});
