/**
 * Starts a Citadel server in a Bun process (serve.ts, through citadel/adapter/bun) on a real database and talks
 * to it over HTTP from the test runner; also runs serve.ts to a startup error. Not a test file itself.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bearer, login } from "../helpers/auth.js";
import type { TestResponse, TestServer } from "../helpers/server.js";
import type { Seeded } from "./apps.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
/** The `bun` binary of the `bun` devDependency (a native executable, so its pid is the server's). */
export const BUN = join(root, "node_modules", ".bin", "bun");
const SERVE = join(root, "test", "bun", "serve.ts");

export const ANON = "anon";

export interface BunServer extends Seeded {
  url: string;
  /** the Bun process */
  pid: number;
  /** the SQLite file, when the server runs on one */
  dbFile: string;
  /** what the process printed on stderr so far */
  stderr(): string;
  /** `localAddress` sends the request from that loopback address (e.g. 127.0.0.2). */
  request(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
    localAddress?: string,
  ): Promise<TestResponse>;
  /** A request as a bearer `token`, or as nobody with ANON. */
  as(token: string, method: string, path: string, body?: unknown): Promise<TestResponse>;
  close(): Promise<void>;
}

/** Start the test app `app` (apps.ts) under Bun, on a fresh SQLite file unless `url` names another database. */
export async function startBunServer(app: string, opts: { url?: string; driver?: string } = {}): Promise<BunServer> {
  const dir = mkdtempSync(join(tmpdir(), "citadel-bun-"));
  const dbFile = join(dir, "data.db");
  const child = spawn(BUN, [SERVE, app, opts.url ?? `file:${dbFile}`, opts.driver ?? ""], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk) => {
    stderr += chunk;
  });
  let ready: { url: string } & Seeded;
  try {
    ready = await readyLine(child, () => stderr);
  } catch (error) {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const request: BunServer["request"] = (method, path, body, headers = {}, localAddress) =>
    send(new URL(path, ready.url), method, body, headers, localAddress);
  return {
    ...ready,
    pid: child.pid!,
    dbFile,
    stderr: () => stderr,
    request,
    as: (token, method, path, body) => request(method, path, body, bearer(token === ANON ? undefined : token)),
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill();
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readyLine(child: ChildProcess, stderr: () => string): Promise<{ url: string } & Seeded> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    child.stdout!.on("data", (chunk) => {
      stdout += chunk;
      const line = stdout.split("\n").find((l) => l.startsWith("ready "));
      if (line) resolve(JSON.parse(line.slice("ready ".length)));
    });
    child.once("exit", (code) => reject(new Error(`bun exited with ${code} before listening:\n${stderr()}`)));
  });
}

/** One HTTP request with node:http, which can choose the local address (fetch cannot). */
function send(
  url: URL,
  method: string,
  body: unknown,
  headers: Record<string, string>,
  localAddress: string | undefined,
): Promise<TestResponse> {
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const all = { ...(payload === undefined ? {} : { "content-type": "application/json" }), ...headers };
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: all, localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers))
          for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value])
            responseHeaders.append(name, v);
        resolve({ status: res.statusCode!, headers: responseHeaders, body: parsed, text });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

/** Run serve.ts to its end, for startup errors: `args` are the app, the connection URL and the driver. */
export function runBun(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(BUN, [SERVE, ...args], { cwd: root, encoding: "utf8", timeout: 20_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** Log in over HTTP with the suite's `login`, which uses only `request` (the app itself is in the Bun process). */
export const loginAs = (server: BunServer, email: string, password: string): Promise<string> =>
  login(server as unknown as TestServer, email, password);
