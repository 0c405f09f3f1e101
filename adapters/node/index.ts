/** Node adapter: `serve()` on @hono/node-server. Connection and listening only; no business logic. */
import type { AddressInfo } from "node:net";
import { serve as honoServe, type ServerType } from "@hono/node-server";
import { type CitadelApp, createApp, type ServeOptions } from "../../src/index.js";

export type { ServeOptions };

export const DEFAULT_PORT = 7654;

export interface ServerHandle {
  /** Resolves once the app is built and listening; rejects when it cannot start (bad config, …). */
  ready: Promise<void>;
  /** `http://host:port`, once ready. */
  url: string;
  port: number;
  app: CitadelApp | undefined;
  close(): Promise<void>;
}

function portFrom(options: ServeOptions): number {
  if (options.port !== undefined) return options.port;
  const env = Number(process.env.PORT);
  return Number.isInteger(env) && env >= 0 ? env : DEFAULT_PORT;
}

/**
 * Start Citadel. Returns at once with a handle; `await handle.ready` to know it listens. When nobody
 * awaits `ready` and startup fails, the error is printed (without a stack) and the process exit code set.
 */
export function serve(options: ServeOptions): ServerHandle {
  let server: ServerType | undefined;
  const handle = {
    url: "",
    port: 0,
    app: undefined,
    async close() {
      await handle.ready.catch(() => {});
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      await handle.app?.close();
    },
  } as unknown as ServerHandle;
  handle.ready = (async () => {
    const app = await createApp(options);
    handle.app = app;
    await new Promise<void>((resolve, reject) => {
      server = honoServe(
        { fetch: app.fetch, port: portFrom(options), hostname: options.hostname },
        (info: AddressInfo) => {
          handle.port = info.port;
          const host = info.address.includes(":") ? `[${info.address}]` : info.address;
          handle.url = `http://${host === "0.0.0.0" || host === "[::]" ? "localhost" : host}:${info.port}`;
          resolve();
        },
      );
      server.once("error", reject);
    });
    if (!options.quiet) console.log(`citadel: listening on ${handle.url}`);
  })();
  handle.ready.catch((error: unknown) => {
    if (options.quiet) return;
    console.error(`citadel: cannot start: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
  return handle;
}
