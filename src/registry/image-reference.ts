import { ValidationError } from '../errors';

/** A parsed image reference, normalised like the docker CLI does. */
export interface ImageReference {
  /** Registry host (and port), e.g. `docker.io`, `myreg.azurecr.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `library/node`. */
  readonly repository: string;
  /** Tag, or null when the reference has only a digest. */
  readonly tag: string | null;
  /** `sha256:…`, or null when the reference is not digest-pinned. */
  readonly digest: string | null;
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = new Set([
  'docker.io',
  'index.docker.io',
  'registry.hub.docker.com',
  'registry-1.docker.io',
]);

/** A registry host with Docker Hub's aliases named `docker.io`, as references name it. */
export function dockerHubAsOne(registry: string): string {
  return DOCKER_HUB_ALIASES.has(registry) ? DOCKER_HUB : registry;
}

// The grammar of distribution/reference (reference/regexp.go).
const alnum = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domain = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH = new RegExp(`^${pathComponent}(?:/${pathComponent})*$`);
const DOMAIN = new RegExp(`^${domain}$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

function invalid(input: string, why: string, field?: string): ValidationError {
  return new ValidationError(`'${input}' is not a valid image reference: ${why}`, field);
}

/**
 * Parses `[registry/]repository[:tag][@digest]`. A reference without a registry belongs to
 * `defaultRegistry` (Docker Hub unless told otherwise); a missing tag becomes `latest` unless a digest is given.
 */
export function parseImageReference(
  input: string,
  options: { defaultRegistry?: string; field?: string } = {},
): ImageReference {
  const field = options.field;
  const text = input.trim();
  if (!text) throw invalid(input, 'it is empty', field);
  if (text.length > 512) throw invalid(input.slice(0, 40) + '…', 'it is longer than 512 characters', field);

  let rest = text;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(input, `'${digest}' is not a digest`, field);
  }

  let tag: string | null = null;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(input, `'${tag}' is not a valid tag`, field);
  }

  let registry: string | undefined;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (
      first.includes('.') ||
      first.includes(':') ||
      first === 'localhost' ||
      first !== first.toLowerCase()
    ) {
      registry = first;
      path = rest.slice(slash + 1);
      if (!DOMAIN.test(registry)) throw invalid(input, `'${registry}' is not a registry host`, field);
    }
  }
  if (!PATH.test(path)) {
    throw invalid(
      input,
      'the repository must be lower-case letters, digits and separators (. _ __ -) between slashes',
      field,
    );
  }
  if ((registry ? registry.length + 1 : 0) + path.length > 255)
    throw invalid(input, 'the name is longer than 255 characters', field);

  registry = registry ?? options.defaultRegistry ?? DOCKER_HUB;
  if (DOCKER_HUB_ALIASES.has(registry)) {
    registry = DOCKER_HUB;
    if (!path.includes('/')) path = `library/${path}`;
  }
  if (tag === null && digest === null) tag = 'latest';
  return { registry, repository: path, tag, digest };
}

/** The reference written out in full: `registry/repository[:tag][@digest]`. */
export function formatImageReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** A registry on this machine (any port): reached over plain HTTP without configuration, as a local registry is. */
export function isLoopbackRegistry(registry: string): boolean {
  return /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(registry);
}

/** Whether Refit talks plain HTTP to a registry: on loopback, or listed as insecure (REFIT_INSECURE_REGISTRIES). */
export function speaksPlainHttp(registry: string, insecure: readonly string[]): boolean {
  return isLoopbackRegistry(registry) || insecure.includes(registry);
}
