import { createHash, randomUUID } from "node:crypto";
import { createWriteStream, type Stats } from "node:fs";
import { link, mkdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type AppError, ERRORS, isAppError } from "../domain/errors.ts";
import type { ObjectHead } from "./object-store.ts";

/** Private originals live here: only the service's own user may read them, whatever the umask. */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/**
 * The on-disk layout and file primitives of the local driver. Everything lives under one root so
 * temp files and their final names share a filesystem, which is what makes link/rename atomic.
 */
export interface Dirs {
  root: string;
  objects: string;
  meta: string;
  tmp: string;
  multipart: string;
}

export function dirsOf(root: string): Dirs {
  return {
    root,
    objects: join(root, "objects"),
    meta: join(root, "meta"),
    tmp: join(root, "tmp"),
    multipart: join(root, "multipart"),
  };
}

const MAX_KEY_BYTES = 1024;
// Most filesystems cap one name at 255 bytes; refusing up front beats an ENAMETOOLONG later.
const MAX_SEGMENT_BYTES = 255;

/** Keys become paths, so anything that could climb out of the root or alias another key is refused. */
export function validateKey(key: string): void {
  const bad = (why: string) => ERRORS.validation(`Invalid object key: ${why}`);
  if (typeof key !== "string" || key.length === 0) throw bad("empty");
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw bad(`longer than ${MAX_KEY_BYTES} bytes`);
  if (key.startsWith("/")) throw bad("leading slash");
  if (key.includes("\\")) throw bad("backslash");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(key)) throw bad("control character");
  for (const segment of key.split("/")) {
    if (segment === "") throw bad("empty segment");
    if (segment === "." || segment === "..") throw bad("dot segment");
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) throw bad("segment too long");
  }
}

export const objectPath = (dirs: Dirs, key: string) => join(dirs.objects, ...key.split("/"));
export const metaPath = (dirs: Dirs, key: string) => join(dirs.meta, ...key.split("/"));

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

export const quoteEtag = (hex: string) => `"${hex}"`;
export const unquoteEtag = (etag: string) => etag.trim().replace(/^W\//, "").replace(/^"|"$/g, "");

/** Counts, hashes and caps a byte stream on its way to disk, so no body is ever held in memory. */
class Meter extends Transform {
  size = 0;
  readonly md5 = createHash("md5");
  readonly sha256 = createHash("sha256");
  constructor(
    private readonly limit: number,
    private readonly overLimit: () => AppError,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.limit) {
      cb(this.overLimit());
      return;
    }
    this.md5.update(chunk);
    this.sha256.update(chunk);
    cb(null, chunk);
  }
}

export interface TempFile {
  path: string;
  size: number;
  md5: string;
  sha256: string;
  /** Identity of the written inode: a sidecar that does not name it describes some other write. */
  ino: number;
  mtimeMs: number;
}

export interface WriteTempOptions {
  /** More bytes than this fails the write with overLimit() as soon as they arrive. */
  limit: number;
  overLimit: () => AppError;
  signal?: AbortSignal;
}

export async function writeTemp(
  dirs: Dirs,
  body: Buffer | Readable,
  opts: WriteTempOptions,
): Promise<TempFile> {
  const path = join(dirs.tmp, randomUUID());
  const meter = new Meter(opts.limit, opts.overLimit);
  const out = createWriteStream(path, { flags: "wx", mode: FILE_MODE });
  const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
  // A disk fault is an fs error of the file stream itself (it has a syscall: open, write). The
  // pipeline also destroys the file stream when the body breaks, with the body's error or a
  // premature-close error, sometimes before the body reports anything: those are the client's.
  let bodyError: unknown;
  let diskError: unknown;
  source.on("error", (err) => {
    bodyError ??= err;
  });
  out.on("error", (err: NodeJS.ErrnoException) => {
    if (err !== bodyError && err.syscall !== undefined && !err.code?.startsWith("ERR_")) diskError ??= err;
  });
  try {
    await pipeline(source, meter, out, opts.signal ? { signal: opts.signal } : {});
    const st = await stat(path);
    return {
      path,
      size: meter.size,
      md5: meter.md5.digest("hex"),
      sha256: meter.sha256.digest("hex"),
      ino: st.ino,
      mtimeMs: st.mtimeMs,
    };
  } catch (err) {
    await rm(path, { force: true });
    if (isAppError(err) || (err as Error | null)?.name === "AbortError" || diskError !== undefined) throw err;
    // Anything else broke on the reading side: the client went away mid-body.
    throw ERRORS.incompleteBody(`The body stream failed before it ended (${(err as Error).message})`);
  }
}

const keyConflict = () =>
  ERRORS.conflict("The key collides with another key's path (one key cannot be both an object and a prefix)");

/**
 * Moves a finished temp file to its final name. Without overwrite this is link(2), which fails
 * with EEXIST atomically when another writer got there first; with overwrite it is rename(2).
 */
export async function publish(tempPath: string, finalPath: string, overwrite: boolean): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(dirname(finalPath), { recursive: true, mode: DIR_MODE });
    } catch (err) {
      // Some ancestor of the final path is an object, not a directory.
      if (errnoOf(err) === "EEXIST" || errnoOf(err) === "ENOTDIR") throw keyConflict();
      throw err;
    }
    try {
      if (overwrite) await rename(tempPath, finalPath);
      else {
        await link(tempPath, finalPath);
        await rm(tempPath, { force: true });
      }
      return;
    } catch (err) {
      const code = errnoOf(err);
      // A concurrent delete may prune the parent directory between mkdir and link.
      if (code === "ENOENT" && attempt < 3) continue;
      if (code === "EEXIST" && !overwrite) {
        const st = await stat(finalPath).catch(() => null);
        throw st?.isDirectory() ? keyConflict() : ERRORS.objectExists();
      }
      if (code === "ENOTDIR" || code === "EISDIR") throw keyConflict();
      throw err;
    }
  }
}

/** Sidecar metadata of one object or part; trusted only while ino, size and mtime still match the data file. */
export interface Sidecar {
  contentType: string | null;
  etag: string;
  sha256: string | null;
  cacheControl?: string;
  size: number;
  ino: number;
  mtimeMs: number;
}

/** createDirs: false when the parent must already exist (a multipart upload aborted meanwhile must stay gone). */
export async function writeSidecar(
  dirs: Dirs,
  path: string,
  sidecar: Sidecar,
  createDirs = true,
): Promise<void> {
  const temp = join(dirs.tmp, `${randomUUID()}.json`);
  await writeFile(temp, JSON.stringify(sidecar), { flag: "wx", mode: FILE_MODE });
  try {
    if (createDirs) await mkdir(dirname(path), { recursive: true, mode: DIR_MODE });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export async function readSidecar(path: string, data: Stats): Promise<Sidecar | null> {
  try {
    const sidecar = JSON.parse(await readFile(path, "utf8")) as Sidecar;
    const current =
      sidecar.ino === data.ino && sidecar.size === data.size && sidecar.mtimeMs === data.mtimeMs;
    return current ? sidecar : null;
  } catch {
    return null;
  }
}

/** A missing or stale sidecar (crash between publish and sidecar write) degrades to what stat knows. */
export function headOf(
  key: string,
  data: Pick<Stats, "size" | "mtime">,
  sidecar: Sidecar | null,
): ObjectHead {
  return {
    key,
    size: data.size,
    contentType: sidecar?.contentType ?? null,
    etag: sidecar ? sidecar.etag : null,
    lastModified: data.mtime,
    sha256: sidecar?.sha256 ?? null,
  };
}

export async function statFile(path: string): Promise<Stats | null> {
  try {
    const st = await stat(path);
    return st.isFile() ? st : null;
  } catch (err) {
    const code = errnoOf(err);
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw err;
  }
}

/** Removes now-empty directories up to (not including) stopAt; a non-empty one ends the climb. */
export async function pruneEmptyDirs(dir: string, stopAt: string): Promise<void> {
  let current = dir;
  while (current.startsWith(stopAt) && current !== stopAt) {
    try {
      await rmdir(current);
    } catch {
      return;
    }
    current = dirname(current);
  }
}

export interface CommitOptions {
  contentType: string | null;
  etag: string;
  sha256: string | null;
  cacheControl?: string;
  overwrite: boolean;
}

/** Publishes a temp file as the object at key, then its sidecar; the temp file is gone either way. */
export async function commitObject(
  dirs: Dirs,
  key: string,
  temp: TempFile,
  opts: CommitOptions,
): Promise<ObjectHead> {
  try {
    await publish(temp.path, objectPath(dirs, key), opts.overwrite);
  } catch (err) {
    await rm(temp.path, { force: true });
    throw err;
  }
  const sidecar: Sidecar = {
    contentType: opts.contentType,
    etag: opts.etag,
    sha256: opts.sha256,
    ...(opts.cacheControl ? { cacheControl: opts.cacheControl } : {}),
    size: temp.size,
    ino: temp.ino,
    mtimeMs: temp.mtimeMs,
  };
  await writeSidecar(dirs, metaPath(dirs, key), sidecar);
  return headOf(key, { size: temp.size, mtime: new Date(temp.mtimeMs) }, sidecar);
}

/** A server-side copy pinned to one version: see ObjectStore.copyIfMatch. */
export async function copyIfMatch(dirs: Dirs, from: string, to: string, ifMatch: string): Promise<boolean> {
  // Every write publishes a new inode (rename), so a link pins exactly the version it names; the
  // sidecar must describe that inode and carry the expected ETag, or nothing is copied.
  const temp = join(dirs.tmp, randomUUID());
  try {
    await link(objectPath(dirs, from), temp);
  } catch (err) {
    if (errnoOf(err) === "ENOENT" || errnoOf(err) === "ENOTDIR") return false;
    throw err;
  }
  const data = await stat(temp);
  const sidecar = await readSidecar(metaPath(dirs, from), data);
  if (sidecar?.etag !== ifMatch) {
    await rm(temp, { force: true });
    return false;
  }
  await commitObject(
    dirs,
    to,
    { path: temp, size: data.size, md5: "", sha256: "", ino: data.ino, mtimeMs: data.mtimeMs },
    {
      contentType: sidecar.contentType,
      etag: sidecar.etag,
      sha256: sidecar.sha256,
      ...(sidecar.cacheControl ? { cacheControl: sidecar.cacheControl } : {}),
      overwrite: true,
    },
  );
  return true;
}
