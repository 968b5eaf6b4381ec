import type { ImageView, Visibility } from "./types.ts";

/** Request and response bodies of the upload endpoints (docs/api.md "Uploads"). */

export interface IntentRequest {
  filename: string;
  contentType: string;
  size: number;
  sha256?: string;
  visibility?: Visibility;
  method: "put" | "post" | "multipart";
  /** Multipart only: the size of every part but the last (default: the server's). */
  partSize?: number;
  claim?: boolean;
  profile?: string;
}

export interface SignedPart {
  partNumber: number;
  url: string;
}

export interface PutUpload {
  method: "put";
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

export interface PostUpload {
  method: "post";
  url: string;
  fields: Record<string, string>;
  expiresAt: string;
}

export interface MultipartUpload {
  method: "multipart";
  uploadId: string;
  partSize: number;
  partCount: number;
  parts: SignedPart[];
  expiresAt: string;
}

export type UploadInstructions = PutUpload | PostUpload | MultipartUpload;

export type IntentResult =
  /** A new (or, with a replayed Idempotency-Key, the same pending) upload. */
  | { kind: "upload"; image: ImageView; upload: UploadInstructions; replayed: boolean }
  /** Nothing to upload: the owner has these bytes already, or the keyed upload already finished. */
  | { kind: "done"; image: ImageView; deduplicated: boolean };

export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
}

export interface PartsStatus {
  uploadId: string;
  partSize: number;
  partCount: number;
  uploaded: UploadedPart[];
  /** Fresh URLs for the next missing parts (at most 100). */
  pending: SignedPart[];
  expiresAt: string;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
}
