/**
 * Monitoring on the edge (§7.5, §11): the worker's bundle carries neither prom-client nor the exporter, every
 * request still passes through the monitor, and the metrics route says where it is served.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bundle, bundleWorker, startWorkerd, type Workerd } from "../edge/workerd.js";
import { type Sqld, startSqld } from "../helpers/engines.js";

const SECRET = "metrics-edge-secret-0123456789-abcdefghijklmn";

describe("metrics under workerd (7.5, 11.3)", () => {
  let sqld: Sqld;
  let bundle: Bundle;
  let worker: Workerd;

  beforeAll(async () => {
    [sqld, bundle] = await Promise.all([startSqld(), bundleWorker("test/metrics/edge-worker.ts")]);
    worker = await startWorkerd(bundle, { LIBSQL_URL: sqld.url, CITADEL_JWT_SECRET: SECRET });
  }, 60_000);
  afterAll(async () => {
    await worker?.close();
    await sqld?.close();
    bundle?.remove();
  });

  it("the bundle carries neither prom-client nor the exporter", () => {
    const inputs = Object.keys(bundle.metafile.inputs);
    expect(inputs.some((path) => path.endsWith("src/http/monitor.ts"))).toBe(true);
    expect(inputs.filter((path) => /prom-client|src\/metrics\/prometheus/.test(path))).toEqual([]);
  });

  it("answers requests as before; the metrics route is 404 there, saying where it is served", async () => {
    const registered = await fetch(`${worker.url}/api/auth/password/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "w@test.com", password: "edge-metrics-password" }),
    });
    const text = await registered.text();
    expect(registered.status, `${text}\n${worker.output()}`).toBe(201);
    const { token } = JSON.parse(text);
    const refused = await fetch(`${worker.url}/api/system/metrics`);
    expect(refused.status).toBe(403);
    const res = await fetch(`${worker.url}/api/system/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status, worker.output()).toBe(404);
    expect((await res.json()).error.message).toMatch(/Node and Bun/);
    expect(worker.output()).not.toMatch(/unexpected error/);
  });
});
