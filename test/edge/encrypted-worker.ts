/**
 * A worker with an encrypted field (§10.1, §11.3), for test/edge/encryption.test.ts: its keys come from the
 * `CITADEL_ENCRYPTION_KEYS` binding, as a Cloudflare secret would give them.
 */
import { em, entity, text } from "citadel";
import { citadel } from "citadel/adapter/edge";

const schema = em({
  notes: entity("notes", { title: text().required(), secret: text().encrypted({ searchable: true }) }),
});

export default citadel({ config: { data: schema.toJSON(), feed: { enabled: false } } });
