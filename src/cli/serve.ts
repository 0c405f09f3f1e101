/**
 * `citadel serve` (12.1): the app of `--config` on Node, through the Node adapter's `serve` (loaded only by this
 * command, so the others never load a server), on the config's own connection and seed, until Ctrl-C or SIGTERM
 * — or `io.signal`, which is how a test stops it — then closed in order: change-feed streams, listener, database.
 */
import type { Command } from "./commands.js";
import type { CliIo } from "./io.js";
import { appInput, print } from "./open.js";
import { UsageError } from "./usage.js";

const MAX_PORT = 65_535;

function portNumber(value: string): number | undefined {
  return /^\d+$/.test(value) && Number(value) <= MAX_PORT ? Number(value) : undefined;
}

/** `--port`, else the environment's PORT when it is a port number (as the adapter reads it); else undefined. */
function portOf(value: string | undefined, io: CliIo): number | undefined {
  if (value === undefined) return portNumber(io.env.PORT ?? "");
  const port = portNumber(value);
  if (port === undefined) throw new UsageError(`--port expects a port number from 0 to ${MAX_PORT} (0: any free port)`);
  return port;
}

/** Resolves once `signal` aborts; never without one. */
const stopped = (signal: AbortSignal | undefined) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    signal?.addEventListener("abort", () => resolve(), { once: true });
  });

export const SERVE_COMMANDS: Command[] = [
  {
    name: "serve",
    summary: "Run the app of the config as an HTTP server on Node until Ctrl-C",
    details:
      "Opens the config's own connection (or --db) and runs its seed, as createApp does, and prints the URL it\n" +
      "listens on. With auth on it needs config.auth.jwt.secret or CITADEL_JWT_SECRET: the tokens it issues must\n" +
      "verify after a restart, so it refuses to start without one (config.auth.dev / CITADEL_DEV=1 opt into a\n" +
      "throwaway secret). Without --port: the environment's PORT, else 7654. Ctrl-C or SIGTERM closes the open\n" +
      "change-feed streams, the listener and the database, then exit 0; a start that fails is one line, exit 1.",
    options: ["config", "db", "port", "hostname"],
    required: ["config"],
    async run(values, io) {
      const port = portOf(values.port, io);
      const input = await appInput(values, io, { issuesTokens: true });
      const { serve, DEFAULT_PORT } = await import("../../adapters/node/index.js");
      // asked before the start, so a Ctrl-C while the app opens still closes it cleanly
      io.stopOnSignals?.();
      // quiet: the adapter prints nothing and leaves the exit code alone; the CLI says it once, its own way
      const handle = serve({ ...input, port: port ?? DEFAULT_PORT, hostname: values.hostname, quiet: true });
      try {
        await handle.ready;
      } catch (error) {
        await handle.close();
        throw new Error(`cannot start: ${error instanceof Error ? error.message : String(error)}`);
      }
      print(io, `listening on ${handle.url}`);
      await stopped(io.signal);
      await handle.close();
      print(io, "stopped");
    },
  },
];
