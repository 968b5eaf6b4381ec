/**
 * Bytes of small, recently served variants in process memory, bounded in total bytes (LRU). A
 * variant's key names its image, spec and format, and its bytes are a function of those, so an
 * entry never goes stale; whether the image may still be served is decided before every lookup
 * (the record check), so a deleted image's variant is never answered from here either.
 */
export class HotVariants {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(
    /** Total bytes held; 0 turns it off. */
    private readonly maxBytes: number,
    /** Larger variants are streamed from the storage each time. */
    readonly maxEntryBytes: number,
  ) {}

  get enabled(): boolean {
    return this.maxBytes > 0 && this.maxEntryBytes > 0;
  }

  get(key: string): Buffer | undefined {
    const data = this.entries.get(key);
    if (data) {
      // Map order is the LRU order: a hit moves to the back.
      this.entries.delete(key);
      this.entries.set(key, data);
    }
    return data;
  }

  set(key: string, data: Buffer): void {
    if (!this.enabled || data.length > this.maxEntryBytes || data.length > this.maxBytes) return;
    this.delete(key);
    this.entries.set(key, data);
    this.bytes += data.length;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= old.length;
    }
  }

  delete(key: string): void {
    const old = this.entries.get(key);
    if (!old) return;
    this.entries.delete(key);
    this.bytes -= old.length;
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }
}
