/**
 * The SQL statements a data call sends: a DataEngine over the app's own connection with a Kysely plugin that
 * records every query it compiles (one per statement sent; the transaction's BEGIN/COMMIT are not queries).
 * Calls go through the same scoped accessor as the HTTP routes, with trusted access.
 */
import type { CitadelApp } from "citadel";
import type { KyselyPlugin } from "kysely";
import { openAccess } from "../../src/app.js";
import { DataEngine, type ScopedData } from "../../src/data/engine.js";

export interface CountedData {
  data: ScopedData;
  /** the kind of each statement sent since the last `reset()`, e.g. "SelectQueryNode", "InsertQueryNode" */
  statements(): string[];
  reset(): void;
}

export function countStatements(app: CitadelApp, limits = { defaultLimit: 20, maxLimit: 1000 }): CountedData {
  let kinds: string[] = [];
  const plugin: KyselyPlugin = {
    transformQuery: ({ node }) => {
      kinds.push(node.kind);
      return node;
    },
    transformResult: async ({ result }) => result,
  };
  const engine = new DataEngine(app.db.withPlugin(plugin), app.engine.models);
  return {
    data: engine.as(openAccess({ role: undefined, trusted: true }), limits),
    statements: () => kinds,
    reset: () => {
      kinds = [];
    },
  };
}
