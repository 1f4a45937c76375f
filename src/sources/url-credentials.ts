/** `https://user:token@host/…` → `https://user:*************@host/…`, as ACR's logs show clone URLs. */
export function maskUrlCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:)[^@\s/]+@/gi, '$1*************@');
}

/** The secrets hidden in a source location (a URL's password), to mask in the log. */
export function sourceSecrets(location: string): string[] {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:([^@\s/]+)@/i.exec(location);
  return m?.[1] ? [m[1], decodeURIComponent(m[1])] : [];
}
