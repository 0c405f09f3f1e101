/**
 * The change feed (§8): the outbox follows the data engine's mutations in their transaction, and the hub
 * streams them to subscribers once committed (here or on another server: it reads the outbox).
 */
import type { DataEvents } from "../data/events.js";
import type { Models } from "../data/models.js";
import type { Db } from "../db/connection.js";
import { PLAIN_IDS, sealedIds } from "./event-ids.js";
import { FeedHub, type FeedSettings } from "./hub.js";
import { appendEvents, installOutbox } from "./outbox.js";

export type { EventIds } from "./event-ids.js";
export type { FeedSettings, SubscribeInput } from "./hub.js";
export { FeedHub } from "./hub.js";
export { OUTBOX_TABLE } from "./outbox.js";
export type { Credentials, FeedMessage, Watch } from "./subscription.js";
export { Subscription } from "./subscription.js";

/** Install the outbox, append every mutation to it, and open the hub that streams it. */
export async function openFeed(
  db: Db,
  events: DataEvents,
  models: Models,
  settings: FeedSettings,
  /** the JWT secret when auth is on: event ids are sealed under a key derived from it */
  secret: Uint8Array | undefined,
  log: (message: string, error?: unknown) => void,
): Promise<FeedHub> {
  await installOutbox(db);
  const ids = secret ? await sealedIds(secret) : PLAIN_IDS;
  const hub = new FeedHub(db, models, settings, ids, log);
  events.onMutation((trx, mutations) => appendEvents(trx, mutations));
  events.onCommit(() => hub.wake());
  await hub.prune();
  return hub;
}
