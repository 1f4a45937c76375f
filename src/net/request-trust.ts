// Who may drive the API from a browser, and under which names. A web page can make a browser send requests to
// 127.0.0.1, with its own Origin, or under its own host name after DNS rebinding; these checks refuse both.

/** The origin of an `Origin` header or a configured entry (`https://a.example`), lower-case; null if not one. */
function normalOrigin(value: string): string | null {
  try {
    const url = new URL(value.trim());
    return url.origin === 'null' ? null : url.origin.toLowerCase();
  } catch {
    return null;
  }
}

/** Whether a request's `Origin` header may use the API: absent (not a browser's cross-site call) or listed. */
export function originAllowed(origin: string | null | undefined, allowed: readonly string[]): boolean {
  if (origin === null || origin === undefined) return true;
  const given = normalOrigin(origin);
  return given !== null && allowed.some((entry) => normalOrigin(entry) === given);
}

/** Whether an address the host binds to is loopback (127.0.0.0/8, ::1, localhost). */
export function isLoopbackName(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/**
 * Whether a `Host` header names this host: a loopback name (with no port or the bound one) or the configured
 * public host name (`name` matches any port, `name:port` that port only).
 */
export function hostHeaderAllowed(
  hostHeader: string | undefined,
  port: number,
  publicHost: string | undefined,
): boolean {
  if (!hostHeader) return false;
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(hostHeader.trim());
  if (!m) return false;
  const name = m[1]!.toLowerCase();
  const given = m[2];
  if (isLoopbackName(name)) return given === undefined || Number(given) === port;
  if (!publicHost) return false;
  const pm = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d+))?$/i.exec(publicHost.trim());
  if (!pm || pm[1]!.toLowerCase() !== name) return false;
  return pm[2] === undefined || pm[2] === given;
}
