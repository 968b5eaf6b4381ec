/**
 * HEIC/HEIF (HEVC) input. sharp's prebuilt libvips has no HEVC decoder, so HEIC goes through
 * libheif-js (libheif + libde265 in WASM, LGPL-3.0, used unmodified) in one worker thread:
 *  - the decode is synchronous and slow (~0.7 s for 12 MP), so never on the request event loop;
 *  - the WASM heap only grows, so the worker is ended when idle and its memory goes with it;
 *  - a decode that hangs or traps ends the worker too, and the next call starts a fresh one.
 * Calls are serialised: one decode at a time, each with its own deadline.
 */
import { Worker } from "node:worker_threads";
import { ERRORS } from "../domain/errors.ts";

export interface DecodedHeic {
  /** Raw RGBA, 8 bits per channel, width * height * 4 bytes. */
  data: Buffer;
  width: number;
  height: number;
  /** Whether the image has a real alpha channel (the RGBA data always has four channels). */
  hasAlpha: boolean;
}

export interface HeicOptions {
  maxPixels: number;
  /** Give up (and end the worker) after this long. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const IDLE_MS = 15_000;

type Reply =
  | { id: number; width: number; height: number; hasAlpha: boolean; data: Uint8Array }
  | { id: number; tooManyPixels: true; width: number; height: number }
  | { id: number; error: string; fatal?: boolean };

let worker: Worker | null = null;
let idleTimer: NodeJS.Timeout | null = null;
let nextId = 1;
let chain: Promise<unknown> = Promise.resolve();

/** The same Buffer (probe, eager presets and placeholder in one worker job) is decoded once. */
const decoded = new WeakMap<Buffer, Promise<DecodedHeic>>();

/**
 * Decodes the primary image of a HEIC/HEIF file to RGBA, the container's rotation and mirroring
 * applied. The pixel limit is checked against the header before anything is decoded. Throws
 * unprocessable_image (extra.reason "too_many_pixels" or "corrupt").
 */
export async function decodeHeic(input: Buffer, opts: HeicOptions): Promise<DecodedHeic> {
  let pending = decoded.get(input);
  if (!pending) {
    pending = serialised(() => run(input, opts));
    decoded.set(input, pending);
    pending.catch(() => decoded.delete(input));
  }
  const out = await pending;
  // A cached decode made under a larger limit must still honour this caller's.
  if (out.width * out.height > opts.maxPixels) throw tooManyPixels(out.width, out.height, opts.maxPixels);
  return out;
}

function serialised<T>(work: () => Promise<T>): Promise<T> {
  const p = chain.then(work, work);
  chain = p.catch(() => {});
  return p;
}

async function run(input: Buffer, opts: HeicOptions): Promise<DecodedHeic> {
  if (idleTimer) clearTimeout(idleTimer);
  const w = worker ?? start();
  const id = nextId++;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    const reply = await new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        stop(w);
        reject(corrupt(`decoding took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (msg: Reply) => {
        if (msg.id !== id) return;
        cleanup();
        resolve(msg);
      };
      const onExit = (code: number) => {
        cleanup();
        reject(corrupt(`the decoder stopped (exit ${code})`));
      };
      const onError = (err: Error) => {
        cleanup();
        stop(w);
        reject(corrupt(`the decoder failed: ${err.message}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        w.off("message", onMessage).off("exit", onExit).off("error", onError);
      };
      w.on("message", onMessage).on("exit", onExit).on("error", onError);
      // A copy of exactly these bytes, transferred: posting a Buffer would clone its whole pool.
      const bytes = new Uint8Array(input);
      w.postMessage({ id, input: bytes, maxPixels: opts.maxPixels }, [bytes.buffer]);
    });
    if ("error" in reply) {
      if (reply.fatal) stop(w);
      throw corrupt(reply.error);
    }
    if ("tooManyPixels" in reply) throw tooManyPixels(reply.width, reply.height, opts.maxPixels);
    const data = Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength);
    return { data, width: reply.width, height: reply.height, hasAlpha: reply.hasAlpha };
  } finally {
    if (worker) {
      idleTimer = setTimeout(() => worker && stop(worker), IDLE_MS);
      idleTimer.unref();
    }
  }
}

function start(): Worker {
  const w = new Worker(new URL("./heic-worker.mjs", import.meta.url));
  // An idle decoder never keeps the process alive.
  w.unref();
  w.on("exit", () => {
    if (worker === w) worker = null;
  });
  worker = w;
  return w;
}

function stop(w: Worker): void {
  if (worker === w) worker = null;
  void w.terminate();
}

function corrupt(detail: string) {
  return ERRORS.unprocessableImage(`HEIC: ${detail}`, { extra: { reason: "corrupt" } });
}

function tooManyPixels(width: number, height: number, max: number) {
  return ERRORS.unprocessableImage(`${width}x${height} = ${width * height} pixels, limit ${max}`, {
    extra: { reason: "too_many_pixels", width, height },
  });
}
