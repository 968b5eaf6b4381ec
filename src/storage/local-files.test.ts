import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { ERRORS } from "../domain/errors.ts";
import { type Dirs, writeTemp } from "./local-files.ts";

describe("writeTemp tells a client that went away from a disk fault", () => {
  let root: string;
  afterEach(() => rm(root, { recursive: true, force: true }));
  const dirsIn = (dir: string): Dirs => ({ root: dir, objects: dir, meta: dir, tmp: dir, multipart: dir });
  const options = { limit: 1_000_000, overLimit: () => ERRORS.entityTooLarge() };

  it("a body destroyed mid-way, with or without an error, is incomplete_body and leaves no file", async () => {
    root = await mkdtemp(path.join(tmpdir(), "imgup-write-temp-"));
    for (const cause of [
      undefined,
      Object.assign(new Error("aborted"), { code: "ECONNRESET", syscall: "read" }),
    ]) {
      const body = new PassThrough();
      const written = writeTemp(dirsIn(root), body, options);
      body.write(Buffer.alloc(10_000));
      setImmediate(() => body.destroy(cause));
      await expect(written).rejects.toMatchObject({ code: "incomplete_body" });
    }
    expect(await readdir(root)).toEqual([]);
  });

  it("a file that cannot be written is the disk's error, not the client's", async () => {
    root = await mkdtemp(path.join(tmpdir(), "imgup-write-temp-"));
    const body = new PassThrough();
    const written = writeTemp(dirsIn(path.join(root, "missing")), body, options);
    body.end(Buffer.alloc(10));
    await expect(written).rejects.toMatchObject({ code: "ENOENT", syscall: "open" });
  });
});
