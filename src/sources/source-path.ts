/**
 * True for the `relativePath` of an uploaded build context (from listBuildSourceUploadUrl). Kept apart from the
 * upload code, so that the command line can check locations without loading the storage SDKs.
 */
export function isUploadedSource(location: string): boolean {
  return /^source\/\d{8}\/[0-9a-f-]{36}\.tar\.gz$/.test(location);
}
