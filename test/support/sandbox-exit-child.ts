// Run by sandbox-pool.test.ts: uses the image pool once and then has nothing left to do, so the
// process must exit without anyone stopping the pool (its children are unref'd while idle).
import { ImagePool } from "../../src/imaging/sandbox/pool.ts";
import { photo } from "./image-builders.ts";

const pool = new ImagePool({ size: 1, taskMemoryBytes: 1024 ** 3, idleMs: 600_000 });
const jpeg = await photo(32, 32).jpeg().toBuffer();
const { result } = await pool.run("probe", { limits: { maxPixels: 1e6 } }, jpeg, { timeoutMs: 30_000 });
console.log("probed", result.ok ? result.format : result.reason);
