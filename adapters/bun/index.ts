/** Bun adapter: `serve()` on `Bun.serve`, bun:sqlite by default (connect.ts); no business logic. */
import type { ServeOptions } from "../../src/index.js";
import { DEFAULT_PORT, type Listen, type ServerHandle, serveWith } from "../serve.js";
import { type BunServerEnv, bunRuntime } from "./runtime.js";

export type { ServeOptions, ServerHandle };
export { bunRuntime, DEFAULT_PORT };

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

// the server is the app's `env`, so the runtime reads the client's address from it (bunRuntime.remoteAddress)
const listen: Listen = async (app, port, hostname) => {
  const server = bunServe()({ port, hostname, fetch: (request, server) => app.fetch(request, server) });
  return { port: server.port, hostname: server.hostname, close: async () => server.stop(true) };
};

/**
 * Start Citadel on Bun. Returns at once with a handle; `await handle.ready` to know it listens. When startup
 * fails, the error is printed once (`citadel: cannot start: …`, no stack), the process exit code is set to
 * 1 and `ready` rejects with it, as on Node.
 */
export function serve(options: ServeOptions): ServerHandle {
  return serveWith(options, bunRuntime, listen, bunServe);
}
