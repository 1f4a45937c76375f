import { open, seal } from '../storage/secret-box';
import type { TaskSecrets } from './task';

/** A task's secrets when it has none. */
export function emptySecrets(): TaskSecrets {
  return { arguments: {}, sourceTokens: {} };
}

/** A task's secrets, unsealed with the deployment's key (none when nothing is sealed). */
export function openTaskSecrets(key: Buffer, sealed: string | undefined): TaskSecrets {
  return sealed ? (JSON.parse(open(key, sealed)) as TaskSecrets) : emptySecrets();
}

/** A task's secrets, sealed with the deployment's key; undefined when there are none. */
export function sealTaskSecrets(key: Buffer, secrets: TaskSecrets): string | undefined {
  const empty =
    !secrets.contextAccessToken &&
    !secrets.updateTriggerToken &&
    Object.keys(secrets.arguments).length === 0 &&
    Object.keys(secrets.sourceTokens).length === 0 &&
    Object.keys(secrets.registryPasswords ?? {}).length === 0;
  return empty ? undefined : seal(key, JSON.stringify(secrets));
}
