/**
 * Shared bench helpers: drive one URL with autocannon and print requests/s and p50/p99 latency. The load
 * generator runs in its own process so that it does not share the server's event loop.
 */
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

export const DURATION_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);

export interface Scenario {
  name: string;
  url: string;
  method?: "GET" | "POST";
  body?: string;
  headers?: Record<string, string>;
}

export interface Figures {
  name: string;
  rps: number;
  /** requests answered in all */
  requests: number;
  p50: number;
  p99: number;
  errors: number;
}

export const tempDb = () => join(mkdtempSync(join(tmpdir(), "citadel-bench-")), "bench.db");

const AUTOCANNON = join(createRequire(import.meta.url).resolve("autocannon"), "..", "autocannon.js");

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  non2xx: number;
}

export async function drive(s: Scenario): Promise<Figures> {
  const args = [AUTOCANNON, "--json", "-c", String(CONNECTIONS), "-d", String(DURATION_SECONDS)];
  args.push("-m", s.method ?? "GET", "-H", "content-type=application/json");
  for (const [name, value] of Object.entries(s.headers ?? {})) args.push("-H", `${name}=${value}`);
  if (s.body) args.push("-b", s.body);
  args.push(s.url);
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 });
  const result = JSON.parse(stdout) as AutocannonResult;
  const errors = result.errors + result.non2xx;
  return {
    name: s.name,
    rps: result.requests.average,
    requests: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors,
  };
}

export function printTable(title: string, rows: Figures[]) {
  console.log(`\n${title} (${CONNECTIONS} connections, ${DURATION_SECONDS}s each, autocannon in its own process)`);
  console.log(
    `${"scenario".padEnd(48)} ${"req/s".padStart(9)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"errors".padStart(7)}`,
  );
  for (const r of rows)
    console.log(
      `${r.name.padEnd(48)} ${r.rps.toFixed(0).padStart(9)} ${String(r.p50).padStart(8)} ${String(r.p99).padStart(8)} ${String(r.errors).padStart(7)}`,
    );
}
