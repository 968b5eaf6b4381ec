/**
 * Entry of an image child process (forked by pool.ts with the tsx loader). Runs one task at a time;
 * the parent kills this process at a task's deadline or memory bound, which is the only way to stop
 * a libjpeg/libaom/libheif call that is already running.
 */
import { readFile, writeFile } from "node:fs/promises";
import sharp from "sharp";
import { type ChildMessage, serializeError, type TaskKind, type TaskMessage } from "./protocol.ts";
import { TASKS } from "./tasks.ts";

sharp.cache(false);
sharp.concurrency(Math.max(1, Number(process.env.IMGUP_VIPS_CONCURRENCY) || 1));

const send = (msg: ChildMessage) => process.send?.(msg);

async function run(msg: TaskMessage): Promise<ChildMessage> {
  try {
    const input = await readFile(msg.inputPath);
    const runner = TASKS[msg.kind as TaskKind] as (
      input: Buffer,
      args: unknown,
    ) => ReturnType<(typeof TASKS)[TaskKind]>;
    const { result, output } = await runner(input, msg.args);
    if (output) await writeFile(msg.outputPath, output);
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
