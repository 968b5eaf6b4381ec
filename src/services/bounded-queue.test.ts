import { describe, expect, it } from "vitest";
import { AppError } from "../domain/errors.ts";
import { BoundedQueue, type BoundedQueueOptions } from "./bounded-queue.ts";

/** Tasks the test finishes by hand: `started` records the order they got a slot. */
function harness(opts: BoundedQueueOptions) {
  const q = new BoundedQueue(opts);
  const started: string[] = [];
  const gates = new Map<string, { open: () => void; fail: (e: Error) => void }>();
  const submit = (owner: string, label: string) =>
    q.run(owner, () => {
      started.push(label);
      return new Promise<string>((resolve, reject) => {
        gates.set(label, { open: () => resolve(label), fail: reject });
      });
    });
  /** Lets the promise callbacks that hand over a slot run (no timers involved). */
  const settle = () => new Promise<void>((r) => setImmediate(r));
  const finish = async (label: string) => {
    const gate = gates.get(label);
    if (!gate) throw new Error(`${label} has not started`);
    gate.open();
    await settle();
  };
  return { q, started, submit, finish, settle, gates };
}

async function refusal(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

describe("BoundedQueue", () => {
  it("runs at most `concurrency` at once, queues up to maxQueued, refuses beyond with 503", async () => {
    const depths: number[] = [];
    const { q, started, submit, finish, settle } = harness({
      concurrency: 2,
      maxQueued: 3,
      perOwnerConcurrency: 2,
      maxQueuedPerOwner: 3,
      onDepth: (d) => depths.push(d),
    });
    const accepted = ["t1", "t2", "t3", "t4", "t5"].map((l) => submit("o", l));
    await settle();
    expect(q.active).toBe(2);
    expect(q.length).toBe(3);
    const refused = await refusal(submit("other", "t6"));
    expect(refused.status).toBe(503);
    expect(refused.headers["Retry-After"]).toBe("1");
    for (const l of ["t1", "t2", "t3", "t4", "t5"]) await finish(l);
    expect(await Promise.all(accepted)).toEqual(["t1", "t2", "t3", "t4", "t5"]);
    expect(started).toEqual(["t1", "t2", "t3", "t4", "t5"]);
    expect(depths).toEqual([1, 2, 3, 2, 1, 0]);
    expect(q.active).toBe(0);
  });

  it("gives another owner's one task the next slot, ahead of an owner's fifty waiting", async () => {
    const { started, submit, finish, settle } = harness({
      concurrency: 2,
      maxQueued: 100,
      perOwnerConcurrency: 2,
      maxQueuedPerOwner: 60,
    });
    const a = Array.from({ length: 50 }, (_, i) => submit("A", `a${i}`));
    const b = submit("B", "b0");
    await settle();
    expect(started).toEqual(["a0", "a1"]);
    await finish("a0");
    expect(started).toEqual(["a0", "a1", "b0"]);
    await finish("a1");
    await finish("b0");
    expect(await b).toBe("b0");
    expect(started).toEqual(["a0", "a1", "b0", "a2", "a3"]);
    for (let i = 2; i < 50; i++) await finish(`a${i}`);
    expect((await Promise.all(a)).length).toBe(50);
  });

  it("serves waiting owners round-robin, least recently served first", async () => {
    const { started, submit, finish, settle } = harness({
      concurrency: 1,
      maxQueued: 10,
      perOwnerConcurrency: 1,
      maxQueuedPerOwner: 5,
    });
    const all = [
      submit("A", "a1"),
      submit("A", "a2"),
      submit("A", "a3"),
      submit("B", "b1"),
      submit("B", "b2"),
      submit("C", "c1"),
    ];
    await settle();
    for (const l of ["a1", "b1", "c1", "a2", "b2", "a3"]) await finish(l);
    await Promise.all(all);
    expect(started).toEqual(["a1", "b1", "c1", "a2", "b2", "a3"]);
  });

  it("caps one owner's running tasks even while slots are free, so others start at once", async () => {
    const { q, started, submit, finish, settle } = harness({
      concurrency: 3,
      maxQueued: 10,
      perOwnerConcurrency: 1,
    });
    const a = [submit("A", "a1"), submit("A", "a2")];
    await settle();
    expect(started).toEqual(["a1"]);
    expect(q.active).toBe(1);
    const b = submit("B", "b1");
    await settle();
    expect(started).toEqual(["a1", "b1"]);
    await finish("a1");
    expect(started).toEqual(["a1", "b1", "a2"]);
    await finish("a2");
    await finish("b1");
    await Promise.all([...a, b]);
    expect(q.active).toBe(0);
  });

  it("refuses an owner past its share of the waiting room, not the other owners", async () => {
    const { q, submit, finish, settle } = harness({
      concurrency: 1,
      maxQueued: 8,
      perOwnerConcurrency: 1,
    });
    // Default share: a quarter of maxQueued.
    const a = [submit("A", "a1"), submit("A", "a2"), submit("A", "a3")];
    await settle();
    expect(q.length).toBe(2);
    const refused = await refusal(submit("A", "a4"));
    expect(refused.status).toBe(503);
    expect(refused.headers["Retry-After"]).toBe("1");
    const b = [submit("B", "b1"), submit("B", "b2")];
    await settle();
    expect(q.length).toBe(4);
    for (const l of ["a1", "b1", "a2", "b2", "a3"]) await finish(l);
    await Promise.all([...a, ...b]);
    expect(q.length).toBe(0);
  });

  it("frees the slot of a task that throws", async () => {
    const { q, started, submit, settle, gates, finish } = harness({
      concurrency: 1,
      maxQueued: 4,
      perOwnerConcurrency: 1,
    });
    const failing = submit("A", "a1");
    const next = submit("B", "b1");
    await settle();
    gates.get("a1")?.fail(new Error("boom"));
    await expect(failing).rejects.toThrow("boom");
    await settle();
    expect(started).toEqual(["a1", "b1"]);
    await finish("b1");
    expect(await next).toBe("b1");
    expect(q.active).toBe(0);
  });
});
