import { randomUUID } from 'node:crypto';
import { blobSasUrl as sasUrl } from '../storage/sas';
import { names, type Storage } from '../storage/storage';

const UPLOAD_WINDOW_MS = 60 * 60 * 1000;

/** Where a client uploads a build context: a write-only SAS URL and the path to name in `sourceLocation`. */
export interface SourceUploadUrl {
  readonly uploadUrl: string;
  readonly relativePath: string;
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
