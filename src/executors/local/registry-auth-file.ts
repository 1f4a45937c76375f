import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryCredentials } from '../../registry/auth';
import type { RegistryNames } from '../../registry/registry-names';

/** The name of a run's auth file in its work folder. */
export const AUTH_FILE = 'registry-auth.json';

/**
 * The containers-auth.json(5) of a run's logins: `{"auths": {"host": {"auth": base64(user:password)}}}`, each login
 * under every name of its registry (buildah matches the host a reference names).
 */
export function registryAuthFile(
  logins: Readonly<Record<string, RegistryCredentials>>,
  names: RegistryNames,
): string {
  const auths: Record<string, { auth: string }> = {};
  for (const [server, login] of Object.entries(logins)) {
    const auth = Buffer.from(`${login.username}:${login.password}`, 'utf8').toString('base64');
    for (const name of names.names(server)) auths[name] ??= { auth };
  }
  return JSON.stringify({ auths });
}

/**
 * Writes a run's logins to its work folder, readable by this user alone, for buildah (REGISTRY_AUTH_FILE): the
 * passwords never go on a command line. Returns the file's path, or undefined when the run has no logins.
 */
export async function writeRegistryAuthFile(
  workDir: string,
  logins: Readonly<Record<string, RegistryCredentials>> | undefined,
  names: RegistryNames,
): Promise<string | undefined> {
  if (!logins || Object.keys(logins).length === 0) return undefined;
  const path = join(workDir, AUTH_FILE);
  // Created with 0600 (never readable by others, not even for a moment); `wx`: a file already there is an error.
  await writeFile(path, registryAuthFile(logins, names), { mode: 0o600, flag: 'wx' });
  return path;
}

/** Removes a run's auth file (the run's end, whatever it was). */
export async function removeRegistryAuthFile(path: string | undefined): Promise<void> {
  if (path) await rm(path, { force: true });
}
