/**
 * The load client of bench/load.ts: `connections` workers, each a keep-alive connection to one of the
 * servers (round robin), sending the request `pick` chooses as soon as the previous answer arrived. Counts
 * statuses, times every request, keeps one body per 5xx status, and calls `done` with each answer.
 */
import { Agent, request } from "node:http";

export interface Op {
  kind: string;
  method: "GET" | "POST" | "PATCH";
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** the status (0: no answer, the connection failed) and the parsed JSON body (undefined if not JSON) */
  done?: (status: number, body: unknown) => void;
}

interface Options {
  bases: string[];
  connections: number;
  seconds: number;
  pick: (worker: number) => Op;
}

interface KindStats {
  latencies: number[];
  ok: number;
}

const quantile = (sorted: number[], q: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

function send(agent: Agent, base: URL, op: Op): Promise<{ status: number; text: string }> {
  const body = op.body === undefined ? undefined : JSON.stringify(op.body);
  const headers: Record<string, string> = { ...op.headers };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve) => {
    const req = request(
      { agent, host: base.hostname, port: base.port, method: op.method, path: op.path, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", (error) => resolve({ status: 0, text: String(error) }));
      },
    );
    req.on("error", (error) => resolve({ status: 0, text: String(error) }));
    req.end(body);
  });
}

/** Drive the servers for `seconds`; in-flight requests finish before it resolves. */
export async function runClient({ bases, connections, seconds, pick }: Options) {
  const urls = bases.map((b) => new URL(b));
  const agents = urls.map(() => new Agent({ keepAlive: true, maxSockets: connections }));
  const statuses = new Map<number, number>();
  const samples = new Map<number, string>();
  const byKind = new Map<string, KindStats>();
  const all: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;

  async function worker(w: number) {
    const server = w % urls.length;
    while (performance.now() < deadline) {
      const op = pick(w);
      const t0 = performance.now();
      const { status, text } = await send(agents[server]!, urls[server]!, op);
      const ms = performance.now() - t0;
      all.push(ms);
      const stats = byKind.get(op.kind) ?? { latencies: [], ok: 0 };
      byKind.set(op.kind, stats);
      stats.latencies.push(ms);
      if (status >= 200 && status < 300) stats.ok++;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if ((status >= 500 || status === 0) && !samples.has(status))
        samples.set(status, `${op.method} ${urls[server]!.origin}${op.path} -> ${text.slice(0, 500)}`);
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      op.done?.(status, parsed);
    }
  }
  await Promise.all(Array.from({ length: connections }, (_, w) => worker(w)));
  const elapsed = (performance.now() - started) / 1000;
  for (const agent of agents) agent.destroy();

  all.sort((a, b) => a - b);
  const total = all.length;
  return {
    rps: total / elapsed,
    byKind,
    samples,
    serverErrors: () => [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0),
    print() {
      const ms = (x: number) => x.toFixed(1).padStart(8);
      console.log(
        `requests ${total} in ${elapsed.toFixed(1)}s: ${(total / elapsed).toFixed(0)} req/s, p50 ${quantile(all, 0.5).toFixed(1)} ms, p99 ${quantile(all, 0.99).toFixed(1)} ms`,
      );
      console.log(
        `${"request".padEnd(10)} ${"count".padStart(8)} ${"2xx".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)}`,
      );
      for (const [kind, s] of [...byKind].sort()) {
        s.latencies.sort((a, b) => a - b);
        console.log(
          `${kind.padEnd(10)} ${String(s.latencies.length).padStart(8)} ${String(s.ok).padStart(8)} ${ms(quantile(s.latencies, 0.5))} ${ms(quantile(s.latencies, 0.99))}`,
        );
      }
      const counts = [...statuses].sort(([a], [b]) => a - b).map(([s, c]) => `${s === 0 ? "no answer" : s}: ${c}`);
      console.log(`status codes: ${counts.join(", ")}`);
      console.log(`5xx answers: ${[...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0)}`);
    },
  };
}
