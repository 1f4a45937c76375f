/** What a URL's password is shown as in logs and responses. */
export const MASKED_PASSWORD = '*************';

/** `https://user:token@host/…` → `https://user:*************@host/…`, as ACR's logs show clone URLs. */
export function maskUrlCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@\s/]+@/gi, `$1${MASKED_PASSWORD}@`);
}

/** The secrets hidden in a source location (a URL's password), to mask in the log. */
export function sourceSecrets(location: string): string[] {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:([^@\s/]+)@/i.exec(location);
  if (!m?.[1]) return [];
  try {
    return [m[1], decodeURIComponent(m[1])];
  } catch {
    return [m[1]];
  }
}

/**
 * Takes the password out of a location: `https://user:pw@host/r.git#main` → `https://user@host/r.git#main` and `pw`
 * (decoded), so that it can be sealed with the other secrets instead of stored, returned and copied into every run.
 * A password that is the mask (a location read back from a GET and sent again) is no password: the sealed one stays.
 */
export function withoutUrlPassword(location: string): { location: string; password?: string } {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*):([^@\s/]*)@/i.exec(location);
  if (!m) return { location };
  const user = m[2]!;
  const rest = location.slice(m[0].length);
  const clean = `${m[1]}${user ? `${user}@` : ''}${rest}`;
  const raw = m[3]!;
  if (!raw || raw === MASKED_PASSWORD) return { location: clean };
  let password = raw;
  try {
    password = decodeURIComponent(raw);
  } catch {
    // Not percent-encoded as a URL should be: taken as written.
  }
  return { location: clean, password };
}
