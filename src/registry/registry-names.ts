import { dockerHubAsOne } from './image-reference';

/**
 * The names of registries: one canonical name per registry (Docker Hub's aliases are `docker.io`; the home registry's
 * aliases, e.g. 127.0.0.1:5000 and localhost:5000, are the home registry), and back from it to every name a
 * reference may use. The dependency index keys images by it, and a task's credentials are matched through it.
 */
export class RegistryNames {
  private readonly homeAliases: ReadonlySet<string>;

  constructor(
    private readonly home: string,
    homeAliases: readonly string[],
  ) {
    this.homeAliases = new Set([home, ...homeAliases]);
  }

  /** The canonical name of a registry host (as a reference or a login server names it). */
  canonical(registry: string): string {
    const host = dockerHubAsOne(registry);
    return this.homeAliases.has(host) ? this.home : host;
  }

  /** Every name of the registry `registry` is a name of (itself first): what buildah may match a reference on. */
  names(registry: string): string[] {
    const canonical = this.canonical(registry);
    const all = canonical === this.home ? [...this.homeAliases] : [canonical];
    return [...new Set([registry, canonical, ...all])];
  }

  /** The entry of `byServer` (keyed by login server) for `registry`, matched by canonical name. */
  find<T>(byServer: Readonly<Record<string, T>> | undefined, registry: string): T | undefined {
    if (!byServer) return undefined;
    const wanted = this.canonical(registry);
    const server = Object.keys(byServer).find((s) => s === registry || this.canonical(s) === wanted);
    return server === undefined ? undefined : byServer[server];
  }
}
