import type { App } from "./types.ts";

/** Stops accepting, lets requests in flight finish, and cuts the connections still open after graceMs. */
export async function closeHttp(http: App | null, graceMs: number): Promise<void> {
  if (!http) return;
  // A keep-alive connection whose request finishes during the close goes idle and would hold the
  // close open until graceMs; a client holding a request open must not keep the process alive.
  const idle = setInterval(() => http.server.closeIdleConnections(), 50);
  const force = setTimeout(() => http.server.closeAllConnections(), graceMs);
  try {
    await http.close();
  } finally {
    clearInterval(idle);
    clearTimeout(force);
  }
}
