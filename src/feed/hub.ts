/**
 * The change feed of one server (§8): it follows the outbox, not its memory, so several servers on one
 * database deliver the same events. While anyone subscribes, it reads the events after the last one it saw
 * (every `poll_ms`, and at once after a local commit), decides in SQL which subscribers may see each row image
 * now, and which fields of it, and queues what each may see. A subscriber that resumes from an older event
 * catches up from the outbox on its own, as fast as it reads.
 */
import type { ValidatedConfig } from "../config/schema.js";
import type { Row } from "../data/codec.js";
import type { EntityModel, Models } from "../data/models.js";
import type { Db } from "../db/connection.js";
import { RateLimitedError, UnauthorizedError } from "../errors.js";
import type { FeedCounts } from "../metrics/monitor.js";
import type { EventIds } from "./event-ids.js";
import { eventsAfter, type OutboxEvent, oldestKept, outboxHead, pruneOutbox } from "./outbox.js";
import { type Credentials, type EndReason, type FeedMessage, Subscription, type Watch } from "./subscription.js";
import { followsRelations, sightsOf } from "./visibility.js";

/** Events read from the outbox at a time (each holds a row before and after: bounded memory). */
const BATCH = 100;
const HOUR = 3_600_000;

export type FeedSettings = ValidatedConfig["feed"];

export interface SubscribeInput {
  watch: Watch;
  /** who opens it, for the per-caller limit: a user, a key, or a client address */
  caller: string;
  /** the Last-Event-ID to resume after, as the client sent it (well-formed: the route checked) */
  lastEventId?: string;
  credentials?: Credentials;
}

/** Map.groupBy (Node 21+). */
function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return groups;
}

const pick = (row: Row, fields: readonly string[]): Row =>
  Object.fromEntries(fields.filter((f) => f in row).map((f) => [f, row[f]]));

/** What one subscriber is sent for one event, given whether it may see the row before and after (§8.2). */
function actionFor(before: boolean, after: boolean): "create" | "update" | "delete" | undefined {
  if (after) return before ? "update" : "create";
  return before ? "delete" : undefined;
}

/** The fields a subscriber reads on the row before and after an event (§9.4: some only on some rows). */
interface Shown {
  before: readonly string[];
  after: readonly string[];
}

/** A stream's fields less those hidden on each image (none, for a stream without row fields). */
function shownFields(fields: readonly string[], hidden: { before: string[]; after: string[] }): Shown {
  const less = (off: string[]) => (off.length === 0 ? fields : fields.filter((f) => !off.includes(f)));
  return { before: less(hidden.before), after: less(hidden.after) };
}

/** The field the server sets on every write (§1.3): a change of it alone is no change a subscriber may see. */
const WRITE_STAMP = "updated_at";

/** Whether an update shows the same values on both images, its write stamp aside. */
const sameShown = (before: Row, after: Row): boolean => {
  const values = (image: Row) => JSON.stringify(Object.entries(image).filter(([field]) => field !== WRITE_STAMP));
  return values(before) === values(after);
};

/**
 * The message of an event, showing of each image the fields readable on it; undefined for an update that
 * changes nothing readable: what was readable before is compared with what is readable after, `updated_at`
 * aside (it changes on every write: it would tell that, and when, something hidden changed; the subscriber's
 * next event carries it). Only the fields shown are decrypted (§10): a value failing its integrity check
 * throws, for the streams that would show it.
 */
function messageFor(
  model: EntityModel,
  event: OutboxEvent,
  id: string,
  shown: Shown,
  action: "create" | "update" | "delete",
) {
  const open = (image: Row, fields: readonly string[]) => model.codec.open(pick(image, fields));
  const before = action === "create" ? undefined : open(event.before!, shown.before);
  const record = action === "delete" ? before! : open(event.after!, shown.after);
  // a change to fields it cannot read (on either image) is no event: it would tell that something hidden changed
  if (action === "update" && sameShown(before!, record)) return undefined;
  const data = { action, entity: event.entity, id: event.id, record, at: event.at };
  return { event: action, id, data: JSON.stringify(data) } satisfies FeedMessage;
}

export class FeedHub {
  private readonly subscribers = new Set<Subscription>();
  private readonly perCaller = new Map<string, number>();
  /** the last outbox event the live subscribers were given */
  private seq = 0;
  private running = false;
  /** streams being opened: counted against max_subscribers already */
  private opening = 0;
  /** the loop while it runs */
  private looping: Promise<void> | undefined;
  private closed = false;
  private woken = false;
  private wakeUp: (() => void) | undefined;
  private readonly pruning: ReturnType<typeof setInterval>;

  constructor(
    private readonly db: Db,
    private readonly models: Models,
    private readonly settings: FeedSettings,
    /** what a client sees of a sequence number */
    readonly ids: EventIds,
    private readonly log: (message: string, error?: unknown) => void,
  ) {
    this.pruning = setInterval(() => void this.prune(), HOUR);
    this.pruning.unref?.();
  }

  /** Remove the events past their retention (also done hourly by every server). */
  async prune(now = new Date()): Promise<number> {
    try {
      return await pruneOutbox(this.db, new Date(now.getTime() - this.settings.retention_hours * HOUR));
    } catch (error) {
      this.log("change feed: pruning the outbox failed", error);
      return 0;
    }
  }

  /** Open a stream; 429 beyond the server's or the caller's number of streams. */
  async subscribe(input: SubscribeInput): Promise<Subscription> {
    const { settings } = this;
    if (this.subscribers.size + this.opening >= settings.max_subscribers)
      throw new RateLimitedError(5, `this server already holds ${settings.max_subscribers} change-feed streams`);
    if ((this.perCaller.get(input.caller) ?? 0) >= settings.max_subscribers_per_caller)
      throw new RateLimitedError(5, `at most ${settings.max_subscribers_per_caller} change-feed streams per caller`);
    // the slots are taken before the first await: concurrent opens cannot all pass the checks above
    this.opening++;
    this.countCaller(input.caller, 1);
    let sub: Subscription;
    let startAt: number;
    try {
      const head = await outboxHead(this.db);
      const { cursor, reset } = await this.resumeAt(input.lastEventId, head, input.watch);
      sub = new Subscription(input.watch, input.caller, input.credentials, cursor, {
        messages: settings.buffer,
        bytes: settings.buffer_bytes,
      });
      if (reset) {
        const resumes = await this.ids.seal(cursor);
        sub.push({ event: "reset", id: resumes, data: JSON.stringify({ reason: reset, resumes_after: resumes }) });
      }
      startAt = head;
    } catch (error) {
      this.countCaller(input.caller, -1);
      throw error;
    } finally {
      this.opening--;
    }
    this.add(sub);
    // not running: no stream is open (the loop stops with the last), so the live position is this head
    if (!this.running) {
      this.seq = startAt;
      this.running = true;
      this.looping = this.loop();
    }
    const expiresAt = input.credentials?.expiresAt;
    if (expiresAt !== undefined) {
      const timer = setTimeout(() => sub.end("expired"), Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1));
      timer.unref?.();
      sub.onEnded(() => clearTimeout(timer));
    }
    return sub;
  }

  /**
   * Where a stream starts: after its Last-Event-ID when every event since is still kept; otherwise after the
   * oldest kept (or the head), with a `reset` telling the client to read the rows again.
   */
  private async resumeAt(
    id: string | undefined,
    head: number,
    watch: Watch,
  ): Promise<{ cursor: number; reset?: string }> {
    if (id === undefined) return { cursor: head };
    const last = await this.ids.open(id);
    if (last === undefined || last > head)
      return { cursor: head, reset: "this Last-Event-ID is not an event of this database" };
    // an old row image judged against related rows as they are now could show a version of the row (or a field
    // of it) that was never readable (a comment written on a private post that was published since): read the
    // rows again
    if (last < head && [watch.filter, ...watch.rowFields.map(([, rule]) => rule)].some(followsRelations))
      return {
        cursor: head,
        reset: "this stream's filter or field rules follow relations: missed events are not replayed",
      };
    const oldest = (await oldestKept(this.db)) ?? head + 1;
    if (last < oldest - 1) return { cursor: oldest - 1, reset: "events after this Last-Event-ID are no longer kept" };
    return { cursor: last };
  }

  private countCaller(caller: string, by: number): void {
    const now = (this.perCaller.get(caller) ?? 0) + by;
    if (now > 0) this.perCaller.set(caller, now);
    else this.perCaller.delete(caller);
  }

  /** Hold an opened stream (its caller's slot is already counted) until it ends. */
  private add(sub: Subscription): void {
    this.subscribers.add(sub);
    sub.onEnded(() => {
      this.ended[sub.ended!] = (this.ended[sub.ended!] ?? 0) + 1;
      this.subscribers.delete(sub);
      this.countCaller(sub.caller, -1);
    });
  }

  /** A mutation committed here: read the outbox now rather than at the next poll. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** End every stream; resolves once a read of the outbox under way is done (the database may close then). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pruning);
    for (const sub of [...this.subscribers]) sub.end("closed");
    this.wake();
    await this.looping;
  }

  /** How many streams are open (metrics, tests). */
  get size(): number {
    return this.subscribers.size;
  }

  private sent = 0;
  private readonly ended: Record<string, number> = {};

  /** For metrics: streams open, events queued to them, streams ended by reason ("closed" when the client left). */
  counts(): FeedCounts {
    return { subscribers: this.subscribers.size, events: this.sent, ended: { ...this.ended } };
  }

  private async loop(): Promise<void> {
    while (this.subscribers.size > 0 && !this.closed) {
      this.woken = false;
      try {
        await this.tick();
      } catch (error) {
        this.log("change feed: reading the outbox failed", error);
      }
      if (!this.woken) await this.pause();
    }
    this.running = false;
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.settings.poll_ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        done();
      };
    });
  }

  private async tick(): Promise<void> {
    await this.recheck();
    await this.catchUp();
    await this.follow();
  }

  /** Verify again the credentials of every stream not verified for `recheck_ms`: an idle stream ends too (§8.3). */
  private async recheck(): Promise<void> {
    const now = Date.now();
    await this.verify([...this.subscribers].filter((s) => now - s.checkedAt >= this.settings.recheck_ms));
  }

  /**
   * Verify the credentials of these streams now, each credential once however many streams share it; end the
   * streams whose credential fails. Fail closed: one that cannot be verified (the database is away) ends too.
   */
  private async verify(subs: Subscription[]): Promise<void> {
    const byCredential = groupBy(
      subs.filter((s) => s.credentials && !s.ended),
      (s) => s.credentials!.id,
    );
    const now = Date.now();
    await Promise.all(
      [...byCredential.values()].map(async (group) => {
        try {
          await group[0]!.credentials!.recheck();
          for (const sub of group) sub.checkedAt = now;
        } catch (error) {
          if (!(error instanceof UnauthorizedError)) this.log("change feed: verifying a subscriber failed", error);
          for (const sub of group) sub.end("revoked");
        }
      }),
    );
  }

  /** Streams behind the live position read their own entity's events from the outbox, as far as their queue allows. */
  private async catchUp(): Promise<void> {
    for (const sub of this.subscribers) {
      if (sub.cursor >= this.seq || sub.room <= 0 || sub.ended) continue;
      const limit = Math.min(sub.room, BATCH);
      const events = await eventsAfter(this.db, {
        after: sub.cursor,
        upTo: this.seq,
        entity: sub.watch.entity,
        limit,
      });
      await this.deliverOrEnd(sub.watch.entity, events, [sub]);
      sub.cursor = events.length === limit ? events.at(-1)!.seq : this.seq;
    }
  }

  /** The events after the live position, to every stream at it. */
  private async follow(): Promise<void> {
    for (;;) {
      const events = await eventsAfter(this.db, { after: this.seq, limit: BATCH });
      if (events.length === 0) return;
      const live = [...this.subscribers].filter((s) => s.cursor >= this.seq);
      for (const [entity, batch] of groupBy(events, (e) => e.entity))
        await this.deliverOrEnd(
          entity,
          batch,
          live.filter((s) => s.watch.entity === entity),
        );
      const last = events.at(-1)!.seq;
      for (const sub of live) sub.cursor = Math.max(sub.cursor, last);
      this.seq = last;
      if (events.length < BATCH) return;
    }
  }

  /**
   * Deliver, or end the streams it was for when the decision fails (the database went away, a filter the
   * engine refuses): fail closed, and never hold every other stream on one event. They resume from their
   * Last-Event-ID, so nothing is lost.
   */
  private async deliverOrEnd(entity: string, events: OutboxEvent[], subs: Subscription[]): Promise<void> {
    try {
      await this.deliver(entity, events, subs);
    } catch (error) {
      // decide each filter on its own: only the streams whose own filters cannot be decided end
      const byFilter = groupBy(subs, (s) => s.decisionKey);
      if (byFilter.size > 1) {
        for (const group of byFilter.values()) await this.deliverOrEnd(entity, events, group);
        return;
      }
      this.log("change feed: deciding what subscribers may see failed", error);
      for (const sub of subs) sub.end("failed");
    }
  }

  /** The message `build` makes; undefined (sent to none of the streams it was for, and logged) when it throws. */
  private message(event: OutboxEvent, build: () => FeedMessage | undefined): FeedMessage | undefined {
    try {
      return build();
    } catch (error) {
      this.log(`change feed: event ${event.seq} not sent`, error);
      return undefined;
    }
  }

  /**
   * Decide, in one query per batch, which of `subs` may see each event's row before and after, and which of
   * their row fields (§9.4) on each image, and queue it.
   */
  private async deliver(entity: string, events: OutboxEvent[], subs: Subscription[]): Promise<void> {
    const model = this.models.get(entity);
    const open = subs.filter((s) => !s.ended);
    if (!model || open.length === 0 || events.length === 0) return;
    const images: Row[] = [];
    const at = events.map((event) => ({
      before: event.before ? images.push(event.before) - 1 : -1,
      after: event.after ? images.push(event.after) - 1 : -1,
    }));
    const sights = await sightsOf(this.db, model, images, open);
    const ids = await Promise.all(events.map((event) => this.ids.seal(event.seq)));
    // streams that read the same fields on the images get the same message: built once
    const built = new Map<string, FeedMessage | undefined>();
    const outgoing = new Map<Subscription, FeedMessage[]>();
    for (const sub of open) {
      const { sees, hidden } = sights.get(sub)!;
      const messages: FeedMessage[] = [];
      events.forEach((event, i) => {
        const action = event.seq > sub.cursor && actionFor(sees(at[i]!.before), sees(at[i]!.after));
        if (!action) return;
        // only the images the message is made of are asked which row fields they hide
        const off = {
          before: action === "create" ? [] : hidden(at[i]!.before),
          after: action === "delete" ? [] : hidden(at[i]!.after),
        };
        const key = `${i} ${action} ${sub.fieldsKey} ${off.before.join(",")} ${off.after.join(",")}`;
        // encrypted fields are ciphertext in the outbox (§10): decrypted here, once per message built
        if (!built.has(key)) {
          const shown = shownFields(sub.watch.fields, off);
          built.set(
            key,
            this.message(event, () => messageFor(model, event, ids[i]!, shown, action)),
          );
        }
        const message = built.get(key);
        if (message) messages.push(message);
      });
      if (messages.length > 0) outgoing.set(sub, messages);
    }
    // no event reaches a token or key revoked before it was read: verified after the read, before the send
    await this.verify([...outgoing.keys()]);
    for (const [sub, messages] of outgoing) {
      if (sub.ended) continue;
      for (const message of messages) sub.push(message);
      this.sent += messages.length;
    }
  }
}

export type { EndReason };
