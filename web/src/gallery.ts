import type { ImageView, ImgupClient } from "../../client/index.ts";
import { ImageCard } from "./image-card.ts";

const PAGE_SIZE = 24;
/** How often a card that is still processing (e.g. after a reload mid-upload) asks for news. */
const POLL_MS = 1500;
const POLL_LIMIT_MS = 5 * 60_000;

export interface GalleryElements {
  grid: HTMLElement;
  more: HTMLButtonElement;
  empty: HTMLElement;
  count: HTMLElement;
}

/** The owner's images, newest first, a page at a time. Only ready and processing images show. */
export class Gallery {
  private readonly cards = new Map<string, ImageCard>();
  private cursor: string | null = null;

  constructor(
    private readonly els: GalleryElements,
    private readonly client: ImgupClient,
  ) {
    els.more.addEventListener("click", () => void this.loadMore());
  }

  /** The first page; throws what the SDK throws (a 401 means the key is wrong). */
  async load(): Promise<void> {
    this.cards.clear();
    this.els.grid.replaceChildren();
    this.cursor = null;
    await this.loadMore();
  }

  /** Shows a newly uploaded image first (or refreshes its card: dedup returns an existing image). */
  add(image: ImageView): void {
    const card = this.cards.get(image.id);
    if (card) card.render(image);
    else this.els.grid.prepend(this.cardFor(image).el);
    this.refresh();
  }

  private async loadMore(): Promise<void> {
    this.els.more.disabled = true;
    try {
      const page = await this.client.listImages({
        limit: PAGE_SIZE,
        ...(this.cursor ? { cursor: this.cursor } : {}),
      });
      for (const image of page.items) {
        if (this.cards.has(image.id) || !shown(image)) continue;
        this.els.grid.append(this.cardFor(image).el);
      }
      this.cursor = page.nextCursor;
    } finally {
      this.els.more.disabled = false;
      this.refresh();
    }
  }

  private cardFor(image: ImageView): ImageCard {
    const card = new ImageCard(image, {
      setVisibility: (id, visibility) => this.client.setVisibility(id, visibility),
      linkTo: (img) => this.client.url(img, "original"),
      remove: async (id) => {
        await this.client.deleteImage(id);
        this.cards.delete(id);
        card.el.addEventListener("transitionend", () => card.el.remove(), { once: true });
        // transitionend never fires when motion is reduced; remove regardless.
        setTimeout(() => card.el.remove(), 400);
        card.el.classList.add("gone");
        this.refresh();
      },
    });
    this.cards.set(image.id, card);
    if (image.status === "processing") void this.follow(card);
    return card;
  }

  /** Polls a processing image until it is ready (redrawn) or not (removed). */
  private async follow(card: ImageCard): Promise<void> {
    const deadline = Date.now() + POLL_LIMIT_MS;
    while (Date.now() < deadline && this.cards.get(card.id) === card) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      const image = await this.client.getImage(card.id).catch(() => null);
      if (!image || image.status === "processing") continue;
      if (image.status === "ready") card.render(image);
      else {
        this.cards.delete(card.id);
        card.el.remove();
        this.refresh();
      }
      return;
    }
  }

  private refresh(): void {
    const n = this.cards.size;
    this.els.empty.hidden = n > 0;
    this.els.more.hidden = this.cursor === null;
    this.els.count.textContent = n === 0 ? "" : `${n}${this.cursor ? "+" : ""} image${n === 1 ? "" : "s"}`;
  }
}

function shown(image: ImageView): boolean {
  return image.status === "ready" || image.status === "processing";
}
