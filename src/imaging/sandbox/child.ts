/**
 * Entry of an image child process (forked by pool.ts with the tsx loader). Runs one task at a time;
 * the parent kills this process at a task's deadline or memory bound, which is the only way to stop
 * a libjpeg/libaom/libheif call that is already running.
 */
import { closeSync, fstatSync, openSync, readSync, writeFileSync } from "node:fs";
import sharp from "sharp";
import {
  type ChildMessage,
  INLINE_OUTPUT_BYTES,
  serializeError,
  type TaskKind,
  type TaskMessage,
} from "./protocol.ts";
import { TASKS } from "./tasks.ts";

sharp.cache(false);
sharp.concurrency(Math.max(1, Number(process.env.IMGUP_VIPS_CONCURRENCY) || 1));

const send = (msg: ChildMessage) => process.send?.(msg);

/**
 * The last input, kept for the next task of the same job (the pool sends it here again). Only one:
 * a task never holds another task's bytes.
 */
let last: { path: string; bytes: Buffer } | null = null;
/**
 * Input bytes are read into memory this process already touched: fresh pages cost a fault each,
 * ~40 ms per 10 MB in a VM. Replaced when an input needs less than half of it, so a task carries
 * at most one input's worth of extra resident memory.
 */
let scratch: Buffer | null = null;

function input(file: string): Buffer {
  if (last?.path === file) return last.bytes;
  last = null;
  // Sync: this process runs one task and nothing else, and readFile costs a thread-pool hop per 512 KiB.
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    if (!scratch || scratch.length < size || scratch.length > 2 * size) {
      scratch = null;
      scratch = Buffer.allocUnsafeSlow(size);
    }
    let at = 0;
    while (at < size) {
      const n = readSync(fd, scratch, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    last = { path: file, bytes: scratch.subarray(0, at) };
    return last.bytes;
  } finally {
    closeSync(fd);
  }
}

async function run(msg: TaskMessage): Promise<ChildMessage> {
  try {
    const runner = TASKS[msg.kind as TaskKind] as (
      input: Buffer,
      args: unknown,
    ) => ReturnType<(typeof TASKS)[TaskKind]>;
    const { result, output } = await runner(input(msg.inputPath), msg.args);
    if (output && output.length <= INLINE_OUTPUT_BYTES) return { id: msg.id, ok: true, result, output };
    if (output) writeFileSync(msg.outputPath, output);
    return { id: msg.id, ok: true, result, output: Boolean(output) };
  } catch (err) {
    return { id: msg.id, ok: false, error: serializeError(err) };
  }
}

process.on("message", (msg: TaskMessage) => {
  void run(msg).then(send);
});
// The parent going away ends this process: it has no other reason to live.
process.on("disconnect", () => process.exit(0));
send({ ready: true });
