// Where Refit's own outbound connections may go. Every server-side fetch (tarballs, git remotes, alias files,
// updateTriggerEndpoint deliveries, registry token realms) is checked here, on the address it connects to.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { DestinationRefusedError } from '../errors';

/** Which destinations beyond the public internet Refit's outbound connections may reach. */
export interface NetworkPolicy {
  /** Loopback and private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7): allowed on a local stack. */
  readonly privateAllowed: boolean;
  /** Host names, addresses or CIDR ranges allowed even when private (REFIT_ALLOWED_HOSTS); never the metadata ones. */
  readonly allowedHosts: readonly string[];
}

/** The policy of a local stack: loopback and private networks are where its parts and a developer's servers live. */
export const LOCAL_POLICY: NetworkPolicy = { privateAllowed: true, allowedHosts: [] };

function blockList(v4: readonly string[], v6: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of v4) {
    const [net, bits] = cidr.split('/');
    list.addSubnet(net!, Number(bits), 'ipv4');
  }
  for (const cidr of v6) {
    const [net, bits] = cidr.split('/');
    list.addSubnet(net!, Number(bits), 'ipv6');
  }
  return list;
}

const METADATA = blockList(['169.254.169.254/32', '168.63.129.16/32'], ['fd00:ec2::254/128']);
const ALWAYS_REFUSED: readonly [BlockList, string][] = [
  [METADATA, 'a cloud metadata address'],
  [blockList(['169.254.0.0/16'], ['fe80::/10']), 'a link-local address'],
  [blockList(['0.0.0.0/8'], ['::/128']), 'an unspecified address'],
  [blockList(['224.0.0.0/4', '240.0.0.0/4'], ['ff00::/8']), 'a multicast or reserved address'],
];
const LOOPBACK = blockList(['127.0.0.0/8'], ['::1/128']);
const PRIVATE = blockList(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'], ['fc00::/7']);

/** `::ffff:10.0.0.1` is 10.0.0.1: an IPv4-mapped IPv6 address is checked as the IPv4 one it carries. */
function normalize(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return { address: mapped[1]!, family: 'ipv4' };
  return { address: bare, family: isIP(bare) === 6 ? 'ipv6' : 'ipv4' };
}

function listed(policy: NetworkPolicy, host: string | undefined, address: string, family: 'ipv4' | 'ipv6') {
  return policy.allowedHosts.some((entry) => {
    if (host && entry.toLowerCase() === host.toLowerCase()) return true;
    if (entry.includes('/')) {
      const [net, bits] = entry.split('/');
      const v = isIP(net!) === 6 ? 'ipv6' : 'ipv4';
      if (v !== family) return false;
      const list = new BlockList();
      list.addSubnet(net!, Number(bits), v);
      return list.check(address, family);
    }
    return isIP(entry) !== 0 && normalize(entry).address === address;
  });
}

/**
 * Why a connection to `address` is refused under `policy`, or undefined when it is allowed. `host` is the name it was
 * resolved from, which REFIT_ALLOWED_HOSTS may list.
 */
export function refusal(address: string, policy: NetworkPolicy, host?: string): string | undefined {
  const { address: ip, family } = normalize(address);
  if (isIP(ip) === 0) return `'${address}' is not an IP address`;
  for (const [list, what] of ALWAYS_REFUSED) if (list.check(ip, family)) return `${ip} is ${what}`;
  if (policy.privateAllowed || listed(policy, host, ip, family)) return undefined;
  if (LOOPBACK.check(ip, family)) return `${ip} is a loopback address`;
  if (PRIVATE.check(ip, family))
    return `${ip} is in a private range (list it in REFIT_ALLOWED_HOSTS to allow it)`;
  return undefined;
}

/** Throws a {@link DestinationRefusedError} naming the host and why, when `address` is refused. */
export function assertAllowed(address: string, policy: NetworkPolicy, host?: string, target?: string): void {
  const why = refusal(address, policy, host);
  if (why) {
    const name = host && host !== address ? `${host} (${why})` : why;
    throw new DestinationRefusedError(`the destination is refused: ${name}`, target);
  }
}

/** A host name as URL parsing leaves it (`[::1]` → `::1`). */
export function bareHost(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '');
}

/**
 * Resolves a host name and checks every address it has: all must be allowed (a name with one refused address is
 * refused, so a rebinding resolver cannot pick the good one for the check and the bad one for the connection).
 * Returns the addresses, for callers that pin the connection to them.
 */
export async function resolveAllowed(
  hostname: string,
  policy: NetworkPolicy,
  target?: string,
): Promise<LookupAddress[]> {
  const host = bareHost(hostname);
  if (isIP(host)) {
    assertAllowed(host, policy, host, target);
    return [{ address: host, family: isIP(host) }];
  }
  const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
    dnsLookup(host, { all: true }, (err, found) => (err ? reject(err) : resolve(found))),
  ).catch((err: Error) => {
    throw new DestinationRefusedError(`the host ${host} could not be resolved: ${err.message}`, target);
  });
  for (const a of addresses) assertAllowed(a.address, policy, host, target);
  return addresses;
}
