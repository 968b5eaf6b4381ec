import type { Stats } from "node:fs";
import { readSidecar, type Sidecar } from "./local-files.ts";

const MAX_SIDECARS = 10_000;

/**
 * Parsed sidecars by key, bounded. An entry is used only while it names the data file just stat'ed
 * (inode, size, mtime), the very check readSidecar makes of the sidecar on disk, so a hit skips
 * four thread-pool round trips (open, fstat, read, close of the sidecar) and trusts nothing more:
 * every write publishes a new inode before its sidecar.
 */
export class SidecarCache {
  private readonly entries = new Map<string, Sidecar>();

  constructor(private readonly pathOf: (key: string) => string) {}

  async get(key: string, data: Stats): Promise<Sidecar | null> {
    const held = this.entries.get(key);
    if (held && held.ino === data.ino && held.size === data.size && held.mtimeMs === data.mtimeMs)
      return held;
    this.entries.delete(key);
    const read = await readSidecar(this.pathOf(key), data);
    if (!read) return null;
    this.entries.set(key, read);
    if (this.entries.size > MAX_SIDECARS) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return read;
  }
}
