/**
 * Loads a card's image once its slot has a size, with `sizes` = the slot's width in CSS pixels,
 * kept up to date as the slot resizes. Not `sizes="auto"`: Chromium then takes an image that
 * leaves the page (a card redrawn or deleted) for a 100vw one and fetches the largest variant.
 */
const slots = new WeakMap<Element, (width: number) => void>();

const observer =
  typeof ResizeObserver === "undefined"
    ? null
    : new ResizeObserver((entries) => {
        for (const entry of entries) {
          if (!entry.target.isConnected) observer?.unobserve(entry.target);
          else if (entry.contentRect.width > 0) slots.get(entry.target)?.(entry.contentRect.width);
        }
      });

export function loadIntoSlot(
  img: HTMLImageElement,
  slot: HTMLElement,
  src: string,
  srcset: string | null,
): void {
  if (!srcset || !observer) {
    img.src = src;
    return;
  }
  let started = false;
  slots.set(slot, (width) => {
    img.sizes = `${Math.ceil(width)}px`;
    if (started) return;
    started = true;
    img.srcset = srcset;
    img.src = src;
  });
  // Observing anew reports the current size at once, for this image too when the slot is reused.
  observer.unobserve(slot);
  observer.observe(slot);
}
