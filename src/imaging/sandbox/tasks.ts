/** What an image child process can be asked to do: the in-process functions, by name. */
import { thumbhashOf } from "../placeholder.ts";
import { probeImage } from "../probe.ts";
import { transformImage } from "../transform.ts";
import type { TaskArgs, TaskKind, TaskResults } from "./protocol.ts";

export interface TaskOutcome<K extends TaskKind> {
  result: TaskResults[K];
  output?: Buffer;
}

type Runners = { [K in TaskKind]: (input: Buffer, args: TaskArgs[K]) => Promise<TaskOutcome<K>> };

export const TASKS: Runners = {
  probe: async (input, args) => ({ result: await probeImage(input, args.limits) }),
  transform: async (input, args) => {
    const out = await transformImage(input, args.spec, {
      maxPixels: args.maxPixels,
      animated: args.animated,
      maxJpegScans: args.maxJpegScans,
      timeoutMs: args.timeoutMs,
    });
    return { result: { width: out.width, height: out.height }, output: out.data };
  },
  thumbhash: async (input, args) => ({ result: await thumbhashOf(input, args) }),
};
