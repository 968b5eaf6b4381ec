import pino from "pino";
import { describe, expect, it } from "vitest";
import type { ExpiredImage } from "../db/claims-repository.ts";
import type { ObjectStore } from "../storage/object-store.ts";
import type { CdnPurgeQueue } from "./cdn-purge.ts";
import { UnclaimedExpiry } from "./unclaimed-expiry.ts";

const image = (id: string): ExpiredImage => ({ id, ownerId: "alice", multipartUploadId: null });

/** The order of what the expiry does: purges queued, rows expired, objects deleted. */
function setup(due: ExpiredImage[], expired: ExpiredImage[], opts: { storeFails?: boolean } = {}) {
  const log: string[] = [];
  const cdn: CdnPurgeQueue = {
    enqueue: async (ids) => {
      log.push(`purge ${[...ids].join(",")}`);
    },
  };
  let taken = false;
  const claims = {
    unclaimedDue: async () => due,
    expireUnclaimed: async () => {
      if (taken) return [];
      taken = true;
      log.push(`expire ${expired.map((i) => i.id).join(",")}`);
      return expired;
    },
  };
  const store = {
    deletePrefix: async () => {
      if (opts.storeFails) throw new Error("the process dies here");
    },
  } as unknown as ObjectStore;
  const jobs = { requeue: async () => ({ id: "job" }) };
  const expiry = new UnclaimedExpiry({ claims, store, jobs, logger: pino({ level: "silent" }), cdn });
  return { log, expiry };
}

describe("UnclaimedExpiry and the CDN purge", () => {
  it("queues the purge before the rows change, and the late ones after", async () => {
    const { log, expiry } = setup([image("a"), image("b")], [image("a"), image("b"), image("c")]);
    const report = await expiry.run({ dryRun: false, signal: new AbortController().signal });
    expect(report.expired).toBe(3);
    expect(log).toEqual(["purge a,b", "expire a,b,c", "purge c"]);
  });

  it("purges nothing more when what was due is what expired", async () => {
    const { log, expiry } = setup([image("a")], [image("a")], { storeFails: true });
    await expiry.run({ dryRun: false, signal: new AbortController().signal });
    expect(log).toEqual(["purge a", "expire a"]);
  });
});
