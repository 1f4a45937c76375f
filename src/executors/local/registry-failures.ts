/** What buildah's output says went wrong with a registry, for the run's error message; undefined when nothing. */
export function registryFailure(output: string): string | undefined {
  // buildah names the registry in its last error line: "initializing source docker://HOST/…", "reading manifest TAG
  // in HOST/…", "pinging container registry HOST", "Get \"https://HOST/v2/\"".
  const registryIn =
    /(?:docker:\/\/|pinging container registry |reading manifest \S+ in |Get "https?:\/\/)(\[[0-9a-fA-F:]+\](?::\d+)?|[A-Za-z0-9.-]+(?::\d+)?)/;
  const lines = output.split('\n').filter((l) => l.includes('Error'));
  for (const line of lines.reverse()) {
    const registry = registryIn.exec(line)?.[1];
    if (!registry) continue;
    if (/unauthorized|authentication required|requested access to the resource is denied/i.test(line))
      return `${registry} refused the request: unauthorized`;
    if (line.includes('server gave HTTP response to HTTPS client'))
      return `${registry} answers over plain HTTP only: list it in REFIT_INSECURE_REGISTRIES to use it`;
    if (/x509:|certificate signed by unknown authority/.test(line))
      return `${registry}'s TLS certificate is not trusted`;
  }
  return undefined;
}
