const STORAGE_KEY = "imgup.apiKey";

/**
 * The API key lives in localStorage. It arrives in the URL fragment (`/#key=…`, which browsers
 * never send to a server); it is taken from there once and the fragment is removed from the
 * address bar and history, so it does not end up in bookmarks or screenshots. True when a key
 * was taken: the page is also called on `hashchange`, for a link pasted into an open tab.
 */
export function takeKeyFromLocation(): boolean {
  const params = new URLSearchParams(location.hash.slice(1));
  const key = params.get("key")?.trim();
  if (!key) return false;
  saveKey(key);
  params.delete("key");
  const rest = params.toString();
  history.replaceState(history.state, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  return true;
}

export function storedKey(): string | null {
  return localStorage.getItem(STORAGE_KEY);
}

export function saveKey(key: string): void {
  localStorage.setItem(STORAGE_KEY, key);
}

export function forgetKey(): void {
  localStorage.removeItem(STORAGE_KEY);
}
