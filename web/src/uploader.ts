import {
  type ImageView,
  type ImgupClient,
  ImgupError,
  UploadRejectedError,
  type Visibility,
} from "../../client/index.ts";
import { rejectReasonText } from "./format.ts";
import { UploadRow } from "./upload-row.ts";

/** Files uploading at once; the SDK already runs parts of a large file in parallel. */
const PARALLEL_FILES = 3;

export interface UploaderOptions {
  client: ImgupClient;
  visibility: () => Visibility;
  onReady: (image: ImageView) => void;
  /** The key was refused: the page goes back to asking for one. */
  onUnauthorized: () => void;
  onChange: () => void;
}

interface Entry {
  row: UploadRow;
  abort: AbortController;
}

/** A queue of files, each with its row; at most PARALLEL_FILES run at a time. */
export class Uploader {
  private readonly waiting: Entry[] = [];
  private running = 0;

  constructor(
    private readonly list: HTMLElement,
    private readonly opts: UploaderOptions,
  ) {}

  add(files: Iterable<File>): void {
    for (const file of files) {
      const entry: Entry = {
        row: new UploadRow(file, () => this.cancel(entry)),
        abort: new AbortController(),
      };
      this.waiting.push(entry);
      this.list.prepend(entry.row.el);
    }
    this.opts.onChange();
    this.pump();
  }

  /** Removes the rows of files that are done (ready, rejected, failed). */
  clearFinished(): void {
    for (const el of [...this.list.children]) {
      if (el instanceof HTMLElement && ["ready", "rejected", "failed"].includes(el.dataset.state ?? "")) {
        el.remove();
      }
    }
    this.opts.onChange();
  }

  private cancel(entry: Entry): void {
    const queued = this.waiting.indexOf(entry);
    if (queued >= 0) this.waiting.splice(queued, 1);
    entry.abort.abort();
    entry.row.set("failed", undefined, "Cancelled");
    this.opts.onChange();
  }

  private pump(): void {
    while (this.running < PARALLEL_FILES && this.waiting.length > 0) {
      const entry = this.waiting.shift() as Entry;
      this.running++;
      void this.run(entry).finally(() => {
        this.running--;
        this.opts.onChange();
        this.pump();
      });
    }
  }

  private async run({ row, abort }: Entry): Promise<void> {
    try {
      const { image } = await this.opts.client.upload(row.file, {
        visibility: this.opts.visibility(),
        signal: abort.signal,
        filename: row.file.name,
        onProgress: ({ phase, loaded, total }) => {
          if (abort.signal.aborted) return;
          row.set(phase, phase === "processing" ? 1 : total > 0 ? loaded / total : 0);
        },
      });
      const size = image.width && image.height ? ` · ${image.width} × ${image.height}` : "";
      row.set("ready", 1, `Ready${size}`);
      this.opts.onReady(image);
    } catch (err) {
      if (abort.signal.aborted) return;
      this.fail(row, err);
    }
  }

  private fail(row: UploadRow, err: unknown): void {
    if (err instanceof UploadRejectedError) {
      row.set("rejected", undefined, rejectReasonText(err.reason));
      row.el.title = err.image.rejectDetail ?? err.reason;
      return;
    }
    if (err instanceof ImgupError) {
      if (err.status === 401) this.opts.onUnauthorized();
      // The upload policy refused it before any byte moved (size, type): a rejection, not a fault.
      const refused = [400, 413, 415, 422].includes(err.status);
      row.set(refused ? "rejected" : "failed", undefined, err.detail || err.message);
      return;
    }
    row.set("failed", undefined, err instanceof Error ? err.message : String(err));
  }
}
