import type { Logger } from "pino";
import type { ImagesRepository, NewImage } from "../db/images-repository.ts";
import type { KeyValueStore } from "../kv/kv.ts";
import type { Metrics } from "../metrics.ts";

const STREAM = "buffer:intents";
const DRAIN_LOCK = "buffer:intents:drain-lock";

/**
 * While the database is unreachable, new intents are written to a KV stream so the client still
 * gets its upload URL; a drainer replays them into the database once it answers again. Replay is
 * idempotent by image id, so two drainers or a crash mid-drain never make a second row.
 */
export class IntentBuffer {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly images: ImagesRepository,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  async add(image: NewImage): Promise<void> {
    await this.kv.streamAdd(STREAM, JSON.stringify(image));
    this.metrics.intentsBuffered.inc();
  }

  length(): Promise<number> {
    return this.kv.streamLength(STREAM);
  }

  /** Replays buffered intents; returns how many rows it wrote. Stops at the first database error. */
  async drain(batch = 200): Promise<number> {
    const token = crypto.randomUUID();
    if (!(await this.kv.setIfAbsent(DRAIN_LOCK, token, 30_000))) return 0;
    let written = 0;
    try {
      for (;;) {
        const entries = await this.kv.streamRange(STREAM, batch);
        if (entries.length === 0) break;
        for (const entry of entries) {
          const image = revive(JSON.parse(entry.payload) as NewImage);
          if (await this.images.insertIfAbsent(image)) written++;
          await this.kv.streamDelete(STREAM, [entry.id]);
        }
      }
    } finally {
      await this.kv.deleteIfEquals(DRAIN_LOCK, token);
    }
    if (written > 0) {
      this.metrics.intentsReplayed.inc(written);
      this.log.info({ written }, "buffered intents written to the database");
    }
    return written;
  }
}

function revive(image: NewImage): NewImage {
  return { ...image, uploadExpiresAt: new Date(image.uploadExpiresAt) };
}
