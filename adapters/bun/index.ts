/** Bun adapter: `serve()` on `Bun.serve`, bun:sqlite by default (connect.ts); no business logic. */
import { type CitadelApp, createApp, type ServeOptions } from "../../src/index.js";
import type { ServerHandle } from "../node/index.js";
import { type BunServerEnv, bunRuntime } from "./runtime.js";

export type { ServeOptions, ServerHandle };
export { bunRuntime };

export const DEFAULT_PORT = 7654;

/** The part of Bun's `Server` the adapter uses; it is also the `env` the app's handlers see (runtime.ts). */
interface BunServer extends BunServerEnv {
  readonly port: number;
  readonly hostname: string;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}

interface BunServeOptions {
  port: number;
  hostname?: string;
  fetch(request: Request, server: BunServer): Response | Promise<Response>;
}

function bunServe(): (options: BunServeOptions) => BunServer {
  const bun = (globalThis as { Bun?: { serve(options: BunServeOptions): BunServer } }).Bun;
  if (!bun) throw new Error('citadel/adapter/bun runs under Bun (`bun server.ts`); on Node use "citadel/adapter/node"');
  return bun.serve.bind(bun);
}

function portFrom(options: ServeOptions): number {
  if (options.port !== undefined) return options.port;
  const env = Number(process.env.PORT);
  return Number.isInteger(env) && env >= 0 ? env : DEFAULT_PORT;
}

/**
 * Start Citadel on Bun. Returns at once with a handle; `await handle.ready` to know it listens. When startup
 * fails, the error is printed once (`citadel: cannot start: …`, no stack), the process exit code is set to
 * 1 and `ready` rejects with it; a caller that catches it can still recover (and reset the exit code), as on Node.
 */
export function serve(options: ServeOptions): ServerHandle {
  let server: BunServer | undefined;
  const handle = {
    url: "",
    port: 0,
    app: undefined,
    async close() {
      await handle.ready.catch(() => {});
      await server?.stop(true);
      await handle.app?.close();
    },
  } as unknown as ServerHandle;
  handle.ready = (async () => {
    const start = bunServe();
    const app = await createApp({ ...options, runtime: options.runtime ?? bunRuntime });
    handle.app = app;
    try {
      server = listen(start, app, options, handle);
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

function listen(start: ReturnType<typeof bunServe>, app: CitadelApp, options: ServeOptions, handle: ServerHandle) {
  // the server is the app's `env`, so the runtime reads the client's address from it (bunRuntime.remoteAddress)
  const server = start({
    port: portFrom(options),
    hostname: options.hostname,
    fetch: (request, server) => app.fetch(request, server),
  });
  handle.port = server.port;
  const host = server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname;
  handle.url = `http://${host === "0.0.0.0" || host === "[::]" ? "localhost" : host}:${server.port}`;
  return server;
}

/**
 * `await serve(…).ready` at the top of a module rethrows the startup error, and Bun would print it again with
 * a source excerpt and a stack. Bun hands that rethrow to `uncaughtException` listeners as Node does, so the
 * one error object we printed is ignored until the current turn of the event loop ends; any other uncaught
 * exception meanwhile ends the process with its stack (the same code as adapters/node/index.ts).
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
