import { open } from "node:fs/promises";
import type { VideoDemuxer } from "../domain/video.ts";
import type { VideoRejectReason } from "../domain/video-probe.ts";
import {
  BOX_HEADER_BYTES,
  isoBoxesComplete,
  isoBoxStep,
  matroskaComplete,
} from "../domain/video-structure.ts";

/** More top-level boxes than any real MP4 has (ftyp, moov, mdat, free, a few uuid/meta). */
const MAX_TOP_LEVEL_BOXES = 4096;

/**
 * Walks the file's top-level structure by positional reads of 16 bytes (never the whole file):
 * a box or Segment that claims more bytes than the file has means it was cut short.
 */
export async function checkContainer(
  path: string,
  demuxer: VideoDemuxer,
): Promise<{ ok: true } | { ok: false; reason: VideoRejectReason; detail: string }> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    if (demuxer === "matroska") {
      const head = new Uint8Array(64);
      const { bytesRead } = await file.read(head, 0, head.length, 0);
      const res = matroskaComplete(head.subarray(0, bytesRead), size);
      return res.ok ? res : { ok: false, reason: "corrupt", detail: `${label(res.truncated)}${res.detail}` };
    }
    const types: string[] = [];
    const header = new Uint8Array(BOX_HEADER_BYTES);
    let offset = 0;
    for (;;) {
      if (types.length > MAX_TOP_LEVEL_BOXES) {
        return {
          ok: false,
          reason: "too_complex",
          detail: `more than ${MAX_TOP_LEVEL_BOXES} top-level boxes`,
        };
      }
      const { bytesRead } = await file.read(header, 0, BOX_HEADER_BYTES, offset);
      const step = isoBoxStep(header.subarray(0, bytesRead), offset, size);
      if (step.kind === "end") break;
      // Some writers pad the end of a file; junk after the index is not our concern, a box cut
      // short is (that is what "truncated" says), and junk before the index is corruption.
      if (step.kind === "junk" && types.includes("moov")) break;
      if (step.kind !== "box") {
        return { ok: false, reason: "corrupt", detail: `${label(step.kind === "truncated")}${step.detail}` };
      }
      types.push(step.type);
      offset = step.next;
    }
    const complete = isoBoxesComplete(types);
    return complete.ok ? complete : { ok: false, reason: "corrupt", detail: complete.detail };
  } finally {
    await file.close();
  }
}

const label = (truncated: boolean) => (truncated ? "truncated: " : "");
