import { isMap, isSeq, parseDocument } from 'yaml';
import { expandAliases, mergeAliases, parseAliasBlock, parseAliasFile, separateAliases } from './aliases';
import { AcbError } from './errors';
import { scalar } from './scalar';
import { renderTemplate, TemplateError, type TemplateData } from './template';
import { checkYamlLimits } from './yaml-limits';

export { AcbError } from './errors';

/** The synthetic root of the step graph; no step may take its ID. */
export const ROOT = 'acb_root';

const VERSIONS = ['1.0-preview-1', 'v1.0.0', 'v1.1.0'];
const DEFAULT_STEP_TIMEOUT = 600;
const DEFAULT_RETRY_DELAY = 5;

/** One step of a task file, with acb's defaults applied. */
export interface AcbStep {
  readonly id: string;
  readonly type: 'build' | 'cmd' | 'push';
  /** The build arguments (`build`), the command (`cmd`) or the images (`push`), rendered. */
  readonly build?: string;
  readonly cmd?: string;
  readonly push?: readonly string[];
  /** The IDs of the steps it waits for; empty when it starts at once. */
  readonly dependsOn: readonly string[];
  readonly env: readonly string[];
  readonly workingDirectory: string;
  readonly entryPoint?: string;
  readonly user?: string;
  readonly timeout: number;
  readonly startDelay: number;
  readonly retries: number;
  readonly retryDelay: number;
  readonly retryOnErrors: readonly string[];
  readonly repeat: number;
  readonly ignoreErrors: boolean;
  readonly detach: boolean;
  readonly keep: boolean;
  readonly pull: boolean;
  readonly privileged: boolean;
  readonly disableWorkingDirectoryOverride: boolean;
  readonly network?: string;
  readonly isolation?: string;
  readonly cache?: 'enabled' | 'disabled';
  readonly expose: readonly string[];
  readonly ports: readonly string[];
  readonly volumeMounts: readonly { readonly name: string; readonly mountPath: string }[];
}

/** A parsed, validated task file. */
export interface AcbTask {
  readonly version: string;
  readonly stepTimeout: number;
  readonly steps: readonly AcbStep[];
  readonly secrets: readonly {
    readonly id: string;
    readonly keyvault?: string;
    readonly clientID?: string;
  }[];
  readonly volumes: readonly { readonly name: string; readonly secret: Readonly<Record<string, string>> }[];
  /** Things acb would silently ignore (unknown keys): worth a line in the log. */
  readonly warnings: readonly string[];
}

/** What rendering needs besides the file: the run's data, values and secrets, and alias files. */
export interface LoadOptions {
  readonly data: TemplateData;
  /** Reads an alias `src` entry (a file of the source, or a URL). */
  readonly readAliasSource?: (src: string) => Promise<string>;
}

const STEP_KEYS = new Set([
  'id',
  'cmd',
  'build',
  'push',
  'when',
  'env',
  'workingDirectory',
  'entryPoint',
  'user',
  'timeout',
  'startDelay',
  'retries',
  'retryDelay',
  'retryOnErrors',
  'repeat',
  'ignoreErrors',
  'detach',
  'keep',
  'pull',
  'privileged',
  'network',
  'isolation',
  'expose',
  'ports',
  'volumeMounts',
  'cache',
  'disableWorkingDirectoryOverride',
  'cpus',
  'exitedWith',
  'exitedWithout',
  'cmdDownloadRetries',
  'cmdDownloadRetryDelay',
  'downloadRetries',
  'downloadRetryDelay',
]);
const TASK_KEYS = new Set([
  'version',
  'stepTimeout',
  'steps',
  'env',
  'workingDirectory',
  'secrets',
  'networks',
  'volumes',
  'alias',
]);

/** The version a file declares: its first non-comment line starting with `version` (acb's sniffing). */
export function findVersion(text: string): string {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || !line.startsWith('version')) continue;
    const value = line.slice(line.indexOf(':') + 1).trim();
    return value.replace(/^["']|["']$/g, '');
  }
  return '';
}

/**
 * Blanks the lines whose trimmed text starts with `#`, so templates in comments are never evaluated (acb drops
 * them; blanking keeps the line numbers of errors true to the file).
 */
function dropCommentLines(text: string): string {
  return text
    .split('\n')
    .map((l) => (l.trim().startsWith('#') ? '' : l))
    .join('\n');
}

function checkVersion(version: string): string {
  const v = version || 'v1.0.0';
  const found = VERSIONS.find((known) => known.toLowerCase() === v.toLowerCase());
  if (!found)
    throw new AcbError(
      `invalid version specified: "${version}", the current version is "v1.0.0" (supported: ${VERSIONS.join(', ')})`,
    );
  return found;
}

/**
 * Turns a task file into rendered YAML text: comment lines dropped, the version checked, `$` aliases expanded
 * (v1.1.0 and later), then the Go template rendered.
 */
export async function renderTaskFile(text: string, options: LoadOptions): Promise<string> {
  checkYamlLimits(text, 'the task file');
  const source = dropCommentLines(text.replace(/^\uFEFF/, '').replace(/\r\n/g, '\n'));
  const version = checkVersion(findVersion(source));
  let body = source;
  try {
    if (version >= 'v1.1.0') {
      const { block, rest } = separateAliases(source);
      const alias = block ? parseAliasBlock(renderTemplate(block, options.data)) : {};
      const files: Record<string, string>[] = [];
      for (const src of alias.src ?? []) {
        if (!options.readAliasSource)
          throw new AcbError(`alias.src '${src}': alias files cannot be read here`);
        files.push(parseAliasFile(await options.readAliasSource(src), src));
      }
      body = expandAliases(rest, mergeAliases(alias.values ?? {}, files), alias.directive ?? '$');
    }
    return renderTemplate(body, options.data);
  } catch (err) {
    if (err instanceof TemplateError) throw new AcbError(`template: ${err.message}`);
    throw err;
  }
}

/** Parses and validates a task file: rendered, read as YAML, checked, with defaults and the step graph. */
export async function loadTaskFile(text: string, options: LoadOptions): Promise<AcbTask> {
  return parseRenderedTask(await renderTaskFile(text, options));
}

type Dict = Record<string, unknown>;

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(value: unknown, what: string, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new AcbError(`${what} must be a whole number`);
  return n;
}

function bool(value: unknown, what: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new AcbError(`${what} must be true or false`);
}

function strings(value: unknown, what: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new AcbError(`${what} must be a list`);
  return value.map((v) => {
    if (v !== null && typeof v === 'object') throw new AcbError(`${what} must be a list of strings`);
    return String(v);
  });
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'object') throw new AcbError(`${what} must be a string`);
  return scalar(value);
}

/** Task env entries are split on commas too (acb: "a=1,b=2" is two variables); each needs an `=`. */
function taskEnv(value: unknown): string[] {
  const out: string[] = [];
  for (const entry of strings(value, 'env')) {
    for (const part of entry.split(',')) {
      if (!part.includes('='))
        throw new AcbError(`env: cannot parse task environment variable '${part}': use KEY=VALUE`);
      out.push(part);
    }
  }
  return out;
}

/** Step values win; they keep their order and the task's missing ones are appended (acb's TestMergeEnvs). */
export function mergeEnvs(task: readonly string[], step: readonly string[]): string[] {
  const key = (e: string): string => e.split('=')[0]!;
  const stepKeys = new Set(step.map(key));
  return [...step, ...task.filter((e) => !stepKeys.has(key(e)))];
}

/** Parses rendered task YAML and validates it. */
export function parseRenderedTask(rendered: string): AcbTask {
  checkYamlLimits(rendered, 'the rendered task file');
  const doc = parseDocument(rendered, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new AcbError(
      `the task file is not valid YAML${line ? ` (line ${line})` : ''}: ${e.message.split('\n')[0]}`,
    );
  }
  let root: unknown;
  try {
    root = doc.toJS();
  } catch (err) {
    // An alias to an anchor never set, or more alias expansions than the yaml library allows (a YAML bomb).
    throw new AcbError(`the task file is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (root === null || root === undefined) throw new AcbError('the task file has no steps');
  if (!isDict(root) || !(isMap(doc.contents) || doc.contents === null))
    throw new AcbError('the task file must be a map with version and steps');
  const warnings = Object.keys(root)
    .filter((k) => !TASK_KEYS.has(k))
    .map((k) => `unknown property '${k}' is ignored`);
  const version = checkVersion(typeof root.version === 'string' ? root.version : scalar(root.version));
  let stepTimeout = int(root.stepTimeout, 'stepTimeout', DEFAULT_STEP_TIMEOUT);
  if (stepTimeout <= 0) stepTimeout = DEFAULT_STEP_TIMEOUT;
  const env = taskEnv(root.env);
  const taskWorkdir = optionalString(root.workingDirectory, 'workingDirectory') ?? '';
  const secrets = parseSecrets(root.secrets);
  checkNetworks(root.networks);
  const volumes = parseVolumes(root.volumes);

  if (root.steps === undefined || root.steps === null) throw new AcbError('the task file has no steps');
  if (!Array.isArray(root.steps) || !isSeq((doc.contents as { get(k: string): unknown }).get('steps')))
    throw new AcbError('steps must be a list');
  if (root.steps.length === 0) throw new AcbError('the task file has no steps');

  const steps: AcbStep[] = [];
  const ids = new Set<string>();
  (root.steps as unknown[]).forEach((raw, index) => {
    const at = (id?: string): string => `steps[${index}]${id ? ` (${id})` : ''}`;
    if (!isDict(raw)) throw new AcbError(`${at()}: a step must be a map with build, cmd or push`);
    const id =
      raw.id === undefined || raw.id === null || raw.id === '' ? `acb_step_${index}` : scalar(raw.id);
    const where = at(id);
    for (const k of Object.keys(raw))
      if (!STEP_KEYS.has(k)) warnings.push(`${where}: unknown property '${k}' is ignored`);
    if (/\s/.test(id)) throw new AcbError(`${where}: step ID cannot contain spaces`);
    if (id === ROOT) throw new AcbError(`${where}: ${ROOT} is a reserved ID, it can't be used`);
    const types = (['cmd', 'build', 'push'] as const).filter((t) => raw[t] !== undefined && raw[t] !== null);
    if (types.length === 0) throw new AcbError(`${where}: step is missing a cmd, build, or push property`);
    if (types.length > 1)
      throw new AcbError(`${where}: step must only contain a single build, cmd, or push property`);
    const type = types[0]!;
    const retries = int(raw.retries, `${where}: retries`, 0);
    if (retries < 0) throw new AcbError(`${where}: step must specify retries >= 0`);
    const repeat = int(raw.repeat, `${where}: repeat`, 0);
    if (repeat < 0) throw new AcbError(`${where}: step must specify repeat >= 0`);

    const when =
      raw.when === undefined || raw.when === null ? undefined : strings(raw.when, `${where}: when`);
    let dependsOn: string[];
    if (when === undefined || when.length === 0) {
      dependsOn = index === 0 ? [] : [steps[index - 1]!.id];
    } else if (when.includes('-')) {
      if (when.length > 1)
        throw new AcbError(
          `${where}: step cannot contain other IDs in when if the immediate execution token is specified`,
        );
      dependsOn = [];
    } else {
      for (const dep of when) {
        if (dep === id) throw new AcbError(`${where}: Step ID: ${id} is self-referenced`);
        if (!ids.has(dep)) {
          const later = (root.steps as unknown[]).some(
            (s, j) => j > index && isDict(s) && scalar(s.id) === dep,
          );
          throw new AcbError(
            `${where}: when names '${dep}', ${later ? 'a later step: a step can only wait for the steps before it' : 'which is not a step ID'} (acb: ${dep} does not exist as a vertex [from: ${dep}, to: ${id}])`,
          );
        }
      }
      dependsOn = [...new Set(when)];
    }
    if (ids.has(id)) throw new AcbError(`${where}: ${id} already exists as a vertex (duplicate step ID)`);
    ids.add(id);

    let content: { build?: string; cmd?: string; push?: string[] };
    if (type === 'push') {
      const images = Array.isArray(raw.push) ? strings(raw.push, `${where}: push`) : [scalar(raw.push)];
      const normalized = [
        ...new Set(
          images
            .map((i) => i.trim())
            .filter(Boolean)
            .map(withTag),
        ),
      ];
      if (normalized.length === 0) throw new AcbError(`${where}: push names no image`);
      content = { push: normalized };
    } else {
      const value = raw[type];
      if (typeof value === 'object') throw new AcbError(`${where}: ${type} must be a string`);
      const textValue = scalar(value).trim();
      if (!textValue) throw new AcbError(`${where}: ${type} is empty`);
      content = { [type]: textValue };
    }

    const volumeMounts = parseMounts(raw.volumeMounts, where, type, volumes);
    const cacheValue = optionalString(raw.cache, `${where}: cache`)?.toLowerCase();
    if (cacheValue !== undefined && cacheValue !== 'enabled' && cacheValue !== 'disabled')
      throw new AcbError(
        `${where}: invalid value for cache property '${String(raw.cache)}': use enabled or disabled`,
      );
    let timeout = int(raw.timeout, `${where}: timeout`, 0);
    if (timeout <= 0) timeout = stepTimeout;
    let retryDelay = int(raw.retryDelay, `${where}: retryDelay`, 0);
    if (retryDelay <= 0) retryDelay = DEFAULT_RETRY_DELAY;
    const startDelay = int(raw.startDelay, `${where}: startDelay`, 0);
    if (startDelay < 0) throw new AcbError(`${where}: startDelay must be >= 0`);
    const entryPoint = optionalString(raw.entryPoint, `${where}: entryPoint`);
    const user = optionalString(raw.user, `${where}: user`);
    const network = optionalString(raw.network, `${where}: network`);
    const isolation = optionalString(raw.isolation, `${where}: isolation`);
    steps.push({
      id,
      type,
      ...content,
      dependsOn,
      env: mergeEnvs(env, strings(raw.env, `${where}: env`)),
      workingDirectory: optionalString(raw.workingDirectory, `${where}: workingDirectory`) ?? taskWorkdir,
      ...(entryPoint ? { entryPoint } : {}),
      ...(user ? { user } : {}),
      ...(network ? { network } : {}),
      ...(isolation ? { isolation } : {}),
      ...(cacheValue ? { cache: cacheValue } : {}),
      timeout,
      startDelay,
      retries,
      retryDelay,
      retryOnErrors: strings(raw.retryOnErrors, `${where}: retryOnErrors`),
      repeat,
      ignoreErrors: bool(raw.ignoreErrors, `${where}: ignoreErrors`),
      detach: bool(raw.detach, `${where}: detach`),
      keep: bool(raw.keep, `${where}: keep`),
      pull: bool(raw.pull, `${where}: pull`),
      privileged: bool(raw.privileged, `${where}: privileged`),
      disableWorkingDirectoryOverride: bool(
        raw.disableWorkingDirectoryOverride,
        `${where}: disableWorkingDirectoryOverride`,
      ),
      expose: strings(raw.expose, `${where}: expose`),
      ports: strings(raw.ports, `${where}: ports`),
      volumeMounts,
    });
  });
  return { version, stepTimeout, steps, secrets, volumes, warnings };
}

/** `push` images get `:latest` when they have neither tag nor digest. */
function withTag(image: string): string {
  const name = image.split('/').pop()!;
  return name.includes(':') || name.includes('@') ? image : `${image}:latest`;
}

function parseSecrets(value: unknown): AcbTask['secrets'] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new AcbError('secrets must be a list');
  const seen = new Set<string>();
  return value.map((s, i) => {
    if (!isDict(s)) throw new AcbError(`secrets[${i}]: a secret must be a map with id and keyvault`);
    const id = optionalString(s.id, `secrets[${i}].id`);
    if (!id) throw new AcbError(`secrets[${i}]: secret is missing an ID`);
    if (/\s/.test(id)) throw new AcbError(`secrets[${i}] (${id}): secret ID cannot contain spaces`);
    if (seen.has(id)) throw new AcbError(`secrets[${i}]: duplicate secret found with ID: ${id}`);
    seen.add(id);
    const keyvault = optionalString(s.keyvault, `secrets[${i}].keyvault`);
    const clientID = optionalString(s.clientID, `secrets[${i}].clientID`);
    if (clientID && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(clientID))
      throw new AcbError(`secrets[${i}] (${id}): msi client ID is not a valid guid`);
    return { id, ...(keyvault ? { keyvault } : {}), ...(clientID ? { clientID } : {}) };
  });
}

/** `networks:` are checked as acb does; locally every step shares the host's network, so they change nothing. */
function checkNetworks(value: unknown): void {
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) throw new AcbError('networks must be a list');
  value.forEach((n, i) => {
    if (!isDict(n) || !optionalString(n.name, `networks[${i}].name`))
      throw new AcbError(`networks[${i}]: name must be specified`);
  });
}

function parseVolumes(value: unknown): AcbTask['volumes'] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new AcbError('volumes must be a list');
  const seen = new Set<string>();
  return value.map((v, i) => {
    if (!isDict(v)) throw new AcbError(`volumes[${i}]: a volume must be a map with name and secret`);
    const name = optionalString(v.name, `volumes[${i}].name`) ?? '';
    if (!/^[a-zA-Z0-9-_]+$/.test(name))
      throw new AcbError(`volumes[${i}]: volume name '${name}' must match ^[a-zA-Z0-9-_]+$`);
    if (seen.has(name)) throw new AcbError(`volumes[${i}]: volume with duplicate name found: ${name}`);
    seen.add(name);
    if (!isDict(v.secret))
      throw new AcbError(`volumes[${i}] (${name}): currently only support for source type secret`);
    const files = Object.entries(v.secret);
    if (files.length === 0) throw new AcbError(`volumes[${i}] (${name}): secret is empty`);
    for (const [file] of files)
      if (!/^[a-zA-Z0-9-_.]+$/.test(file))
        throw new AcbError(`volumes[${i}] (${name}): file name '${file}' must match ^[a-zA-Z0-9-_.]+$`);
    return { name, secret: Object.fromEntries(files.map(([k, v]) => [k, scalar(v)])) };
  });
}

function parseMounts(
  value: unknown,
  where: string,
  type: AcbStep['type'],
  volumes: AcbTask['volumes'],
): AcbStep['volumeMounts'] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new AcbError(`${where}: volumeMounts must be a list`);
  if (type === 'push')
    throw new AcbError(`${where}: invalid use of Mounts: only cmd and build steps take volumeMounts`);
  const paths = new Set<string>();
  return value.map((m) => {
    const name = isDict(m) ? optionalString(m.name, `${where}: volumeMounts.name`) : undefined;
    const mountPath = isDict(m) ? optionalString(m.mountPath, `${where}: volumeMounts.mountPath`) : undefined;
    if (!name || !mountPath) throw new AcbError(`${where}: mount name or mount path is empty`);
    if (paths.has(mountPath))
      throw new AcbError(`${where}: mount with duplicate container file path found: ${mountPath}`);
    paths.add(mountPath);
    if (!volumes.some((v) => v.name === name))
      throw new AcbError(`${where}: mount name, ${name}, does not correspond to a volume`);
    return { name, mountPath };
  });
}
