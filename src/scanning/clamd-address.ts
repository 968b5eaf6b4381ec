/** Where clamd listens: `tcp://host:port` or `unix:/path/to/clamd.ctl` (IMGUP_CLAMD_URL). */
export type ClamdAddress = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

/** Parses IMGUP_CLAMD_URL; throws with a message naming the accepted forms. */
export function parseClamdAddress(raw: string): ClamdAddress {
  const value = raw.trim();
  if (value.startsWith("unix:")) {
    // unix:/run/clamav/clamd.ctl and unix:///run/clamav/clamd.ctl both name the same socket.
    const socketPath = value.slice("unix:".length).replace(/^\/\/(?=\/)/, "");
    if (!socketPath.startsWith("/")) throw new Error("unix: needs an absolute socket path");
    return { kind: "unix", path: socketPath };
  }
  if (value.startsWith("tcp://")) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error("expected tcp://host:port");
    }
    const port = Number(url.port);
    if (!url.hostname || !Number.isInteger(port) || port < 1 || port > 65535 || url.pathname.length > 1) {
      throw new Error("expected tcp://host:port");
    }
    // URL keeps an IPv6 host in brackets; net.connect wants it bare.
    return { kind: "tcp", host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port };
  }
  throw new Error("expected tcp://host:port or unix:/path/to/clamd.ctl");
}

export function describeClamdAddress(address: ClamdAddress): string {
  return address.kind === "unix" ? `unix:${address.path}` : `tcp://${address.host}:${address.port}`;
}
