import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { isAppError } from "../domain/errors.ts";
import { type ParsedStorageEvents, parseStorageEvents } from "./parse-storage-event.ts";

/** Shared by the event tests: the recorded payloads in test/fixtures/events. */
export const FIXTURE_DIR = fileURLToPath(new URL("../../test/fixtures/events/", import.meta.url));

export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((name) => name.endsWith(".json"))
    .sort();
}

export function fixtureText(name: string): string {
  return readFileSync(`${FIXTURE_DIR}${name}`, "utf8");
}

export function fixture(name: string): unknown {
  return JSON.parse(fixtureText(name));
}

/** The parser's whole contract on any input: a well-formed result or invalid_event, nothing else. */
export function parseOrInvalid(body: unknown): ParsedStorageEvents | "invalid" {
  let result: ParsedStorageEvents;
  try {
    result = parseStorageEvents(body);
  } catch (err) {
    if (!isAppError(err) || err.code !== "invalid_event" || err.status !== 400) {
      throw new Error(`parser threw something other than invalid_event: ${String(err)}`, { cause: err });
    }
    return "invalid";
  }
  expect(Number.isSafeInteger(result.skipped) && result.skipped >= 0).toBe(true);
  for (const event of result.events) {
    expect(typeof event.key).toBe("string");
    expect(event.key.length).toBeGreaterThan(0);
    expect(Buffer.byteLength(event.key)).toBeLessThanOrEqual(1024);
    expect(event.size === null || (Number.isSafeInteger(event.size) && event.size >= 0)).toBe(true);
    expect(event.etag === null || typeof event.etag === "string").toBe(true);
    expect(typeof event.source).toBe("string");
    expect(event.bucket === undefined || typeof event.bucket === "string").toBe(true);
    expect(event.eventName === undefined || typeof event.eventName === "string").toBe(true);
  }
  return result;
}
