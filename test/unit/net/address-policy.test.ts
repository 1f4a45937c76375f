import { LOCAL_POLICY, refusal, resolveAllowed, type NetworkPolicy } from '../../../src/net/address-policy';

const AZURE: NetworkPolicy = { privateAllowed: false, allowedHosts: [] };

describe('address-policy', () => {
  describe('refusal', () => {
    it.each([
      ['169.254.169.254', 'a cloud metadata address'],
      ['::ffff:169.254.169.254', 'a cloud metadata address'],
      ['168.63.129.16', 'a cloud metadata address'],
      ['fd00:ec2::254', 'a cloud metadata address'],
      ['169.254.10.1', 'a link-local address'],
      ['fe80::1', 'a link-local address'],
      ['0.0.0.0', 'an unspecified address'],
      ['::', 'an unspecified address'],
      ['224.0.0.1', 'a multicast or reserved address'],
      ['ff02::1', 'a multicast or reserved address'],
    ])('refuses %s in every mode (%s)', (address, why) => {
      expect(refusal(address, LOCAL_POLICY)).toContain(why);
      expect(refusal(address, AZURE)).toContain(why);
      expect(
        refusal(address, { privateAllowed: false, allowedHosts: [address, '169.254.0.0/16'] }),
      ).toContain(why);
    });

    it.each(['127.0.0.1', '::1', '10.1.2.3', '172.20.0.1', '192.168.1.1', 'fd12::1', '100.64.0.1'])(
      'allows %s on a local stack and refuses it in Azure unless listed',
      (address) => {
        expect(refusal(address, LOCAL_POLICY)).toBeUndefined();
        expect(refusal(address, AZURE)).toMatch(/loopback|private/);
        expect(refusal(address, { privateAllowed: false, allowedHosts: [address] })).toBeUndefined();
      },
    );

    it('allows a private address by the host name or range listed', () => {
      const policy = { privateAllowed: false, allowedHosts: ['git.corp', '10.0.0.0/8'] };
      expect(refusal('192.168.1.1', policy, 'git.corp')).toBeUndefined();
      expect(refusal('10.9.9.9', policy, 'other')).toBeUndefined();
      expect(refusal('192.168.1.1', policy, 'other')).toMatch(/private/);
    });

    it('allows public addresses', () => {
      expect(refusal('20.1.2.3', AZURE)).toBeUndefined();
      expect(refusal('2603:1030::1', AZURE)).toBeUndefined();
    });
  });

  describe('resolveAllowed', () => {
    it('refuses a name that resolves to a refused address, naming both', async () => {
      await expect(resolveAllowed('localhost', AZURE)).rejects.toThrow(/localhost \(.*loopback/);
      await expect(resolveAllowed('localhost', LOCAL_POLICY)).resolves.not.toHaveLength(0);
    });

    it('checks an address literal without resolving it', async () => {
      await expect(resolveAllowed('[fe80::1]', LOCAL_POLICY)).rejects.toThrow(/link-local/);
      await expect(resolveAllowed('169.254.169.254', LOCAL_POLICY)).rejects.toThrow(/metadata/);
    });
  });
});
