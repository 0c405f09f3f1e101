/**
 * A module worker for test/metrics/edge.test.ts: sign-up gives the role that may read the metrics. Not a test
 * file itself.
 */
import { citadel } from "citadel/adapter/edge";

export default citadel({
  config: {
    auth: {
      enabled: true,
      allow_register: true,
      default_role_register: "watcher",
      password: { argon2: { memory_cost: 1024, time_cost: 1, parallelism: 1 } },
      roles: { watcher: { permissions: ["system.metrics.read"] } },
    },
  },
});
