import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { LocalObjectStore } from "../../src/storage/local.ts";

/** A LocalObjectStore in a fresh temporary directory, for service-level tests. */
export async function localStore(): Promise<{ store: LocalObjectStore; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), "imgup-store-"));
  const store = new LocalObjectStore({
    root,
    publicBaseUrl: "http://127.0.0.1:1",
    secret: randomBytes(32).toString("hex"),
    maxObjectBytes: 64 * 1024 * 1024,
  });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
