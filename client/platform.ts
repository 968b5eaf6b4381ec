/**
 * What the SDK's public types need of the platform, declared structurally: the published .d.ts
 * then compiles in a Node backend without the DOM lib (and even without @types/node), while the
 * real Blob/File, AbortSignal and fetch of browsers, Node, Deno and Bun all fit.
 */

/** A Blob or File (browser), Node's Blob or `fs.openAsBlob()`. */
export interface BlobLike {
  readonly size: number;
  readonly type: string;
  slice(start?: number, end?: number, contentType?: string): BlobLike;
  arrayBuffer(): Promise<ArrayBuffer>;
  stream(): unknown;
}

/** An AbortSignal. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/** What the SDK reads of a fetch Response. */
export interface ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** What the SDK passes to fetch (a subset of RequestInit). */
export interface FetchInit {
  method?: string | undefined;
  signal?: AbortSignalLike | null | undefined;
}

/**
 * A fetch: the global one, or your own (a proxy, auth, logging). A method signature on purpose:
 * its parameters compare both ways, so the platform's `typeof fetch` is accepted as it is.
 */
export interface FetchLike {
  fetch(input: string, init?: FetchInit): Promise<ResponseLike>;
}

/** The platform's own types, for the implementation (compiled with the DOM lib). */
export const asBlob = (blob: BlobLike): Blob => blob as unknown as Blob;
export const asSignal = (signal: AbortSignalLike | null | undefined): AbortSignal | undefined =>
  (signal ?? undefined) as AbortSignal | undefined;
