import { h, type IconName, icon } from "./dom.ts";

const region = (): HTMLElement => {
  const existing = document.getElementById("toasts");
  if (existing) return existing;
  const el = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
  document.body.append(el);
  return el;
};

/** A short message at the bottom of the screen; errors stay longer. `detail` may hold a URL to select. */
export function toast(message: string, opts: { kind?: "info" | "error"; detail?: string } = {}): void {
  const kind = opts.kind ?? "info";
  const iconName: IconName = kind === "error" ? "alert" : "check";
  const el = h(
    "div",
    { class: `toast toast-${kind}` },
    icon(iconName),
    h("div", { class: "toast-text" }, h("span", {}, message), opts.detail ? detailField(opts.detail) : null),
  );
  region().append(el);
  const ttl = kind === "error" || opts.detail ? 6000 : 2500;
  setTimeout(() => {
    el.classList.add("leaving");
    setTimeout(() => el.remove(), 250);
  }, ttl);
}

function detailField(text: string): HTMLInputElement {
  const input = h("input", { class: "toast-detail", readonly: true, value: text, "aria-label": "Link" });
  input.addEventListener("focus", () => input.select());
  return input;
}
