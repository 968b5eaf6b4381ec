import { h, icon } from "./dom.ts";
import { formatBytes } from "./format.ts";

export type RowState = "queued" | "hashing" | "uploading" | "processing" | "ready" | "rejected" | "failed";

/** Small enough to decode for a 40 px preview without stalling the page. */
const PREVIEW_LIMIT = 15 * 1024 * 1024;

/**
 * One file in the upload list: name, size, a progress bar and a status line (the rejection
 * reason when the server refuses it). The bar shows the bytes sent to the storage; hashing
 * fills it in a muted colour first.
 */
export class UploadRow {
  readonly el: HTMLLIElement;
  private readonly bar: HTMLDivElement;
  private readonly fill: HTMLDivElement;
  private readonly status: HTMLDivElement;
  private readonly action: HTMLButtonElement;
  private readonly previewBox: HTMLDivElement;
  private previewUrl: string | null = null;

  constructor(
    readonly file: File,
    onCancel: () => void,
  ) {
    this.fill = h("div", { class: "bar-fill" });
    this.bar = h(
      "div",
      {
        class: "bar",
        role: "progressbar",
        "aria-label": `Upload of ${file.name}`,
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-valuenow": 0,
      },
      this.fill,
    );
    this.status = h("div", { class: "upload-status" });
    this.action = h("button", { type: "button", class: "icon-button", "aria-label": `Cancel ${file.name}` });
    this.action.append(icon("x"));
    this.action.addEventListener("click", onCancel);
    this.previewBox = this.preview();
    this.el = h(
      "li",
      { class: "upload", "data-filename": file.name },
      this.previewBox,
      h(
        "div",
        { class: "upload-main" },
        h(
          "div",
          { class: "upload-head" },
          h("span", { class: "upload-name", title: file.name }, file.name),
          h("span", { class: "upload-size" }, formatBytes(file.size)),
        ),
        this.bar,
        this.status,
      ),
      this.action,
    );
    this.set("queued");
  }

  get state(): RowState {
    return this.el.dataset.state as RowState;
  }

  get settled(): boolean {
    return ["ready", "rejected", "failed"].includes(this.state);
  }

  /** Moves the row to a state; `fraction` (0..1) drives the bar; `message` replaces the default text. */
  set(state: RowState, fraction?: number, message?: string): void {
    this.el.dataset.state = state;
    if (fraction !== undefined) this.progress(fraction);
    if (state === "ready") this.progress(1);
    const text = message ?? DEFAULT_TEXT[state](this.percent());
    this.status.textContent = text;
    this.bar.setAttribute("aria-valuetext", text);
    if (this.settled) {
      this.action.hidden = true;
      this.releasePreview();
    }
    if (state === "rejected" || state === "failed") this.previewBox.replaceChildren(icon("alert"));
  }

  private percent(): number {
    return Number(this.bar.getAttribute("aria-valuenow"));
  }

  private progress(fraction: number): void {
    const pct = Math.max(0, Math.min(100, Math.floor(fraction * 100)));
    this.bar.setAttribute("aria-valuenow", String(pct));
    this.fill.style.transform = `scaleX(${pct / 100})`;
  }

  private preview(): HTMLDivElement {
    const box = h("div", { class: "upload-preview" }, icon("image"));
    if (!this.file.type.startsWith("image/") || this.file.size > PREVIEW_LIMIT) return box;
    this.previewUrl = URL.createObjectURL(this.file);
    const img = h("img", { src: this.previewUrl, alt: "", decoding: "async" });
    img.addEventListener("load", () => box.replaceChildren(img), { once: true });
    return box;
  }

  private releasePreview(): void {
    // Give the img time to have decoded before the blob URL goes away.
    const url = this.previewUrl;
    this.previewUrl = null;
    if (url) setTimeout(() => URL.revokeObjectURL(url), 5000);
  }
}

const DEFAULT_TEXT: Record<RowState, (pct: number) => string> = {
  queued: () => "Waiting…",
  hashing: (p) => `Checking file · ${p}%`,
  uploading: (p) => `Uploading · ${p}%`,
  processing: () => "Processing…",
  ready: () => "Ready",
  rejected: () => "Rejected",
  failed: () => "Failed",
};
