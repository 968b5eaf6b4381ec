import { createClient, ImgupError } from "../../client/index.ts";
import { forgetKey, saveKey, storedKey, takeKeyFromLocation } from "./api-key.ts";
import { Gallery } from "./gallery.ts";
import { toast } from "./toast.ts";
import { Uploader } from "./uploader.ts";

const VISIBILITY_KEY = "imgup.visibility";

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el as T;
}

const connect = byId("connect");
const workspace = byId("workspace");
const forget = byId<HTMLButtonElement>("forget-key");

// Same origin: the page is served by imgup; the key is read on every request, so a new one applies at once.
const client = createClient({ baseUrl: "", token: () => storedKey() ?? "" });

const gallery = new Gallery(
  {
    grid: byId("gallery"),
    more: byId<HTMLButtonElement>("load-more"),
    empty: byId("gallery-empty"),
    count: byId("gallery-count"),
  },
  client,
);

const uploadsPanel = byId("uploads");
const uploadList = byId("upload-list");
const uploader = new Uploader(uploadList, {
  client,
  visibility: () => (localStorage.getItem(VISIBILITY_KEY) === "private" ? "private" : "public"),
  onReady: (image) => gallery.add(image),
  onUnauthorized: () => showConnect("The server no longer accepts this key."),
  onChange: () => {
    uploadsPanel.hidden = uploadList.children.length === 0;
  },
});

async function showWorkspace(): Promise<void> {
  try {
    await gallery.load();
  } catch (err) {
    if (err instanceof ImgupError && err.status === 401) {
      showConnect("That key was not accepted.");
      return;
    }
    toast(`Could not load your images: ${err instanceof Error ? err.message : String(err)}`, {
      kind: "error",
    });
  }
  connect.hidden = true;
  workspace.hidden = false;
  forget.hidden = false;
}

function showConnect(error?: string): void {
  forgetKey();
  workspace.hidden = true;
  forget.hidden = true;
  connect.hidden = false;
  const message = byId("connect-error");
  message.hidden = !error;
  message.textContent = error ?? "";
  byId<HTMLInputElement>("key-input").focus();
}

function wireConnectForm(): void {
  const form = byId<HTMLFormElement>("connect-form");
  const input = byId<HTMLInputElement>("key-input");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    saveKey(key);
    input.value = "";
    void showWorkspace();
  });
  forget.addEventListener("click", () => showConnect());
}

function wireDropzone(): void {
  const zone = byId("dropzone");
  const input = byId<HTMLInputElement>("file-input");
  input.addEventListener("change", () => {
    if (input.files?.length) uploader.add([...input.files]);
    input.value = "";
  });
  zone.addEventListener("click", (event) => {
    // Clicks on the controls inside the zone do their own thing.
    if (!(event.target as HTMLElement).closest("label, input, button")) input.click();
  });
  byId("browse").addEventListener("click", () => input.click());
  // The whole window takes a drop; the zone lights up while something is dragged over the page.
  let depth = 0;
  const hasFiles = (e: DragEvent) => e.dataTransfer?.types.includes("Files") ?? false;
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e) || workspace.hidden) return;
    depth++;
    zone.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove("dragging");
  });
  document.addEventListener("dragover", (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    if (!workspace.hidden && e.dataTransfer?.files.length) uploader.add([...e.dataTransfer.files]);
  });
  document.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData?.files ?? [])];
    if (files.length && !workspace.hidden) uploader.add(files);
  });
  byId("clear-finished").addEventListener("click", () => uploader.clearFinished());
}

function wireVisibility(): void {
  const current = localStorage.getItem(VISIBILITY_KEY) === "private" ? "private" : "public";
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="visibility"]')) {
    radio.checked = radio.value === current;
    radio.addEventListener("change", () => {
      if (radio.checked) localStorage.setItem(VISIBILITY_KEY, radio.value);
    });
  }
}

takeKeyFromLocation();
// A `#key=` link pasted into this tab changes only the fragment: no reload, so no fresh start.
window.addEventListener("hashchange", () => {
  if (takeKeyFromLocation()) void showWorkspace();
});
wireConnectForm();
wireDropzone();
wireVisibility();
if (storedKey()) void showWorkspace();
else showConnect();
