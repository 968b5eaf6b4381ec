import { describe, expect, it } from "vitest";
import { isAppError } from "../domain/errors.ts";
import { MemoryKeyValueStore } from "../kv/memory.ts";
import { KvRecordInvalidator, type RecordInvalidator } from "../services/image-record-cache.ts";
import type { ImagesRepository } from "./images-repository.ts";
import { InvalidatingImagesRepository } from "./invalidating-images-repository.ts";

function recorder() {
  const bumped: string[] = [];
  const invalidate: RecordInvalidator = {
    images: async (ids) => {
      bumped.push(...ids);
    },
    owner: async (ownerId) => {
      bumped.push(`owner:${ownerId}`);
    },
  };
  return { bumped, invalidate };
}

function repo(fail = false): ImagesRepository {
  const write = async () => {
    if (fail) throw new Error("statement timeout");
    return null;
  };
  return { transition: write, update: write } as unknown as ImagesRepository;
}

describe("InvalidatingImagesRepository", () => {
  it("bumps after a write that could touch a ready row, and only then", async () => {
    const { bumped, invalidate } = recorder();
    const images = new InvalidatingImagesRepository(repo(), invalidate);
    await images.transition("a", ["pending", "processing", "ready"], "deleted");
    await images.update("b", "alice", ["ready"], { visibility: "private" });
    await images.transition("c", ["processing"], "ready");
    await images.update("d", "alice", ["pending"], {});
    expect(bumped).toEqual(["a", "b"]);
  });

  it("bumps even when the write failed (a timeout may have committed)", async () => {
    const { bumped, invalidate } = recorder();
    const images = new InvalidatingImagesRepository(repo(true), invalidate);
    await expect(images.transition("a", ["ready"], "deleted")).rejects.toThrow("statement timeout");
    expect(bumped).toEqual(["a"]);
  });

  it("answers 503 when the versions cannot be replaced", async () => {
    const kv = new MemoryKeyValueStore();
    kv.set = async () => {
      throw new Error("down");
    };
    const images = new InvalidatingImagesRepository(repo(), new KvRecordInvalidator(kv, 60_000));
    const err = await images.transition("a", ["ready"], "deleted").catch((e: unknown) => e);
    expect(isAppError(err) && err.status).toBe(503);
  });
});
