/**
 * globalSetup of the `postgres` project: one PostgreSQL for the whole run, each test server a database of its
 * own on it (test/helpers/server.ts). `CITADEL_TEST_POSTGRES_URL` names an external server instead; then no
 * cluster starts, and the databases this run created there are dropped at the end.
 */
import type { TestProject } from "vitest/node";
import { dropDatabases, startPostgres } from "../helpers/engines.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** the PostgreSQL the test servers create their databases on */
    postgres: { baseUrl: string; prefix: string };
  }
}

export default async function setup(project: TestProject) {
  const external = process.env.CITADEL_TEST_POSTGRES_URL;
  const cluster = external ? undefined : await startPostgres();
  const baseUrl = external ?? cluster!.baseUrl;
  // Names unique to this run, so the teardown drops this run's databases only.
  const prefix = `citadel_${Date.now().toString(36)}`;
  project.provide("postgres", { baseUrl, prefix });
  return async () => {
    if (cluster) await cluster.close();
    else await dropDatabases(baseUrl, prefix);
  };
}
