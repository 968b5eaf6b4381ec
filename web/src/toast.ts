import { h, type IconName, icon } from "./dom.ts";

const region = (): HTMLElement => {
  const existing = document.getElementById("toasts");
  if (existing) return existing;
  const el = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
  document.body.append(el);
  return el;
};

/** Beyond this many, the oldest toast goes at once: a burst of messages must not fill the screen. */
const MAX_SHOWN = 3;

/**
 * A short message in a corner of the screen; errors stay longer. `detail` shows a URL; `selectable`
 * lets the pointer select it (to copy by hand). Toasts let clicks through to what lies under them
 * (styles: pointer-events), so they never stand between a user and a card's buttons.
 */
export function toast(
  message: string,
  opts: { kind?: "info" | "error"; detail?: string; selectable?: boolean } = {},
): void {
  const kind = opts.kind ?? "info";
  const iconName: IconName = kind === "error" ? "alert" : "check";
  const el = h(
    "div",
    { class: `toast toast-${kind}` },
    icon(iconName),
    h(
      "div",
      { class: "toast-text" },
      h("span", {}, message),
      opts.detail ? detailField(opts.detail, opts.selectable ?? false) : null,
    ),
  );
  const shown = region();
  shown.append(el);
  const current = shown.querySelectorAll(".toast:not(.leaving)");
  for (const old of [...current].slice(0, Math.max(0, current.length - MAX_SHOWN))) old.remove();
  const ttl = kind === "error" || opts.detail ? 6000 : 2500;
  setTimeout(() => {
    el.classList.add("leaving");
    setTimeout(() => el.remove(), 250);
  }, ttl);
}

function detailField(text: string, selectable: boolean): HTMLInputElement {
  const input = h("input", {
    class: selectable ? "toast-detail selectable" : "toast-detail",
    readonly: true,
    value: text,
    "aria-label": "Link",
    tabindex: selectable ? null : -1,
  });
  input.addEventListener("focus", () => input.select());
  return input;
}
