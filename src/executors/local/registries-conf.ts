import { readFile, rename, writeFile } from 'node:fs/promises';
import { insecureRegistryEntries, registriesConf } from '../../local/base-images';

/**
 * The registries.conf(5) the executor's buildah runs read: the configured one (or a default), plus every plain-HTTP
 * registry a run has used since the host started (a loopback one, or one of REFIT_INSECURE_REGISTRIES), so that a
 * build FROM a second local registry is pulled over HTTP instead of failing with "server gave HTTP response to HTTPS
 * client". Registries are only ever added; the file is replaced whole (rename), so a buildah that reads it while it
 * changes sees either version.
 */
export class ExecutorRegistriesConf {
  private readonly added = new Set<string>();
  private base: Promise<string> | undefined;
  private writes: Promise<void> = Promise.resolve();
  private written = false;

  constructor(
    /** The file buildah is pointed at (CONTAINERS_REGISTRIES_CONF). */
    readonly path: string,
    private readonly configured: string | undefined,
    private readonly isPlainHttp: (registry: string) => boolean,
  ) {}

  /** Makes sure the file exists and lets buildah reach each of `registries` that is plain HTTP. */
  allow(registries: Iterable<string>): Promise<void> {
    const fresh = [...new Set(registries)].filter((r) => this.isPlainHttp(r) && !this.added.has(r));
    if (fresh.length === 0 && this.written) return this.writes;
    for (const r of fresh) this.added.add(r);
    this.writes = this.writes.then(() => this.write());
    return this.writes;
  }

  private async write(): Promise<void> {
    this.base ??= this.configured ? readFile(this.configured, 'utf8') : Promise.resolve(registriesConf([]));
    const base = await this.base;
    const missing = [...this.added].filter((r) => !base.includes(`location = "${r}"`));
    const content = `${base.trimEnd()}\n${insecureRegistryEntries(missing)}`;
    const temporary = `${this.path}.${process.pid}.tmp`;
    await writeFile(temporary, content, { mode: 0o600 });
    await rename(temporary, this.path);
    this.written = true;
  }
}
