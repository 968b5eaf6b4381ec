// `node --import ./test/support/import-trace.mjs …` appends every module URL the process resolves to
// the file IMGUP_IMPORT_TRACE names: evidence of what a command loaded, with no timing involved.
import { register } from "node:module";

if (process.env.IMGUP_IMPORT_TRACE) register("./import-trace-hooks.mjs", import.meta.url);
