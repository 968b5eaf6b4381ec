import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  describeSite,
  judge,
  parseAllowList,
  parsePlacements,
  type Site,
  scanSource,
  scanTree,
  schemaTables,
} from "../support/shardability.ts";
import { REPO } from "./markdown.ts";

// docs/scaling.md "Keeping the code shardable": every query on a table distributed by owner pins
// one owner, or is in the page's allow-list with its route (image id, all shards, or to fix).

const PAGE = "docs/scaling.md";
const page = () => readFileSync(path.join(REPO, PAGE), "utf8");
const scopedTables = () =>
  new Set([...parsePlacements(page())].filter(([, p]) => p === "distributed").map(([t]) => t));
const isMigration = (rel: string) => rel.startsWith("src/db/migrations/");

const SCOPED = new Set(["images", "outbox_events"]);
/** Sample sources write a template's substitutions as #{x}: the test's own strings hold no `${`. */
const scan = (code: string) => scanSource("sample.ts", code.replaceAll("#{", "$" + "{"), SCOPED);
const pinned = (code: string) => scan(code).map((s) => s.pinned);

describe("the shardability checker, on sample sources", () => {
  it("passes a Kysely query filtered by owner_id and flags one filtered by id alone", () => {
    expect(
      pinned(`db.selectFrom("images").selectAll().where("owner_id", "=", o).where("id", "=", i)`),
    ).toEqual([true]);
    expect(pinned(`db.selectFrom("images").selectAll().where("id", "=", i).executeTakeFirst()`)).toEqual([
      false,
    ]);
    expect(pinned(`db.updateTable("images").set({ status }).where("id", "=", i)`)).toEqual([false]);
    expect(pinned(`db.deleteFrom("images").where("images.owner_id", "=", o)`)).toEqual([true]);
  });

  it("does not count owner_id that filters nothing: a select list, another operator, a callback, a later statement", () => {
    expect(pinned(`db.selectFrom("images").select(["id", "owner_id"]).where("id", "=", i)`)).toEqual([false]);
    expect(pinned(`db.selectFrom("images").selectAll().where("owner_id", "!=", o)`)).toEqual([false]);
    expect(
      pinned(
        `db.selectFrom("images").where((eb) => eb.or([eb("owner_id", "=", o), eb("owner_id", "is", null)]))`,
      ),
    ).toEqual([false]);
    expect(
      pinned(`let q = db.selectFrom("images").selectAll(); if (o) q = q.where("owner_id", "=", o);`),
    ).toEqual([false]);
  });

  it("ignores tables that are not owner-scoped and understands aliases and joins", () => {
    expect(scan(`db.selectFrom("jobs").selectAll().where("key", "=", k)`)).toEqual([]);
    expect(pinned(`db.selectFrom("images as i").selectAll().where("i.owner_id", "=", o)`)).toEqual([true]);
    const join = scan(
      `db.selectFrom("jobs as j").innerJoin("outbox_events as e", "e.seq", "j.seq").where("j.key", "=", k)`,
    );
    expect(join.map((s) => [s.kind, s.table, s.pinned])).toEqual([["join", "outbox_events", false]]);
    const onOwner = scan(
      `db.selectFrom("images as i").innerJoin("outbox_events as e", (j) => j.onRef("e.owner_id", "=", "i.owner_id").onRef("e.image_id", "=", "i.id")).where("i.owner_id", "=", o)`,
    );
    expect(onOwner.map((s) => [s.table, s.pinned]).sort()).toEqual([
      ["images", true],
      ["outbox_events", true],
    ]);
  });

  it("requires owner_id among an insert's values, looking one helper deep", () => {
    expect(pinned(`db.insertInto("images").values({ id, owner_id: o, status })`)).toEqual([true]);
    expect(pinned(`db.insertInto("images").values({ id, status })`)).toEqual([false]);
    expect(pinned(`db.insertInto("images").values([{ owner_id: a }, { id }])`)).toEqual([false]);
    expect(pinned(`db.insertInto("outbox_events").columns(["type", "owner_id"]).expression(sel)`)).toEqual([
      true,
    ]);
    const helper = `function row(x) { return { id: x.id, owner_id: x.owner }; }
      db.insertInto("images").values(row(x)).execute();`;
    expect(pinned(helper)).toEqual([true]);
    const noOwner = `function row(x) { return { id: x.id }; }
      db.insertInto("images").values({ ...row(x), status }).execute();`;
    expect(pinned(noOwner)).toEqual([false]);
  });

  it("checks SQL in sql templates and plain strings, one owner_id predicate per table reference", () => {
    expect(pinned("sql`select * from images where owner_id = #{o} and id = #{i}`")).toEqual([true]);
    expect(pinned("sql`update images set status = 'x' where id = #{i}`")).toEqual([false]);
    expect(pinned("const SQL = `delete from images where id = $1`;")).toEqual([false]);
    expect(pinned(`const q = "select id from images i where i.owner_id = $1";`)).toEqual([true]);
    // The subquery pins an owner, the update around it does not.
    expect(
      pinned(
        "sql`update images set status = 'deleted' where id in (select id from images where owner_id = #{o} limit 10)`",
      ),
    ).toEqual([true, false]);
    // A join whose table is pinned by its own alias; `from images join jobs` still finds both.
    expect(
      pinned(
        "sql`select * from images i join outbox_events e on e.owner_id = i.owner_id where i.owner_id = #{o}`",
      ),
    ).toEqual([true, true]);
    // Commented-out SQL is no query, and a comment cannot pin one.
    expect(pinned("sql`select 1 -- from images\n`")).toEqual([]);
    expect(pinned("sql`select * from images where id = #{i} -- owner_id = later\n`")).toEqual([false]);
  });

  it("requires owner_id in the column list of an INSERT written in SQL", () => {
    expect(pinned("sql`insert into outbox_events (type, owner_id, image_id) select 1`")).toEqual([true]);
    expect(pinned("sql`insert into outbox_events as o (type, image_id) values (1, 2)`")).toEqual([false]);
    expect(pinned("sql`insert into images select * from staging`")).toEqual([false]);
  });

  it("flags a builder call whose table is a variable", () => {
    expect(scan(`db.selectFrom(table).selectAll()`).map((s) => [s.table, s.pinned])).toEqual([
      ["<dynamic>", false],
    ]);
  });

  it("flags a scoped table spliced into SQL by name, where no filter can be read", () => {
    expect(pinned('sql`select * from #{sql.table("images")} where owner_id = #{o}`')).toEqual([false]);
    expect(pinned(`db.dynamic.table("outbox_events").as("e")`)).toEqual([false]);
    expect(scan("sql`select * from #{sql.table(cte)}`")).toEqual([]);
  });

  it("names the outermost function around a query", () => {
    const code = `class Repo {
      async find(id) { const run = (db) => db.selectFrom("images").where("id", "=", id); return run(this.db); }
    }
    export function loose() { return sql\`select 1 from images\`; }
    const SQL = "select * from images";`;
    expect(scan(code).map((s) => s.fn)).toEqual(["Repo.find", "loose", "SQL"]);
  });

  it("lets an allow-list entry excuse only its own function and table, and reports entries that excuse nothing", () => {
    const sites: Site[] = [
      { file: "a.ts", line: 1, fn: "R.byId", table: "images", kind: "select", pinned: false },
      { file: "a.ts", line: 2, fn: "R.other", table: "images", kind: "select", pinned: false },
      { file: "a.ts", line: 3, fn: "R.mine", table: "images", kind: "select", pinned: true },
    ];
    const entry = { file: "a.ts", tables: ["images"], route: "id" as const, why: "x", line: 1 };
    const verdict = judge(sites, [
      { ...entry, fn: "R.byId" },
      { ...entry, fn: "R.gone" },
    ]);
    expect(verdict.unlisted.map((s) => s.fn)).toEqual(["R.other"]);
    expect(verdict.stale.map((a) => a.fn)).toEqual(["R.gone"]);
  });
});

describe("imgup's sources stay shardable (docs/scaling.md)", () => {
  const scratch = mkdtempSync(path.join(tmpdir(), "imgup-shardability-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  // Parsing src/ is most of this file's time: once for every test below.
  let scanned: Site[] | undefined;
  const srcSites = () => {
    scanned ??= scanTree([path.join(REPO, "src")], REPO, scopedTables(), isMigration);
    return scanned;
  };

  it("places every table of src/db/schema.ts, and only those", () => {
    const placements = parsePlacements(page());
    const tables = schemaTables(readFileSync(path.join(REPO, "src/db/schema.ts"), "utf8"));
    expect(tables.length).toBeGreaterThanOrEqual(10);
    expect([...placements.keys()].sort()).toEqual([...tables].sort());
    for (const [table, placement] of placements) {
      expect(["distributed", "reference", "local"], table).toContain(placement);
    }
    expect(scopedTables().has("images")).toBe(true);
  });

  it("finds the queries (the extraction itself works)", () => {
    const sites = srcSites();
    const at = (fn: string) => sites.filter((s) => s.fn === fn);
    expect(sites.length).toBeGreaterThanOrEqual(50);
    expect(at("KyselyImagesRepository.findForOwner").map((s) => s.pinned)).toEqual([true]);
    expect(at("KyselyImagesRepository.findById").map((s) => s.pinned)).toEqual([false]);
    // The intent's one statement: written as a plain string for CompiledQuery.raw.
    expect(at("SQL").filter((s) => s.file === "src/db/insert-unless-duplicate.ts").length).toBe(2);
  });

  it("has every query on a distributed table pin its owner or appear in the page's allow-list", () => {
    const allow = parseAllowList(page());
    const sites = srcSites();
    const { unlisted, stale } = judge(sites, allow);
    expect(
      unlisted.map(describeSite),
      `filter these by owner_id, or add them to ${PAGE}'s allow-list with their route and why`,
    ).toEqual([]);
    expect(
      stale.map((a) => `${PAGE}:${a.line} ${a.fn}`),
      "these allow-list entries excuse no query any more: remove them",
    ).toEqual([]);
  });

  it("gives every allow-list entry a known route, an existing file and a reason", () => {
    const allow = parseAllowList(page());
    expect(allow.length).toBeGreaterThanOrEqual(10);
    for (const a of allow) {
      const where = `${PAGE}:${a.line}`;
      expect(["id", "all-shards", "fix"], where).toContain(a.route);
      expect(readFileSync(path.join(REPO, a.file), "utf8").length, where).toBeGreaterThan(0);
      expect(a.tables.length, where).toBeGreaterThan(0);
      for (const t of a.tables) expect(scopedTables().has(t), `${where} ${t}`).toBe(true);
      expect(a.why.length, `${where}: say why`).toBeGreaterThanOrEqual(20);
    }
  });

  it("fails when a new unfiltered query appears in a file it has not seen", () => {
    // The same pipeline as above over src/ plus one more file with a query by id alone.
    const dir = path.join(scratch, "src/db");
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, "rogue-repository.ts"),
      `import type { Db } from "./schema.ts";
export class RogueRepository {
  constructor(private readonly db: Db) {}
  async byId(id: string) {
    return this.db.selectFrom("images").selectAll().where("id", "=", id).executeTakeFirst();
  }
  async scoped(ownerId: string, id: string) {
    return this.db.selectFrom("images").selectAll().where("owner_id", "=", ownerId).where("id", "=", id).executeTakeFirst();
  }
}
`,
    );
    const sites = [...srcSites(), ...scanTree([path.join(scratch, "src")], scratch, scopedTables())];
    const { unlisted } = judge(sites, parseAllowList(page()));
    expect(unlisted.map(describeSite)).toEqual([
      "src/db/rogue-repository.ts:5 RogueRepository.byId (select on images)",
    ]);
  });
});
