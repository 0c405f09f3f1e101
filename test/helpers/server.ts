/** Starts a real Citadel server on a temporary SQLite file and offers a tiny fetch-based client. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CitadelApp, CitadelConfig, ServeOptions } from "citadel";
import { serve } from "citadel/adapter/node";

/** Apps with auth enabled refuse to start without a JWT secret (§3.2); tests get one unless they set their own. */
export const TEST_JWT_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
process.env.CITADEL_JWT_SECRET ??= TEST_JWT_SECRET;

export type Driver = "better-sqlite3" | "libsql";
export const DRIVERS: Driver[] = ["better-sqlite3", "libsql"];

export interface TestServer {
  url: string;
  dbFile: string;
  /** the running app, e.g. for `app.module.auth.createUser(...)` */
  app: CitadelApp;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON
  body: any;
  text: string;
}

/** Start a server; pass `dir` to reuse a database file across restarts. */
export async function startServer(
  config: CitadelConfig,
  opts: { driver?: Driver; dir?: string; options?: ServeOptions["options"] } = {},
): Promise<TestServer> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "citadel-test-"));
  const dbFile = join(dir, "data.db");
  const handle = serve({
    connection: { url: `file:${dbFile}`, driver: opts.driver ?? "better-sqlite3" },
    config,
    options: opts.options,
    port: 0,
    hostname: "127.0.0.1",
    quiet: true,
  });
  await handle.ready;
  const url = handle.url;
  return {
    url,
    dbFile,
    app: handle.app!,
    async request(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (body !== undefined) {
        init.body = typeof body === "string" ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)["content-type"] ??= "application/json";
      }
      const res = await fetch(url + path, init);
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    async close() {
      await handle.close();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
