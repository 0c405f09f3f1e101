/**
 * `npm run bench:auth`: POST /api/auth/password/login over loopback at the configured argon2 parameters
 * (OWASP defaults unless BENCH_ARGON2_MEMORY / BENCH_ARGON2_TIME are set), for a right password and for an
 * unknown email (which must cost the same: one verification against the dummy hash). Rate limits are raised
 * so the figures measure hashing, not 429s. argon2 runs on libuv's thread pool (UV_THREADPOOL_SIZE, default 4).
 */
import { availableParallelism } from "node:os";
import autocannon from "autocannon";
import { serve } from "citadel/adapter/node";
import { tempDb } from "./lib.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const PASSWORD = "bench password 1234";
const argon2 = {
  memory_cost: Number(process.env.BENCH_ARGON2_MEMORY ?? 19_456),
  time_cost: Number(process.env.BENCH_ARGON2_TIME ?? 2),
  parallelism: 1,
};

async function main() {
  const server = serve({
    connection: { url: `file:${tempDb()}` },
    config: {
      auth: {
        enabled: true,
        jwt: { secret: "bench-secret-bench-secret-bench-secret-0123" },
        password: { argon2 },
        rate_limit: { max_per_email: 1_000_000_000, max_per_address: 1_000_000_000 },
      },
    },
    port: 0,
    hostname: "127.0.0.1",
    quiet: true,
  });
  await server.ready;
  const auth = server.app!.module.auth;
  await auth.createUser({ email: "bench@example.com", password: PASSWORD });

  console.log(
    `login bench: argon2id m=${argon2.memory_cost} KiB t=${argon2.time_cost} p=${argon2.parallelism}, ` +
      `${CONNECTIONS} connections, ${SECONDS}s each, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4}, ` +
      `${availableParallelism()} CPUs, loopback`,
  );
  console.log(
    `${"scenario".padEnd(34)} ${"req/s".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"2xx".padStart(7)} ${"401".padStart(7)} ${"other".padStart(6)}`,
  );
  for (const [name, email, password, expected] of [
    ["login, right password", "bench@example.com", PASSWORD, "2xx"],
    ["login, unknown email", "nobody@example.com", PASSWORD, "401"],
  ] as const) {
    const before = auth.counters().verifications;
    const result = await autocannon({
      url: `${server.url}/api/auth/password/login`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password }),
      connections: CONNECTIONS,
      duration: SECONDS,
    });
    const codes = result.statusCodeStats as unknown as Record<string, { count: number } | undefined>;
    const ok = result["2xx"];
    const unauthorized = codes["401"]?.count ?? 0;
    const other = result.errors + result.non2xx - unauthorized;
    console.log(
      `${name.padEnd(34)} ${result.requests.average.toFixed(0).padStart(8)} ${String(result.latency.p50).padStart(8)} ${String(result.latency.p99).padStart(8)} ${String(ok).padStart(7)} ${String(unauthorized).padStart(7)} ${String(other).padStart(6)}`,
    );
    const verifications = auth.counters().verifications - before;
    const answered = expected === "2xx" ? ok : unauthorized;
    if (verifications < answered) console.log(`  (!) ${answered} answers but only ${verifications} verifications`);
  }
  await server.close();
}

await main();
