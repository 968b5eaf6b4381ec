import { randomUUID } from "node:crypto";
import { ERRORS } from "../domain/errors.ts";
import type { ImageRecord } from "../domain/image.ts";
import type { KeyValueStore } from "../kv/kv.ts";

/** Where image versions live in the shared KV; every writer and every reader agrees on these. */
export const imageVersionKey = (id: string) => `imgrec:i:${id}`;
export const ownerVersionKey = (ownerId: string) => `imgrec:o:${ownerId}`;

/** What a write calls once its change is committed: the image's (or the owner's) cached records die. */
export interface RecordInvalidator {
  images(ids: readonly string[]): Promise<void>;
  owner(ownerId: string): Promise<void>;
}

export interface ImageRecordCacheOptions {
  /** Records kept (LRU); 0 turns the cache off: every lookup reads the database. */
  entries: number;
  /** A record is read again from the database at least this often, whatever the versions say. */
  maxAgeMs: number;
  now?: () => number;
}

interface Entry {
  record: ImageRecord;
  imageVersion: string | null;
  /** undefined: not read before the record was, so the entry cannot answer a lookup yet. */
  ownerVersion: string | null | undefined;
  expiresAt: number;
}

interface Waiter {
  id: string;
  ownerId: string | null;
  resolve: (versions: { image: string | null; owner: string | null } | null) => void;
}

/**
 * Ready image records in process memory, checked on every lookup against per-image and per-owner
 * versions in the shared KV, which every write that could make an image undeliverable replaces
 * after it commits (InvalidatingImagesRepository and friends). The versions are read before the
 * database, so a record cached from a read that raced a write carries the version the write
 * replaced and fails its next check: a lookup that starts after a write returned never sees the
 * record from before it, on any instance. Lookups arriving in the same turn of the event loop share
 * one MGET. Without the KV (an error) it reads the database every time, like no cache at all.
 */
export class ImageRecordCache {
  private readonly entries = new Map<string, Entry>();
  private pending: Waiter[] = [];
  private readonly now: () => number;

  constructor(
    private readonly load: (id: string) => Promise<ImageRecord | null>,
    private readonly kv: Pick<KeyValueStore, "getMany">,
    private readonly opts: ImageRecordCacheOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  async get(id: string): Promise<ImageRecord | null> {
    if (this.opts.entries <= 0) return this.load(id);
    const cached = this.entries.get(id);
    // An image's owner never changes, so even an expired entry names the owner whose version to read.
    const ownerId = cached?.record.ownerId ?? null;
    const versions = await this.versions(id, ownerId);
    if (!versions) return this.load(id);
    if (
      cached &&
      cached.expiresAt > this.now() &&
      cached.ownerVersion !== undefined &&
      versions.image === cached.imageVersion &&
      versions.owner === cached.ownerVersion &&
      this.entries.get(id) === cached
    ) {
      // Map order is the LRU order: a hit moves to the back.
      this.entries.delete(id);
      this.entries.set(id, cached);
      return cached.record;
    }
    const record = await this.load(id);
    if (record?.status !== "ready") {
      this.entries.delete(id);
      return record;
    }
    // The owner's version must have been read before the load too; when the owner was not known
    // yet, the entry only records who it is, and the next lookup reads both versions and loads again.
    const trusted = ownerId === record.ownerId;
    this.remember(record, versions.image, trusted ? versions.owner : undefined);
    return record;
  }

  /** Forgets everything held (tests; a process that lost the KV for long). */
  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private remember(
    record: ImageRecord,
    imageVersion: string | null,
    ownerVersion: string | null | undefined,
  ): void {
    this.entries.delete(record.id);
    this.entries.set(record.id, {
      record,
      imageVersion,
      ownerVersion,
      expiresAt: this.now() + this.opts.maxAgeMs,
    });
    while (this.entries.size > this.opts.entries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  private versions(
    id: string,
    ownerId: string | null,
  ): Promise<{ image: string | null; owner: string | null } | null> {
    return new Promise((resolve) => {
      this.pending.push({ id, ownerId, resolve });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    const keys = new Map<string, number>();
    const indexOf = (key: string) => {
      let i = keys.get(key);
      if (i === undefined) {
        i = keys.size;
        keys.set(key, i);
      }
      return i;
    };
    const wanted = batch.map((w) => ({
      image: indexOf(imageVersionKey(w.id)),
      owner: w.ownerId === null ? -1 : indexOf(ownerVersionKey(w.ownerId)),
    }));
    this.kv.getMany([...keys.keys()]).then(
      (values) => {
        batch.forEach((w, n) => {
          const at = wanted[n] as { image: number; owner: number };
          w.resolve({
            image: values[at.image] ?? null,
            owner: at.owner < 0 ? null : (values[at.owner] ?? null),
          });
        });
      },
      () => {
        for (const w of batch) w.resolve(null);
      },
    );
  }
}

/** Replaces versions in the KV: what every write path calls after its change committed. */
export class KvRecordInvalidator implements RecordInvalidator {
  constructor(
    private readonly kv: Pick<KeyValueStore, "set">,
    /** Longer than any cache's max age, so a version cannot lapse while a record cached under it lives. */
    private readonly versionTtlMs: number,
  ) {}

  async images(ids: readonly string[]): Promise<void> {
    await Promise.all(
      ids.map((id) => this.kv.set(imageVersionKey(id), randomUUID(), this.versionTtlMs)),
    ).catch(unavailable);
  }

  async owner(ownerId: string): Promise<void> {
    await this.kv.set(ownerVersionKey(ownerId), randomUUID(), this.versionTtlMs).catch(unavailable);
  }
}

/**
 * The write committed but other instances may not have heard: the caller gets a 503 and may retry
 * (every such write is idempotent), rather than a success that some instance contradicts.
 */
function unavailable(): never {
  throw ERRORS.unavailable(
    "the change is saved, but other instances could not be told yet (the KV is unreachable); retry",
    { headers: { "Retry-After": "1" } },
  );
}
