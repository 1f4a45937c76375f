import { isIP } from 'node:net';
import { DestinationRefusedError, ValidationError } from '../../../src/errors';
import { LOCAL_POLICY, type NetworkPolicy } from '../../../src/net/address-policy';
import type { ResolveAll } from '../../../src/net/guarded-fetch';
import {
  checkUpdateTriggerEndpoint,
  notificationBody,
  type UpdateNotification,
} from '../../../src/triggers/update-notification';

const notification = (payloadType: 'Default' | 'Token'): UpdateNotification => ({
  endpoint: 'https://hooks.example/notify',
  payloadType,
  taskName: 'app',
  runId: 'cf12',
  registry: 'myregistry.azurecr.io',
  imageUpdateTrigger: {
    id: 'evt-1',
    timestamp: '2026-11-23T08:00:00Z',
    images: [{ registry: 'myregistry.azurecr.io', repository: 'base', tag: '1', digest: 'sha256:ab' }],
  },
});

describe('update trigger notification bodies', () => {
  it('carries only the token with payload type Token', () => {
    expect(notificationBody(notification('Token'), 'dG9r')).toEqual({ updateTriggerToken: 'dG9r' });
  });

  it('carries the token and what triggered which run with payload type Default', () => {
    expect(notificationBody(notification('Default'), undefined)).toEqual({
      updateTriggerToken: null,
      action: 'baseImageUpdated',
      registry: 'myregistry.azurecr.io',
      taskName: 'app',
      runId: 'cf12',
      imageUpdateTrigger: notification('Default').imageUpdateTrigger,
    });
  });
});

describe('update-notification', () => {
  describe('checkUpdateTriggerEndpoint', () => {
    const FIELD = 'properties.trigger.baseImageTrigger.updateTriggerEndpoint';
    const AZURE: NetworkPolicy = { privateAllowed: false, allowedHosts: [] };
    // What the name resolves to, without DNS.
    const resolvingTo =
      (address: string): ResolveAll =>
      () =>
        Promise.resolve([{ address, family: isIP(address) }]);

    it.each([
      ['http://169.254.169.254/latest', LOCAL_POLICY],
      ['http://[fd00:ec2::254]/x', LOCAL_POLICY],
      ['http://127.0.0.1:8080/x', AZURE],
    ])('refuses %s with a 400 naming the field', async (endpoint, policy) => {
      const err = await checkUpdateTriggerEndpoint(endpoint, policy).catch((e: unknown) => e);

      expect(err).toBeInstanceOf(DestinationRefusedError);
      expect((err as DestinationRefusedError).status).toBe(400);
      expect((err as DestinationRefusedError).target).toBe(FIELD);
    });

    it('refuses a name that resolves to the metadata address', async () => {
      const err = await checkUpdateTriggerEndpoint(
        'https://hooks.example/notify',
        LOCAL_POLICY,
        resolvingTo('169.254.169.254'),
      ).catch((e: unknown) => e);

      expect((err as Error).message).toContain('hooks.example (169.254.169.254 is a cloud metadata address)');
    });

    it('accepts a name that resolves to an allowed address', async () => {
      await expect(
        checkUpdateTriggerEndpoint('https://hooks.example/notify', AZURE, resolvingTo('203.0.113.7')),
      ).resolves.toBeUndefined();
    });

    it('accepts a name that does not resolve yet (each delivery is checked again)', async () => {
      const unresolvable: ResolveAll = () =>
        Promise.reject(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }));

      await expect(
        checkUpdateTriggerEndpoint('https://not-yet.example/notify', AZURE, unresolvable),
      ).resolves.toBeUndefined();
    });

    it('refuses a URL that is not http(s)', async () => {
      const err = await checkUpdateTriggerEndpoint('file:///etc/passwd', LOCAL_POLICY).catch(
        (e: unknown) => e,
      );

      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).target).toBe(FIELD);
    });
  });
});
