import { randomUUID } from 'node:crypto';
import { BlobSASPermissions, generateBlobSASQueryParameters } from '@azure/storage-blob';
import { names, type Storage } from '../storage/storage';

const UPLOAD_WINDOW_MS = 60 * 60 * 1000;

/** Where a client uploads a build context: a write-only SAS URL and the path to name in `sourceLocation`. */
export interface SourceUploadUrl {
  readonly uploadUrl: string;
  readonly relativePath: string;
}

async function sasUrl(
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
  // Identity-based accounts have no key: sign with a user delegation key instead.
  const startsOn = new Date(Date.now() - 5 * 60 * 1000);
  const key = await storage.blobService.getUserDelegationKey(startsOn, expiresOn);
  const query = generateBlobSASQueryParameters(
    { containerName: container, blobName, permissions: perms, startsOn, expiresOn },
    key,
    storage.blobService.accountName,
  );
  return `${blob.url}?${query.toString()}`;
}

/** A fresh upload slot for a build context (Registries_GetBuildSourceUploadUrl). */
export async function createSourceUploadUrl(storage: Storage, now = new Date()): Promise<SourceUploadUrl> {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  const relativePath = `source/${day}/${randomUUID()}.tar.gz`;
  const uploadUrl = await sasUrl(storage, names.containers.sources, relativePath, 'cw', UPLOAD_WINDOW_MS);
  return { uploadUrl, relativePath };
}

/** A read-only SAS URL to a blob, for handing logs to clients (Runs_GetLogSasUrl). */
export function readOnlyUrl(storage: Storage, container: string, blobName: string): Promise<string> {
  return sasUrl(storage, container, blobName, 'r', UPLOAD_WINDOW_MS);
}
