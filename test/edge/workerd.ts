/**
 * Runs a module worker under workerd for tests: bundles its entry with esbuild the way wrangler would (browser
 * platform, workerd conditions, node:* left to nodejs_compat, .wasm imported as modules), writes a workerd
 * config with text bindings and one socket on a free loopback port, and starts `workerd serve`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile } from "esbuild";
import { freePort } from "../helpers/engines.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WORKERD = join(ROOT, "node_modules/.bin/workerd");
/** A date this workerd supports; nodejs_compat gives node:crypto (randomBytes) and `process`. */
const COMPATIBILITY_DATE = "2025-11-01";
const READY_TIMEOUT_MS = 30_000;

export interface Bundle {
  dir: string;
  /** the worker's JavaScript, then the .wasm modules it imports */
  modules: { name: string; kind: "esModule" | "wasm" }[];
  metafile: Metafile;
  bytes: number;
  /** delete the directory (after every workerd serving it has closed) */
  remove(): void;
}

/** Bundle `entry` (relative to the repository) into a temporary directory. */
export async function bundleWorker(entry: string): Promise<Bundle> {
  const dir = mkdtempSync(join(tmpdir(), "citadel-workerd-"));
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    outfile: join(dir, "worker.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    alias: { citadel: "./src/index.ts", "citadel/adapter/edge": "./adapters/edge/index.ts" },
    external: ["node:*", "*.wasm"],
    minify: true,
    metafile: true,
    logLevel: "silent",
  });
  const modules: Bundle["modules"] = [{ name: "worker.js", kind: "esModule" }];
  const output = result.metafile.outputs[Object.keys(result.metafile.outputs)[0]!]!;
  // external .wasm imports keep their relative path: copy each file beside worker.js under that name
  for (const { path } of output.imports.filter((i) => i.path.endsWith(".wasm"))) {
    const name = basename(path);
    copyFileSync(join(ROOT, "adapters/edge/wasm", name), join(dir, name));
    modules.push({ name, kind: "wasm" });
  }
  const remove = () => rmSync(dir, { recursive: true, force: true });
  return { dir, modules, metafile: result.metafile, bytes: output.bytes, remove };
}

export interface Workerd {
  url: string;
  /** what workerd printed (the worker's console too) */
  output(): string;
  close(): Promise<void>;
}

/** Start workerd serving `bundle` with text `bindings`; it may reach servers on loopback (the test's sqld). */
export async function startWorkerd(bundle: Bundle, bindings: Record<string, string>): Promise<Workerd> {
  const port = await freePort();
  const str = (s: string) => JSON.stringify(s);
  const modules = bundle.modules.map((m) => `(name = ${str(m.name)}, ${m.kind} = embed ${str(m.name)})`);
  const texts = Object.entries(bindings).map(([name, value]) => `(name = ${str(name)}, text = ${str(value)})`);
  const config = join(bundle.dir, `config-${port}.capnp`);
  writeFileSync(
    config,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "loopback", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = ${str(`127.0.0.1:${port}`)}, http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [${modules.join(", ")}],
  compatibilityDate = ${str(COMPATIBILITY_DATE)},
  compatibilityFlags = ["nodejs_compat"],
  bindings = [${texts.join(", ")}],
  globalOutbound = "loopback",
);
`,
  );
  let output = "";
  const child: ChildProcess = spawn(WORKERD, ["serve", config], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  // ready once the socket answers at all; the first request also builds the app (schema sync on the server)
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      await close();
      throw new Error(`workerd exited with ${child.exitCode}:\n${output}`);
    }
    if (
      await fetch(url, { method: "HEAD" }).then(
        () => true,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) {
      await close();
      throw new Error(`workerd was not listening after ${READY_TIMEOUT_MS} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url, output: () => output, close };
}
