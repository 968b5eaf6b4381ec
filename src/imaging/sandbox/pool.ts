/**
 * A pool of killable child processes for image work. A decode or encode already running inside
 * libvips cannot be interrupted (sharp's timeout only fires on progress, which AVIF never reports
 * and a scan-heavy JPEG reports too late), and a WASM heap never shrinks: killing the process is
 * the only hard bound. Each task gets a deadline (SIGKILL, reason `timeout`) and a resident-size
 * bound sampled from /proc (SIGKILL, reason `too_complex`); the child is then replaced lazily.
 * Children start on demand, are reused, end when idle, and never keep the parent alive.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { ERRORS } from "../../domain/errors.ts";
import { forkChild } from "./fork.ts";
import { InputFiles, readWhole } from "./inputs.ts";
import {
  type ChildMessage,
  deserializeError,
  type TaskArgs,
  type TaskKind,
  type TaskMessage,
  type TaskResults,
} from "./protocol.ts";
import { readRss } from "./rss.ts";

export interface ImagePoolOptions {
  /** Children at most; tasks beyond wait in FIFO order. */
  size: number;
  /** A child whose resident size passes this during a task is killed (reason too_complex). */
  taskMemoryBytes: number;
  /** libvips threads per child. */
  vipsConcurrency?: number;
  /** A child idle this long exits (its memory goes with it). */
  idleMs?: number;
  sampleIntervalMs?: number;
  /** Bound on a child's start (loading tsx and sharp), not counted in any task's deadline. */
  startTimeoutMs?: number;
  /** The child's module, when not the one beside this file (see forkChild). */
  childModule?: string;
  logger?: Logger;
}

export interface TaskOptions {
  /** From the moment a child takes the task. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Told how long the task ran in its child (starting a child and waiting for one not counted). */
  onRan?: (ms: number) => void;
}

export interface PoolStats {
  started: number;
  killed: { timeout: number; memory: number; abort: number; crash: number };
}

interface Pending {
  kind: TaskKind;
  args: unknown;
  input: Buffer;
  opts: TaskOptions;
  resolve: (v: { result: unknown; output: Buffer | null }) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  proc: ChildProcess;
  ready: Promise<void>;
  task: Pending | null;
  /** The input file this child holds in memory (its last task's). */
  inputPath: string | null;
  idleTimer: NodeJS.Timeout | null;
  /** Ends the running task once: resolves/rejects it and frees the slot. */
  finish: ((outcome: { error?: unknown; value?: { result: unknown; output: Buffer | null } }) => void) | null;
}

/** Input files linger between tasks: a process that exits without stop() leaves none behind. */
const LIVE_DIRS = new Set<string>();
process.once("exit", () => {
  for (const dir of LIVE_DIRS) rmSync(dir, { recursive: true, force: true });
});
/** A child still this large after a task is replaced: glibc rarely gives freed arenas back. */
const RECYCLE_FRACTION = 0.5;

export class ImagePool {
  readonly stats: PoolStats = { started: 0, killed: { timeout: 0, memory: 0, abort: 0, crash: 0 } };
  private readonly slots = new Set<Slot>();
  private readonly waiting: Pending[] = [];
  private dir: string | null = null;
  private readonly inputs = new InputFiles(() => this.tempDir());
  private nextId = 1;
  private stopped = false;

  constructor(private readonly opts: ImagePoolOptions) {
    if (opts.size < 1) throw new Error("image pool size must be at least 1");
  }

  get childCount(): number {
    return this.slots.size;
  }

  /** The pids of the running children (tests and the RSS benchmark). */
  get pids(): number[] {
    return [...this.slots].map((s) => s.proc.pid ?? 0).filter((p) => p > 0);
  }

  run<K extends TaskKind>(
    kind: K,
    args: TaskArgs[K],
    input: Buffer,
    opts: TaskOptions,
  ): Promise<{ result: TaskResults[K]; output: Buffer | null }> {
    if (this.stopped) return Promise.reject(new Error("the image pool is stopped"));
    opts.signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        kind,
        args,
        input,
        opts,
        resolve: resolve as Pending["resolve"],
        reject,
      };
      this.waiting.push(pending);
      opts.signal?.addEventListener(
        "abort",
        () => {
          // Still queued: drop it; running: the slot's own listener kills the child.
          const at = this.waiting.indexOf(pending);
          if (at >= 0) {
            this.waiting.splice(at, 1);
            reject(opts.signal?.reason);
          }
        },
        { once: true },
      );
      this.dispatch();
    });
  }

  /** Kills every child; tasks running or queued reject (not as an image verdict). */
  async stop(): Promise<void> {
    this.stopped = true;
    const err = new Error("the image pool is stopped");
    for (const p of this.waiting.splice(0)) p.reject(err);
    for (const slot of [...this.slots]) {
      slot.finish?.({ error: err });
      this.kill(slot);
    }
    this.inputs.clear();
    this.removeDir();
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const free = [...this.slots].filter((s) => s.task === null);
      // The child that already holds this input in memory, if it is free: no read at all.
      const input = this.inputs.peek((this.waiting[0] as Pending).input);
      let slot = free.find((s) => input !== undefined && s.inputPath === input) ?? free[0];
      if (!slot) {
        if (this.slots.size >= this.opts.size) return;
        slot = this.spawn();
      }
      const task = this.waiting.shift() as Pending;
      void this.execute(slot, task);
    }
  }

  private spawn(): Slot {
    const { proc, ready } = forkChild(
      this.opts.vipsConcurrency ?? 1,
      this.opts.startTimeoutMs ?? 60_000,
      this.opts.childModule,
    );
    this.stats.started++;
    const slot: Slot = { proc, ready, task: null, inputPath: null, idleTimer: null, finish: null };
    // A child that cannot start is dropped; the task that waited on it fails, the next starts anew.
    slot.ready.catch(() => this.kill(slot));
    proc.on("exit", (code, signal) => {
      this.slots.delete(slot);
      if (slot.idleTimer) clearTimeout(slot.idleTimer);
      if (slot.finish) {
        // Not killed by us (we finish before killing): a crash, or the kernel's OOM killer.
        this.stats.killed.crash++;
        const reason = signal === "SIGKILL" ? "too_complex" : "corrupt";
        slot.finish({
          error: ERRORS.unprocessableImage(`the image process died (${signal ?? `exit ${code}`})`, {
            extra: { reason },
          }),
        });
      }
      if (!this.stopped) this.dispatch();
    });
    proc.on("error", (err) => this.opts.logger?.warn({ err: err.message }, "image child error"));
    this.slots.add(slot);
    return slot;
  }

  private async execute(slot: Slot, task: Pending): Promise<void> {
    slot.task = task;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = null;
    const { proc } = slot;
    proc.ref();
    proc.channel?.ref();
    const id = this.nextId++;
    const input = this.inputs.acquire(task.input);
    const outputPath = path.join(this.tempDir(), `${id}.out`);
    const { signal, timeoutMs } = task.opts;
    let timer: NodeJS.Timeout | undefined;
    let sampler: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    let onMessage: ((msg: ChildMessage) => void) | undefined;
    let sentAt: number | null = null;
    // Until the reply says otherwise, the child may have left an output file.
    let outputFile = true;
    try {
      await Promise.all([slot.ready, input.written]);
      if (!this.slots.has(slot)) throw new Error("the image pool is stopped");
      // Set only once the child runs: its exit from now on is this task's failure.
      const done = new Promise<{ result: unknown; output: Buffer | null }>((resolve, reject) => {
        slot.finish = ({ error, value }) => {
          slot.finish = null;
          if (error !== undefined) reject(error);
          else resolve(value as { result: unknown; output: Buffer | null });
        };
      });
      timer = setTimeout(() => {
        this.stats.killed.timeout++;
        this.fail(slot, "timeout", `the image work took longer than ${timeoutMs} ms`);
      }, timeoutMs);
      const limit = this.opts.taskMemoryBytes;
      sampler = setInterval(() => {
        const rss = proc.pid ? readRss(proc.pid) : null;
        if (rss !== null && rss > limit) {
          this.stats.killed.memory++;
          const mib = Math.round(limit / 2 ** 20);
          this.fail(slot, "too_complex", `the image work used more than ${mib} MiB`);
        }
      }, this.opts.sampleIntervalMs ?? 50);
      onAbort = () => {
        this.stats.killed.abort++;
        slot.finish?.({ error: signal?.reason });
        this.kill(slot);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      if (signal?.aborted) onAbort();
      onMessage = (msg: ChildMessage) => {
        if (!("id" in msg) || msg.id !== id || !slot.finish) return;
        if (!msg.ok) return slot.finish({ error: deserializeError(msg.error) });
        const result = msg.result;
        outputFile = msg.output === true;
        if (!msg.output) return slot.finish({ value: { result, output: null } });
        if (msg.output instanceof Uint8Array) {
          const { buffer, byteOffset, byteLength } = msg.output;
          return slot.finish({ value: { result, output: Buffer.from(buffer, byteOffset, byteLength) } });
        }
        readWhole(outputPath).then(
          (output) => slot.finish?.({ value: { result, output } }),
          (err) => slot.finish?.({ error: err }),
        );
      };
      proc.on("message", onMessage);
      if (slot.finish) {
        const message: TaskMessage = {
          id,
          kind: task.kind,
          args: task.args as never,
          inputPath: input.path,
          outputPath,
        };
        sentAt = performance.now();
        slot.inputPath = input.path;
        proc.send(message);
      }
      task.resolve(await done);
    } catch (err) {
      task.reject(err);
    } finally {
      if (sentAt !== null) task.opts.onRan?.(performance.now() - sentAt);
      clearTimeout(timer);
      clearInterval(sampler);
      if (onAbort) signal?.removeEventListener("abort", onAbort);
      if (onMessage) proc.off("message", onMessage);
      slot.finish = null;
      this.inputs.release(input);
      if (outputFile) void rm(outputPath, { force: true });
      this.release(slot);
    }
  }

  private fail(slot: Slot, reason: "timeout" | "too_complex", detail: string): void {
    slot.finish?.({ error: ERRORS.unprocessableImage(detail, { extra: { reason } }) });
    this.kill(slot);
  }

  private release(slot: Slot): void {
    slot.task = null;
    if (!this.slots.has(slot)) {
      if (!this.stopped) this.dispatch();
      return;
    }
    const rss = slot.proc.pid ? readRss(slot.proc.pid) : null;
    if (rss !== null && rss > this.opts.taskMemoryBytes * RECYCLE_FRACTION) {
      this.kill(slot);
      return;
    }
    slot.proc.unref();
    slot.proc.channel?.unref();
    slot.idleTimer = setTimeout(() => this.kill(slot), this.opts.idleMs ?? 15_000);
    slot.idleTimer.unref();
    this.dispatch();
  }

  private kill(slot: Slot): void {
    // Out of the set at once, so the next task starts a fresh child rather than wait for the exit.
    this.slots.delete(slot);
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.proc.kill("SIGKILL");
    slot.proc.unref();
    slot.proc.channel?.unref();
  }

  private tempDir(): string {
    if (!this.dir) {
      this.dir = mkdtempSync(path.join(tmpdir(), "imgup-work-"));
      LIVE_DIRS.add(this.dir);
    }
    return this.dir;
  }

  private removeDir(): void {
    if (!this.dir) return;
    LIVE_DIRS.delete(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
