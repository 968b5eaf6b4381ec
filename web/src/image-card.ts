import type { ImageView, Visibility } from "../../client/index.ts";
import { h, icon } from "./dom.ts";
import { formatBytes, formatExpiry } from "./format.ts";
import { placeholderUrl } from "./placeholder.ts";
import { loadIntoSlot } from "./slot-image.ts";
import { type PresetGeometries, readPresetGeometry, squareSrcset } from "./srcset.ts";
import { toast } from "./toast.ts";

export interface CardActions {
  setVisibility(id: string, visibility: Visibility): Promise<ImageView>;
  linkTo(image: ImageView): Promise<string>;
  remove(id: string): Promise<void>;
}

let geometry: PresetGeometries | undefined;
const presetGeometry = (): PresetGeometries => {
  geometry ??= readPresetGeometry(document);
  return geometry;
};

/** How long the delete button waits for its confirming second click. */
const CONFIRM_MS = 4000;

/** The gallery's card for one image: placeholder, then the thumbnail fading in over it. */
export class ImageCard {
  readonly el: HTMLElement;
  private readonly media: HTMLDivElement;
  private readonly meta: HTMLDivElement;
  private readonly visibility: HTMLButtonElement;
  private readonly copy: HTMLButtonElement;
  private readonly del: HTMLButtonElement;
  private confirmTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private image: ImageView,
    private readonly actions: CardActions,
  ) {
    this.media = h("div", { class: "card-media" });
    this.meta = h("div", { class: "card-meta" });
    this.visibility = h("button", { type: "button", class: "chip vis-toggle", role: "switch" });
    // Labels give way to icons on narrow cards (a container query); the aria-labels stay.
    this.copy = h(
      "button",
      { type: "button", class: "chip copy-link", "aria-label": "Copy link", title: "Copy link" },
      icon("link"),
      h("span", { class: "chip-label" }, "Copy link"),
    );
    this.del = h(
      "button",
      { type: "button", class: "chip danger delete", "aria-label": `Delete ${image.filename}` },
      icon("trash"),
    );
    this.visibility.addEventListener("click", () => void this.toggleVisibility());
    this.copy.addEventListener("click", () => void this.copyLink());
    this.del.addEventListener("click", () => void this.delete());
    this.el = h(
      "article",
      { class: "card", "data-id": image.id },
      this.media,
      h(
        "div",
        { class: "card-body" },
        h("div", { class: "card-title", title: image.filename }, image.filename),
        this.meta,
      ),
      h("div", { class: "card-actions" }, this.visibility, this.copy, this.del),
    );
    this.render(image);
  }

  get id(): string {
    return this.image.id;
  }

  /** Redraws from new metadata; the placeholder stays while a new thumbnail URL loads. */
  render(image: ImageView): void {
    const previousThumb = this.image.urls ? thumbUrl(this.image) : null;
    this.image = image;
    this.el.dataset.status = image.status;
    this.el.dataset.visibility = image.visibility;
    const isPrivate = image.visibility === "private";
    this.visibility.setAttribute("aria-checked", String(isPrivate));
    this.visibility.setAttribute("aria-label", `Private (${image.filename})`);
    this.visibility.title = isPrivate
      ? "Private: only signed links work. Click to make public."
      : "Public: click to make private.";
    this.visibility.replaceChildren(
      icon(isPrivate ? "lock" : "globe"),
      h("span", { class: "chip-label" }, isPrivate ? "Private" : "Public"),
    );
    this.copy.disabled = image.status !== "ready";
    this.visibility.disabled = image.status !== "ready";
    const parts = [
      image.width && image.height ? `${image.width} × ${image.height}` : null,
      image.format?.toUpperCase(),
      image.size ? formatBytes(image.size) : null,
    ].filter(Boolean);
    // A narrow card wraps between the parts, never inside one ("2.8" / "MB").
    const meta = parts.map((part) => String(part).replaceAll(" ", "\u00a0")).join(" · ");
    this.meta.textContent = image.status === "ready" ? meta : "Processing…";
    const thumb = image.urls ? thumbUrl(image) : null;
    if (!this.media.firstChild || thumb !== previousThumb) this.drawMedia(thumb);
  }

  private drawMedia(thumb: string | null): void {
    const children: Node[] = [];
    const placeholder = placeholderUrl(this.image.placeholder);
    if (placeholder) children.push(h("img", { class: "card-placeholder", src: placeholder, alt: "" }));
    else children.push(h("div", { class: "card-placeholder blank" }, icon("image")));
    if (thumb) {
      const img = h("img", { class: "card-thumb", alt: this.image.filename, decoding: "async" });
      img.addEventListener("load", () => img.classList.add("loaded"), { once: true });
      const srcset = this.image.urls
        ? squareSrcset(this.image.urls.presets, presetGeometry(), this.image.width, this.image.height)
        : null;
      if (srcset) {
        img.loading = "lazy";
        // A larger variant is made on its first request and may be refused (429): fall back to src.
        img.addEventListener("error", () => img.removeAttribute("srcset"), { once: true });
      }
      loadIntoSlot(img, this.media, thumb, srcset);
      children.push(img);
    } else {
      children.push(h("div", { class: "card-spinner", "aria-label": "Processing" }));
    }
    if (this.image.visibility === "private") children.push(h("span", { class: "badge" }, icon("lock")));
    this.media.replaceChildren(...children);
  }

  private async toggleVisibility(): Promise<void> {
    const next: Visibility = this.image.visibility === "private" ? "public" : "private";
    this.visibility.disabled = true;
    try {
      this.render(await this.actions.setVisibility(this.image.id, next));
      toast(next === "private" ? "Now private: only signed links work" : "Now public");
    } catch (err) {
      toast(`Could not change visibility: ${message(err)}`, { kind: "error" });
    } finally {
      this.visibility.disabled = this.image.status !== "ready";
    }
  }

  private async copyLink(): Promise<void> {
    try {
      const url = await this.actions.linkTo(this.image);
      const expires = new URL(url).searchParams.get("exp");
      const note = expires ? ` (signed, valid until ${formatExpiry(new Date(Number(expires) * 1000))})` : "";
      try {
        await navigator.clipboard.writeText(url);
        toast(`Link copied${note}`, { detail: url });
      } catch {
        // No clipboard permission (or an insecure origin): show the link to copy by hand.
        toast(`Copy this link${note}`, { detail: url, selectable: true });
      }
    } catch (err) {
      toast(`No link: ${message(err)}`, { kind: "error" });
    }
  }

  private async delete(): Promise<void> {
    if (!this.del.classList.contains("confirming")) {
      this.del.classList.add("confirming");
      // The confirming chip takes the whole action row (styles): it never runs out of the card.
      this.del.replaceChildren(icon("trash"), "Delete?");
      this.confirmTimer = setTimeout(() => this.resetDelete(), CONFIRM_MS);
      return;
    }
    clearTimeout(this.confirmTimer);
    this.del.disabled = true;
    this.el.classList.add("removing");
    try {
      await this.actions.remove(this.image.id);
      toast(`Deleted ${this.image.filename}`);
    } catch (err) {
      this.el.classList.remove("removing");
      this.del.disabled = false;
      this.resetDelete();
      toast(`Could not delete: ${message(err)}`, { kind: "error" });
    }
  }

  private resetDelete(): void {
    this.del.classList.remove("confirming");
    this.del.replaceChildren(icon("trash"));
  }
}

/** The smallest preset that exists; the default "thumb" preset is 200×200 WebP. */
export function thumbUrl(image: ImageView): string | null {
  const urls = image.urls;
  if (!urls) return null;
  return urls.presets.thumb ?? urls.presets.small ?? Object.values(urls.presets)[0] ?? urls.original;
}

function message(err: unknown): string {
  if (err && typeof err === "object" && "detail" in err && typeof err.detail === "string" && err.detail) {
    return err.detail;
  }
  return err instanceof Error ? err.message : String(err);
}
