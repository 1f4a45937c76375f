import { BlobSASPermissions, generateBlobSASQueryParameters } from '@azure/storage-blob';
import { QueueSASPermissions } from '@azure/storage-queue';
import type { Storage } from './storage';

/**
 * A SAS URL to one blob with `permissions` (e.g. `r`, `cw`, `a`) for `expiresInMs`: signed with the account key when
 * it is known, else with a user delegation key (identity-based accounts have no key).
 */
export async function blobSasUrl(
  storage: Storage,
  container: string,
  blobName: string,
  permissions: string,
  expiresInMs: number,
): Promise<string> {
  const blob = storage.container(container).getBlockBlobClient(blobName);
  const expiresOn = new Date(Date.now() + expiresInMs);
  const perms = BlobSASPermissions.parse(permissions);
  if (storage.hasAccountKey) return blob.generateSasUrl({ permissions: perms, expiresOn });
  const startsOn = new Date(Date.now() - 5 * 60 * 1000);
  const key = await storage.blobService.getUserDelegationKey(startsOn, expiresOn);
  const query = generateBlobSASQueryParameters(
    { containerName: container, blobName, permissions: perms, startsOn, expiresOn },
    key,
    storage.blobService.accountName,
  );
  return `${blob.url}?${query.toString()}`;
}

/**
 * The URL that adds messages to a queue: with an add-only SAS when the account key is known; without one otherwise
 * (queues take no user delegation SAS), for a sender that signs in with an identity holding Queue Data Message Sender.
 */
export function queueSendUrl(storage: Storage, queue: string, expiresInMs: number): string {
  const client = storage.queue(queue);
  const messages = `${client.url}/messages`;
  if (!storage.hasAccountKey) return messages;
  const sas = client.generateSasUrl({
    permissions: QueueSASPermissions.parse('a'),
    expiresOn: new Date(Date.now() + expiresInMs),
  });
  return `${messages}?${sas.split('?')[1]}`;
}
