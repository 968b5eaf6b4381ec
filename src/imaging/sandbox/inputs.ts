/**
 * The input files of sandboxed tasks, one per input Buffer: the tasks of one processing job (probe,
 * eager presets, placeholder) get the same Buffer, so its bytes are written once, not once per
 * task. A file lives while a task uses it and for a short linger after; idle files past a byte cap
 * go at once, so on-the-fly transforms (a new Buffer per request) do not pile up on disk.
 * Callers must not change a Buffer's bytes while it is in use as an input.
 */
import { open, rm } from "node:fs/promises";
import path from "node:path";

export interface InputFile {
  readonly path: string;
  readonly size: number;
  /** Resolves once the bytes are on disk. */
  readonly written: Promise<void>;
}

interface Entry extends InputFile {
  buffer: Buffer;
  users: number;
  timer: NodeJS.Timeout | null;
}

export interface InputFilesOptions {
  /** How long an unused file stays for the next task of the same job. */
  lingerMs?: number;
  /** Idle files beyond this many bytes are removed at once, oldest first. */
  maxIdleBytes?: number;
}

export class InputFiles {
  private readonly byBuffer = new WeakMap<Buffer, Entry>();
  /** Unused files, oldest first (Map keeps insertion order). */
  private readonly idle = new Map<Entry, true>();
  private idleBytes = 0;
  private next = 1;

  constructor(
    private readonly dir: () => string,
    private readonly opts: InputFilesOptions = {},
  ) {}

  /** The path a task would get for this Buffer now, without taking it (picks the child holding it). */
  peek(input: Buffer): string | undefined {
    return this.byBuffer.get(input)?.path;
  }

  acquire(input: Buffer): InputFile {
    let entry = this.byBuffer.get(input);
    if (entry) {
      this.unidle(entry);
    } else {
      const file = path.join(this.dir(), `${this.next++}.in`);
      entry = {
        path: file,
        size: input.length,
        buffer: input,
        written: writeWhole(file, input),
        users: 0,
        timer: null,
      };
      const created = entry;
      this.byBuffer.set(input, created);
      // A failed write is not cached: the next task tries again.
      created.written.catch(() => this.drop(created));
    }
    entry.users++;
    return entry;
  }

  release(file: InputFile): void {
    const entry = file as Entry;
    if (--entry.users > 0) return;
    if (this.byBuffer.get(entry.buffer) !== entry) {
      void rm(entry.path, { force: true });
      return;
    }
    this.idle.set(entry, true);
    this.idleBytes += entry.size;
    entry.timer = setTimeout(() => this.drop(entry), this.opts.lingerMs ?? 2000);
    entry.timer.unref();
    const cap = this.opts.maxIdleBytes ?? 64 * 2 ** 20;
    for (const old of this.idle.keys()) {
      if (this.idleBytes <= cap) break;
      this.drop(old);
    }
  }

  /** Forgets every file (the pool removes its directory). */
  clear(): void {
    for (const entry of this.idle.keys()) this.drop(entry);
  }

  private unidle(entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    if (this.idle.delete(entry)) this.idleBytes -= entry.size;
  }

  private drop(entry: Entry): void {
    this.unidle(entry);
    if (this.byBuffer.get(entry.buffer) === entry) this.byBuffer.delete(entry.buffer);
    if (entry.users === 0) void rm(entry.path, { force: true });
  }
}

/** One write call for the whole Buffer: writeFile goes through the thread pool in 512 KiB chunks. */
async function writeWhole(file: string, data: Buffer): Promise<void> {
  const fh = await open(file, "wx", 0o600);
  try {
    let at = 0;
    while (at < data.length) at += (await fh.write(data, at, data.length - at, at)).bytesWritten;
  } finally {
    await fh.close();
  }
}

/** The whole file in one read call (the file's size from fstat). */
export async function readWhole(file: string): Promise<Buffer> {
  const fh = await open(file, "r");
  try {
    const { size } = await fh.stat();
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(out, at, size - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return at === size ? out : out.subarray(0, at);
  } finally {
    await fh.close();
  }
}
