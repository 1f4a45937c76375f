// What a source location is, checked without loading the storage SDKs (the command line uses these too).
import { maskUrlCredentials } from './url-credentials';

/**
 * True for the `relativePath` of an uploaded build context (from listBuildSourceUploadUrl). Kept apart from the
 * upload code, so that the command line can check locations without loading the storage SDKs.
 */
export function isUploadedSource(location: string): boolean {
  return /^source\/\d{8}\/[0-9a-f-]{36}\.tar\.gz$/.test(location);
}

/**
 * True for a git URL as `az acr build` recognises one (`…git#branch:folder`, git://, github.com, Azure DevOps), and
 * for the forms git itself would take but Refit refuses (ssh://, file://, `user@host:path`, `transport::address`), so
 * that those are answered as git URLs that are refused rather than as tarballs.
 */
export function isGitSource(location: string): boolean {
  const url = location.split('#')[0]!;
  return (
    /^git:\/\//i.test(url) ||
    /^[^\s/:@]+@[^\s/:]+:/.test(url) ||
    /^[a-z0-9+.-]+::/i.test(url) ||
    /^(ssh|file|git\+ssh|ssh\+git):\/\//i.test(url) ||
    /^[a-z+]+:\/\/.*\.git\/?$/i.test(url) ||
    /^https?:\/\/(www\.)?github\.com\//i.test(url) ||
    /^https?:\/\/(dev\.azure\.com|[^/]+\.visualstudio\.com)\//i.test(url)
  );
}

/**
 * The URL schemes Refit fetches sources over. Decided: git's other transports are refused, not merely discouraged:
 * ssh:// and `user@host:path` would use this machine's ssh keys, file:// reads the server's own disk, and
 * `ext::` (any `transport::address`) runs a command.
 */
export const SOURCE_SCHEMES: readonly string[] = ['https', 'http', 'git'];

/**
 * Why `location`, when it names a remote (a URL, `transport::address` or `user@host:path`), names one Refit does not
 * fetch; undefined for an allowed URL and for anything that is not a remote. A task keeps what ACR takes (its own
 * example names a relative folder), but never a remote git could reach by ssh, file or a command.
 */
export function remoteLocationProblem(location: string): string | undefined {
  const url = location.split('#')[0]!;
  const allowed = 'only https://, http:// and git:// URLs are fetched';
  if (/^[a-z0-9+.-]+::/i.test(url))
    return `uses git's transport::address form, which runs a command or opens a local path: ${allowed}`;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (!scheme) {
    if (/^([^\s/:@]+@)?[^\s/:]+:/.test(url))
      return `is an scp-like ssh address (user@host:path), which would use this machine's ssh keys: ${allowed}`;
    return undefined;
  }
  if (!SOURCE_SCHEMES.includes(scheme)) return `uses ${scheme}://: ${allowed}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a valid URL';
  }
  if (!parsed.hostname) return 'names no host';
  return undefined;
}

/**
 * Why `location` cannot be a run's source (an uploaded source, an http(s) or git:// git URL, or an http(s) tarball),
 * or undefined when it can.
 */
export function sourceLocationProblem(location: string): string | undefined {
  if (isUploadedSource(location)) return undefined;
  const problem = remoteLocationProblem(location);
  if (problem) return problem;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(location))
    return 'is neither an uploaded source (from listBuildSourceUploadUrl), a git URL nor a tarball URL';
  return undefined;
}

/** The message of a refused source location: the location (credentials masked) and why. */
export function sourceLocationMessage(field: string, location: string, problem: string): string {
  return `${field} '${maskUrlCredentials(location)}' ${problem}`;
}
