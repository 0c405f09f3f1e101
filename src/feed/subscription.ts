/**
 * One open change-feed stream (§8.2): what it watches, how far it has read the outbox, and the messages
 * waiting to be written to it. The queue is bounded: a subscriber that falls behind by more is dropped (it
 * resumes from its Last-Event-ID), so a slow reader costs its own memory, never a writer's time.
 */
import type { Watch } from "../data/scoped.js";

export type { Watch };

/** The caller's credentials, verified again while the stream is open (§8.3). */
export interface Credentials {
  /** the same for the same token and key: streams that share them are verified once */
  id: string;
  /** throws when the token or key no longer holds (expired, revoked, the user's role or tenant changed) */
  recheck(): Promise<void>;
  /** when the token expires (ms since the epoch) */
  expiresAt?: number;
}

/** A Server-Sent Event. */
export interface FeedMessage {
  event: string;
  data: string;
  /** the outbox sequence number (the client's Last-Event-ID) */
  id?: string;
}

export type EndReason = "expired" | "revoked" | "slow" | "failed" | "closed";

const WHY: Record<EndReason, string> = {
  expired: "the token expired",
  revoked: "the token or key is no longer valid",
  slow: "the subscriber fell too far behind; reconnect with Last-Event-ID to resume",
  failed: "the server could not decide what this stream may see; reconnect with Last-Event-ID to resume",
  closed: "the server is closing",
};

export class Subscription {
  /** the outbox sequence number this subscriber has been given everything up to */
  cursor: number;
  /** when its credentials were last verified */
  checkedAt = Date.now();
  ended: EndReason | undefined;
  /** a key of the watch's filter: subscribers with equal filters are answered by one SQL column */
  readonly filterKey: string;
  /** a key of each of its row fields' rules (in the order of `watch.rowFields`): one SQL column per distinct rule */
  readonly ruleKeys: readonly string[];
  /** a key of everything SQL decides for it: streams with equal ones are decided (and fail) together */
  readonly decisionKey: string;
  /** a key of the fields it reads: with the row fields shown on an image, streams share each event's message */
  readonly fieldsKey: string;
  private queue: FeedMessage[] = [];
  /** the size of the queued messages' data */
  private queuedBytes = 0;
  private wakeUp: (() => void) | undefined;
  private readonly onEnd: (() => void)[] = [];

  constructor(
    readonly watch: Watch,
    readonly caller: string,
    readonly credentials: Credentials | undefined,
    cursor: number,
    /** how many messages, and how many bytes of them, may wait to be written */
    private readonly buffer: { messages: number; bytes: number },
  ) {
    this.cursor = cursor;
    this.filterKey = JSON.stringify(watch.filter);
    this.ruleKeys = watch.rowFields.map(([, rule]) => JSON.stringify(rule));
    this.decisionKey = [this.filterKey, ...this.ruleKeys].join("\n");
    this.fieldsKey = watch.fields.join(",");
  }

  /** Room left in the queue, in messages (none once its bytes are half used: catching up leaves room). */
  get room(): number {
    return this.queuedBytes * 2 >= this.buffer.bytes ? 0 : this.buffer.messages - this.queue.length;
  }

  /** Queue a message; a subscriber whose queue is full is dropped. */
  push(message: FeedMessage): void {
    if (this.ended) return;
    const full =
      this.queue.length >= this.buffer.messages || this.queuedBytes + message.data.length > this.buffer.bytes;
    // one message always fits an empty queue, however large: a stream resuming before a large row progresses
    if (full && this.queue.length > 0) {
      this.end("slow");
      return;
    }
    this.queue.push(message);
    this.queuedBytes += message.data.length;
    this.wake();
  }

  /**
   * End the stream: nothing queued is sent any more (a revoked caller gets no event after it is found out),
   * only a `close` event saying why.
   */
  end(reason: EndReason): void {
    if (this.ended) return;
    this.ended = reason;
    this.queue = [{ event: "close", data: JSON.stringify({ reason: WHY[reason] }) }];
    this.queuedBytes = 0;
    this.wake();
    for (const listener of this.onEnd.splice(0)) listener();
  }

  onEnded(listener: () => void): void {
    if (this.ended) listener();
    else this.onEnd.push(listener);
  }

  /** Every message queued now (written together: one write for a burst, not one per event). */
  takeAll(): FeedMessage[] {
    this.queuedBytes = 0;
    return this.queue.splice(0);
  }

  /** The next message; "idle" after `idleMs` without one; undefined once the stream ended and all is sent. */
  async next(idleMs: number): Promise<FeedMessage | "idle" | undefined> {
    if (this.queue.length === 0 && !this.ended) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
        timer = setTimeout(resolve, idleMs);
      });
      clearTimeout(timer);
      this.wakeUp = undefined;
    }
    const message = this.queue.shift();
    if (message) {
      this.queuedBytes -= message.data.length;
      return message;
    }
    return this.ended ? undefined : "idle";
  }

  private wake(): void {
    this.wakeUp?.();
  }
}
