import { ConfigError } from '../../errors';

/**
 * The kaniko image builds run in: the maintained fork's `:debug` variant (a busybox shell for the wrapper), pinned
 * to a release. Its release notes give no digest, so none is made up here: REFIT_ACI_KANIKO_IMAGE pins one.
 */
export const DEFAULT_KANIKO_IMAGE = 'ghcr.io/osscontainertools/kaniko:v1.28.3-debug';
/** The helper image of the fetch and report containers: any image with sh, curl, tar, git, awk and base64. */
export const DEFAULT_HELPER_IMAGE = 'mcr.microsoft.com/azure-cli:2.67.0';
/** ACI's Linux pay-as-you-go meters (Standard vCPU and memory duration, East US), per second. */
export const DEFAULT_PRICES = { coreSecond: 0.00001125, gbSecond: 0.00000124 };

/** Where and how the aci executor creates a build's container group. */
export interface AciSettings {
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly location: string;
  /** A subnet for the groups (VNet injection), or none. */
  readonly subnetId: string | undefined;
  /** The builder's user-assigned identity: its resource ID (attached to groups) and its client ID (for kaniko). */
  readonly identityId: string;
  readonly identityClientId: string;
  readonly memoryGb: number;
  /** Spot priority (cheaper, evictable; no VNet). */
  readonly spot: boolean;
  readonly kanikoImage: string;
  readonly helperImage: string;
  /** ARM's endpoint (another cloud's, e.g. Azure China's). */
  readonly armEndpoint: string;
  readonly prices: { readonly coreSecond: number; readonly gbSecond: number };
}

type Env = Record<string, string | undefined>;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const IDENTITY_ID =
  /^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+\/providers\/microsoft\.managedidentity\/userassignedidentities\/[^/]+$/i;
const SUBNET_ID =
  /^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+\/providers\/microsoft\.network\/virtualnetworks\/[^/]+\/subnets\/[^/]+$/i;

function required(env: Env, name: string, what: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`${name} is not set (${what}); REFIT_EXECUTOR=aci needs it`, name);
  return value;
}

function matching(
  env: Env,
  name: string,
  pattern: RegExp,
  what: string,
  optional = false,
): string | undefined {
  const value = optional ? env[name]?.trim() || undefined : required(env, name, what);
  if (value !== undefined && !pattern.test(value))
    throw new ConfigError(`${name} must be ${what}, got '${value}'`, name);
  return value;
}

function positive(env: Env, name: string, fallback: number, max = Infinity): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || value > max)
    throw new ConfigError(
      `${name} must be a number above 0${max < Infinity ? ` and at most ${max}` : ''}, got '${text}'`,
      name,
    );
  return value;
}

/** Reads the aci executor's settings (REFIT_ACI_*); a missing or malformed one is a ConfigError naming it. */
export function loadAciSettings(env: Env): AciSettings {
  const spotText = env.REFIT_ACI_SPOT?.trim().toLowerCase() || 'false';
  if (spotText !== 'true' && spotText !== 'false')
    throw new ConfigError(
      `REFIT_ACI_SPOT must be true or false, got '${env.REFIT_ACI_SPOT}'`,
      'REFIT_ACI_SPOT',
    );
  const spot = spotText === 'true';
  const subnetId = matching(env, 'REFIT_ACI_SUBNET_ID', SUBNET_ID, 'a subnet resource ID', true);
  if (spot && subnetId)
    throw new ConfigError(
      'REFIT_ACI_SPOT cannot be combined with REFIT_ACI_SUBNET_ID: ACI Spot container groups cannot join a virtual network',
      'REFIT_ACI_SPOT',
    );
  const armEndpoint = env.REFIT_ACI_ARM_ENDPOINT?.trim() || 'https://management.azure.com';
  if (!/^https:\/\/[^/?#]+\/?$/.test(armEndpoint))
    throw new ConfigError(
      `REFIT_ACI_ARM_ENDPOINT must be an https origin such as https://management.azure.com, got '${armEndpoint}'`,
      'REFIT_ACI_ARM_ENDPOINT',
    );
  return {
    subscriptionId: matching(env, 'REFIT_ACI_SUBSCRIPTION_ID', GUID, 'a subscription ID (a GUID)')!,
    resourceGroup: required(
      env,
      'REFIT_ACI_RESOURCE_GROUP',
      'the resource group build container groups go to',
    ),
    location: required(
      env,
      'REFIT_ACI_LOCATION',
      'the Azure region of the build container groups, e.g. westeurope',
    ),
    subnetId,
    identityId: matching(env, 'REFIT_ACI_IDENTITY_ID', IDENTITY_ID, "the builder identity's resource ID")!,
    identityClientId: matching(
      env,
      'REFIT_ACI_IDENTITY_CLIENT_ID',
      GUID,
      "the builder identity's client ID (a GUID)",
    )!,
    memoryGb: positive(env, 'REFIT_ACI_MEMORY_GB', 4, 240),
    spot,
    kanikoImage: env.REFIT_ACI_KANIKO_IMAGE?.trim() || DEFAULT_KANIKO_IMAGE,
    helperImage: env.REFIT_ACI_HELPER_IMAGE?.trim() || DEFAULT_HELPER_IMAGE,
    armEndpoint: armEndpoint.replace(/\/$/, ''),
    prices: {
      coreSecond: positive(env, 'REFIT_ACI_PRICE_CORE_SECOND', DEFAULT_PRICES.coreSecond),
      gbSecond: positive(env, 'REFIT_ACI_PRICE_GB_SECOND', DEFAULT_PRICES.gbSecond),
    },
  };
}
