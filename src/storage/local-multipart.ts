import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { ERRORS } from "../domain/errors.ts";
import {
  commitObject,
  DIR_MODE,
  type Dirs,
  errnoOf,
  FILE_MODE,
  quoteEtag,
  readSidecar,
  statFile,
  unquoteEtag,
  writeSidecar,
  writeTemp,
} from "./local-files.ts";
import { sha256HexToBase64 } from "./local-signing.ts";
import type { ObjectHead, UploadedPart } from "./object-store.ts";

/** S3's multipart limits, enforced so that what works locally also works against S3. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
export const MAX_PART_NUMBER = 10_000;

const UPLOAD_ID = /^[0-9a-f]{32}$/;
const PART_FILE = /^part-(\d{5})$/;

interface Manifest {
  key: string;
  contentType: string;
  initiated: string;
}

interface StoredPart extends UploadedPart {
  path: string;
}

export function isPartNumber(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= MAX_PART_NUMBER;
}

const partName = (partNumber: number) => `part-${String(partNumber).padStart(5, "0")}`;

/**
 * Multipart uploads on disk: `{root}/multipart/{uploadId}/` holds manifest.json and one file (plus
 * sidecar) per part. Completing first renames the directory away, which claims the upload
 * atomically against concurrent part uploads, a second complete, or an abort.
 */
export class LocalMultipart {
  constructor(
    private readonly dirs: Dirs,
    private readonly maxObjectBytes: number,
  ) {}

  async create(key: string, contentType: string): Promise<string> {
    const uploadId = randomBytes(16).toString("hex");
    const dir = join(this.dirs.multipart, uploadId);
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    const manifest: Manifest = { key, contentType, initiated: new Date().toISOString() };
    await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest), { mode: FILE_MODE });
    return uploadId;
  }

  /** Stores one part (replacing an earlier one with the same number, as S3 does); returns its quoted ETag. */
  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Readable,
    contentLength: number,
    checksumBase64: string | undefined,
  ): Promise<string> {
    if (!isPartNumber(partNumber)) throw ERRORS.validation(`partNumber must be 1..${MAX_PART_NUMBER}`);
    if (contentLength > Math.min(MAX_PART_BYTES, this.maxObjectBytes)) throw ERRORS.entityTooLarge();
    const dir = await this.open(key, uploadId);
    const temp = await writeTemp(this.dirs, body, {
      limit: contentLength,
      overLimit: () => ERRORS.contentLengthMismatch("The body is longer than Content-Length"),
    });
    const path = join(dir, partName(partNumber));
    try {
      if (temp.size < contentLength) throw ERRORS.incompleteBody();
      if (checksumBase64 !== undefined && sha256HexToBase64(temp.sha256) !== checksumBase64) {
        throw ERRORS.checksumMismatch();
      }
      await rename(temp.path, path);
      const { size, ino, mtimeMs } = temp;
      const sidecar = { contentType: null, etag: quoteEtag(temp.md5), sha256: null, size, ino, mtimeMs };
      await writeSidecar(this.dirs, `${path}.json`, sidecar, false);
    } catch (err) {
      await rm(temp.path, { force: true });
      // The directory vanished under us: the upload was completed or aborted meanwhile.
      throw errnoOf(err) === "ENOENT" ? ERRORS.noSuchUpload() : err;
    }
    return quoteEtag(temp.md5);
  }

  async list(key: string, uploadId: string): Promise<UploadedPart[]> {
    const dir = await this.open(key, uploadId);
    const parts = await this.partsIn(dir);
    return [...parts.values()]
      .sort((a, b) => a.partNumber - b.partNumber)
      .map(({ partNumber, etag, size }) => ({ partNumber, etag, size }));
  }

  async complete(
    key: string,
    uploadId: string,
    requested: { partNumber: number; etag: string }[],
  ): Promise<ObjectHead> {
    const dir = await this.open(key, uploadId);
    const claimed = `${dir}.completing-${randomUUID()}`;
    try {
      await rename(dir, claimed);
    } catch (err) {
      throw errnoOf(err) === "ENOENT" ? ERRORS.noSuchUpload() : err;
    }
    let completed = false;
    try {
      const manifest = await readManifest(claimed);
      const chosen = this.choose(await this.partsIn(claimed), requested);
      const total = chosen.reduce((sum, p) => sum + p.size, 0);
      if (total > this.maxObjectBytes) throw ERRORS.entityTooLarge();
      const temp = await writeTemp(this.dirs, Readable.from(concatenate(chosen.map((p) => p.path))), {
        limit: total,
        overLimit: () => ERRORS.invalidPart("A part changed while completing"),
      });
      // S3's multipart ETag: md5 of the concatenated binary part md5s, then "-<part count>".
      const md5s = Buffer.concat(chosen.map((p) => Buffer.from(unquoteEtag(p.etag), "hex")));
      const etag = quoteEtag(`${createHash("md5").update(md5s).digest("hex")}-${chosen.length}`);
      const head = await commitObject(this.dirs, key, temp, {
        contentType: manifest?.contentType ?? null,
        etag,
        sha256: null,
        overwrite: false,
      });
      completed = true;
      await rm(claimed, { recursive: true, force: true });
      return head;
    } finally {
      // A refused complete leaves the upload as it was, so the client can fix its list or abort.
      if (!completed) await rename(claimed, dir).catch(() => {});
    }
  }

  async abort(key: string, uploadId: string): Promise<void> {
    const dir = await this.open(key, uploadId);
    await rm(dir, { recursive: true, force: true });
  }

  /** The upload's directory; no_such_upload unless it exists and belongs to key. */
  private async open(key: string, uploadId: string): Promise<string> {
    if (!UPLOAD_ID.test(uploadId)) throw ERRORS.noSuchUpload();
    const dir = join(this.dirs.multipart, uploadId);
    const manifest = await readManifest(dir);
    if (!manifest || manifest.key !== key) throw ERRORS.noSuchUpload();
    return dir;
  }

  private async partsIn(dir: string): Promise<Map<number, StoredPart>> {
    const parts = new Map<number, StoredPart>();
    for (const name of await readdir(dir)) {
      const match = PART_FILE.exec(name);
      if (!match) continue;
      const path = join(dir, name);
      const data = await statFile(path);
      if (!data) continue;
      const sidecar = await readSidecar(`${path}.json`, data);
      // A stale sidecar means a re-upload of this part is half-published: hash what is there.
      const etag = sidecar?.etag ?? quoteEtag(await md5File(path));
      parts.set(Number(match[1]), { partNumber: Number(match[1]), etag, size: data.size, path });
    }
    return parts;
  }

  private choose(
    parts: Map<number, StoredPart>,
    requested: { partNumber: number; etag: string }[],
  ): StoredPart[] {
    if (requested.length === 0) throw ERRORS.validation("At least one part is required");
    if (requested.length > MAX_PART_NUMBER) throw ERRORS.validation(`At most ${MAX_PART_NUMBER} parts`);
    for (const [i, want] of requested.entries()) {
      const previous = requested[i - 1];
      if (previous && !(want.partNumber > previous.partNumber)) throw ERRORS.invalidPartOrder();
    }
    const chosen: StoredPart[] = [];
    for (const want of requested) {
      if (!isPartNumber(want.partNumber)) throw ERRORS.invalidPart(`Part ${want.partNumber} is out of range`);
      const part = parts.get(want.partNumber);
      if (!part || unquoteEtag(part.etag) !== unquoteEtag(String(want.etag))) {
        throw ERRORS.invalidPart(`Part ${want.partNumber} was not uploaded or its ETag does not match`);
      }
      chosen.push(part);
    }
    for (const part of chosen.slice(0, -1)) {
      if (part.size < MIN_PART_BYTES) {
        throw ERRORS.entityTooSmall(`Part ${part.partNumber} is smaller than ${MIN_PART_BYTES} bytes`);
      }
    }
    return chosen;
  }
}

async function readManifest(dir: string): Promise<Manifest | null> {
  try {
    return JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Manifest;
  } catch {
    return null;
  }
}

async function* concatenate(paths: string[]): AsyncGenerator<Buffer> {
  for (const path of paths) yield* createReadStream(path);
}

async function md5File(path: string): Promise<string> {
  const hash = createHash("md5");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
