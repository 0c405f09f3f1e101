/** Node adapter: `serve()` on @hono/node-server, connections through Node's drivers (connect.ts); no business logic. */
import type { AddressInfo } from "node:net";
import { serve as honoServe, type ServerType } from "@hono/node-server";
import { type CitadelApp, createApp, type ServeOptions } from "../../src/index.js";
import { nodeRuntime } from "./runtime.js";

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
 * Start Citadel. Returns at once with a handle; `await handle.ready` to know it listens. When startup
 * fails, the error is printed once (`citadel: cannot start: …`, no stack), the process exit code is set to
 * 1 and `ready` rejects with it; a caller that catches it can still recover (and reset the exit code).
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
    const app = await createApp({ ...options, runtime: options.runtime ?? nodeRuntime });
    handle.app = app;
    try {
      await listen(app, options, handle, (s) => {
        server = s;
      });
    } catch (error) {
      await app.close(); // the port is taken: nothing else keeps the database open
      throw error;
    }
    if (!options.quiet) console.log(`citadel: listening on ${handle.url}`);
  })();
  handle.ready.catch((error: unknown) => {
    if (options.quiet) return;
    console.error(`citadel: cannot start: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
    reportedOnce(error);
  });
  return handle;
}

function listen(app: CitadelApp, options: ServeOptions, handle: ServerHandle, started: (s: ServerType) => void) {
  return new Promise<void>((resolve, reject) => {
    const server = honoServe(
      { fetch: app.fetch, port: portFrom(options), hostname: options.hostname },
      (info: AddressInfo) => {
        handle.port = info.port;
        const host = info.address.includes(":") ? `[${info.address}]` : info.address;
        handle.url = `http://${host === "0.0.0.0" || host === "[::]" ? "localhost" : host}:${info.port}`;
        resolve();
      },
    );
    server.once("error", reject);
    started(server);
  });
}

/**
 * The README's `await serve(…).ready` at the top of an ESM script rethrows the startup error as an
 * uncaught exception; Node would print it a second time, with a stack into files the package does not
 * ship. We printed it already, so that one error object is ignored until the current turn of the event
 * loop ends. Any other uncaught exception meanwhile ends the process as Node would (stack, exit code 1),
 * unless the app has its own handler.
 */
function reportedOnce(error: unknown): void {
  const ignore = (thrown: unknown) => {
    if (thrown === error || process.listenerCount("uncaughtException") > 1) return;
    console.error(thrown);
    process.exit(1);
  };
  process.on("uncaughtException", ignore);
  setImmediate(() => process.off("uncaughtException", ignore));
}
