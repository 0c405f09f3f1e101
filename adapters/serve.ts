/**
 * What every server adapter does the same way (node, bun): build the app, listen, report a failed start once,
 * close in order. Each adapter brings its runtime and how to listen; nothing here imports a server library.
 */
import { checkAppInput } from "../src/config/input.js";
import { type CitadelApp, createApp, type Runtime, type ServeOptions } from "../src/index.js";

export const DEFAULT_PORT = 7654;
/** What `serve` takes beside createApp's input. */
const SERVE_KEYS = ["port", "hostname", "quiet"];

export interface ServerHandle {
  /** Resolves once the app is built and listening; rejects when it cannot start (bad config, …). */
  ready: Promise<void>;
  /** `http://host:port`, once ready. */
  url: string;
  port: number;
  app: CitadelApp | undefined;
  close(): Promise<void>;
}

/** A listening server: where it listens and how to stop it. */
export interface Listener {
  port: number;
  /** the address it is bound to, e.g. `127.0.0.1`, `::` */
  hostname: string;
  close(): Promise<void>;
}

export type Listen = (app: CitadelApp, port: number, hostname: string | undefined) => Promise<Listener>;

function portFrom(options: ServeOptions): number {
  if (options.port !== undefined) return options.port;
  const env = Number(process.env.PORT);
  return Number.isInteger(env) && env >= 0 ? env : DEFAULT_PORT;
}

function urlOf({ hostname, port }: Listener): string {
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return `http://${host === "0.0.0.0" || host === "[::]" ? "localhost" : host}:${port}`;
}

/**
 * Start Citadel. Returns at once with a handle; `await handle.ready` to know it listens. When startup
 * fails, the error is printed once (`citadel: cannot start: …`, no stack), the process exit code is set to
 * 1 and `ready` rejects with it; a caller that catches it can still recover (and reset the exit code).
 */
export function serveWith(
  options: ServeOptions,
  runtime: Runtime,
  listen: Listen,
  /** throws when this is not the adapter's runtime, before anything starts */
  checkRuntime: () => void = () => {},
): ServerHandle {
  let listener: Listener | undefined;
  const handle = {
    url: "",
    port: 0,
    app: undefined,
    async close() {
      await handle.ready.catch(() => {});
      // open change-feed streams end first: the listener closes once no response is still being written
      await handle.app?.feed?.close();
      await listener?.close();
      await handle.app?.close();
    },
  } as unknown as ServerHandle;
  handle.ready = (async () => {
    checkRuntime();
    checkAppInput(options, SERVE_KEYS, "serve");
    const { connection, config, options: appOptions } = options;
    const app = await createApp({ connection, config, options: appOptions, runtime: options.runtime ?? runtime });
    handle.app = app;
    try {
      listener = await listen(app, portFrom(options), options.hostname);
    } catch (error) {
      await app.close(); // the port is taken: nothing else keeps the database open
      throw error;
    }
    handle.port = listener.port;
    handle.url = urlOf(listener);
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

/**
 * The README's `await serve(…).ready` at the top of an ESM script rethrows the startup error as an
 * uncaught exception; Node (and Bun, which hands it to the same listeners) would print it a second time,
 * with a stack into files the package does not ship. We printed it already, so that one error object is
 * ignored until the current turn of the event loop ends. Any other uncaught exception meanwhile ends the
 * process as Node would (stack, exit code 1), unless the app has its own handler.
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
