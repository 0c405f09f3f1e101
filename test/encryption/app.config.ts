/**
 * The encryption tests' app for the CLI (`citadel encryption rotate --config test/encryption/app.config.ts --db …`);
 * keys come from CITADEL_ENCRYPTION_KEYS. Imports the source directly, so a child process under tsx loads it too.
 */
import type { CreateAppInput } from "../../src/index.js";
import { em, entity, json, relation, text } from "../../src/index.js";

export const schema = em(
  {
    patients: entity("patients", {
      name: text().required(),
      ssn: text().encrypted({ searchable: true }),
      notes: text().encrypted(),
      chart: json().encrypted(),
    }),
    visits: entity("visits", { reason: text().encrypted(), room: text() }),
  },
  ({ patients, visits }) => [relation(visits, "patient").manyToOne(patients)],
);

const app: CreateAppInput = { config: { data: schema.toJSON(), audit: { enabled: true } } };
export default app;
