import { appendFileSync } from "node:fs";

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  appendFileSync(process.env.IMGUP_IMPORT_TRACE, `${result.url}\n`);
  return result;
}
