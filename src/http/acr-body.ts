// ACR's request bodies as its clients send them. The Azure SDKs, ARM templates and a task exported from ACR with GET
// carry explicit nulls for unset properties and the read-only properties ACR itself returns; Refit reads both as
// absent, in this one place, before its strict schemas see the body. Settings Refit cannot honour are refused by the
// schemas with `unsupported`, never dropped here.
import { z } from 'zod';

/** Read-only properties of an ARM resource and of a task's properties: what ACR returns, never what a client sets. */
const READ_ONLY = new Set(['id', 'name', 'type', 'systemData']);
const READ_ONLY_PROPERTIES = new Set(['provisioningState', 'creationDate']);
const READ_ONLY_IDENTITY = new Set(['principalId', 'tenantId']);

/** Deeper than any ACR body: past it a value is left as it is (a schema refuses it), never walked. */
const MAX_DEPTH = 16;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sets a property as JSON.parse does (a key `__proto__` stays a plain property, never the prototype). */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function withoutNulls(value: unknown, depth: number, resource: boolean, drop?: ReadonlySet<string>): unknown {
  if (depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) return value.map((v) => withoutNulls(v, depth + 1, false));
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  const top = resource && depth === 0;
  for (const [key, v] of Object.entries(value)) {
    if (v === null || drop?.has(key)) continue;
    // In credentials a null login server means "remove it" (ARM's merge): kept for the credentials schema.
    if (key === 'credentials') put(out, key, v);
    else if (top && key === 'properties') put(out, key, withoutNulls(v, 1, false, READ_ONLY_PROPERTIES));
    else if (top && key === 'identity') put(out, key, withoutNulls(v, 1, false, READ_ONLY_IDENTITY));
    else put(out, key, withoutNulls(v, depth + 1, false));
  }
  return out;
}

/**
 * An ACR request body as Refit reads it: explicit nulls are absent (except inside `credentials`, where ARM gives a
 * null login server a meaning). For a resource (a task), the read-only `id`, `name`, `type`, `systemData`,
 * `properties.provisioningState`, `properties.creationDate` and `identity.principalId`/`tenantId` are dropped too,
 * so that a resource read from ACR can be sent back as it is.
 */
export function acrBody(value: unknown, resource = false): unknown {
  return withoutNulls(value, 0, resource, resource ? READ_ONLY : undefined);
}

/** A run request's `schema` behind {@link acrBody}: the one preprocessing step of ACR's request bodies. */
export function acrRequest<S extends z.ZodType>(schema: S): z.ZodPreprocess<S> {
  return z.preprocess((v) => acrBody(v), schema);
}

/** A resource's (a task's) `schema` behind {@link acrBody}, read-only properties dropped. */
export function acrResource<S extends z.ZodType>(schema: S): z.ZodPreprocess<S> {
  return z.preprocess((v) => acrBody(v, true), schema);
}

/** A property Refit cannot honour: absent is fine, any value is refused with `reason`. */
export function unsupported(reason: string): z.ZodOptional<z.ZodCustom<undefined, undefined>> {
  return z.custom<undefined>((value) => value === undefined, { error: reason }).optional();
}

/** Why `agentPoolName` is refused. */
export const AGENT_POOL_UNSUPPORTED =
  'agent pools are not supported: Refit runs every run on its own executor (leave agentPoolName out)';
/** Why `logTemplate` is refused. */
export const LOG_TEMPLATE_UNSUPPORTED =
  "logTemplate is not supported: Refit does not push run logs to a registry as artifacts (read a run's log with listLogSasUrl or GET /runs/{runId}/log)";
