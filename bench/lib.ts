/** Shared bench helpers: drive one URL with autocannon and print requests/s and p50/p99 latency. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";

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
  p50: number;
  p99: number;
  errors: number;
}

export const tempDb = () => join(mkdtempSync(join(tmpdir(), "citadel-bench-")), "bench.db");

export async function drive(s: Scenario): Promise<Figures> {
  const result = await autocannon({
    url: s.url,
    method: s.method ?? "GET",
    body: s.body,
    headers: { "content-type": "application/json", ...s.headers },
    connections: CONNECTIONS,
    duration: DURATION_SECONDS,
  });
  const errors = result.errors + result.non2xx;
  return { name: s.name, rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors };
}

export function printTable(title: string, rows: Figures[]) {
  console.log(`\n${title} (${CONNECTIONS} connections, ${DURATION_SECONDS}s each, loopback)`);
  console.log(
    `${"scenario".padEnd(48)} ${"req/s".padStart(9)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"errors".padStart(7)}`,
  );
  for (const r of rows)
    console.log(
      `${r.name.padEnd(48)} ${r.rps.toFixed(0).padStart(9)} ${String(r.p50).padStart(8)} ${String(r.p99).padStart(8)} ${String(r.errors).padStart(7)}`,
    );
}
