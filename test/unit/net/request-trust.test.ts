import { hostHeaderAllowed, isLoopbackName, originAllowed } from '../../../src/net/request-trust';

describe('request-trust', () => {
  describe('originAllowed', () => {
    it.each<[string | undefined, readonly string[], boolean]>([
      [undefined, [], true],
      ['https://evil.example', [], false],
      ['null', [], false],
      ['null', ['null'], false],
      ['https://app.example', ['https://app.example'], true],
      ['HTTPS://APP.example', ['https://app.example'], true],
      ['https://app.example:443', ['https://app.example'], true],
      ['https://app.example:8443', ['https://app.example'], false],
      ['http://app.example', ['https://app.example'], false],
      ['https://app.example.evil.example', ['https://app.example'], false],
      ['not a url', ['https://app.example'], false],
    ])('Origin %s with %j allowed: %s', (origin, allowed, expected) => {
      expect(originAllowed(origin, allowed)).toBe(expected);
    });
  });

  describe('isLoopbackName', () => {
    it.each([
      ['127.0.0.1', true],
      ['127.8.9.10', true],
      ['localhost', true],
      ['[::1]', true],
      ['::1', true],
      ['0.0.0.0', false],
      ['10.0.0.1', false],
      ['127.0.0.1.nip.io', false],
    ])('%s: %s', (name, expected) => {
      expect(isLoopbackName(name)).toBe(expected);
    });
  });

  describe('hostHeaderAllowed', () => {
    it.each<[string | undefined, string | undefined, boolean]>([
      ['127.0.0.1:7071', undefined, true],
      ['127.0.0.1', undefined, true],
      ['localhost:7071', undefined, true],
      ['LOCALHOST:7071', undefined, true],
      ['[::1]:7071', undefined, true],
      ['127.0.0.1:7072', undefined, false],
      ['evil.example:7071', undefined, false],
      ['evil.example', undefined, false],
      ['127.0.0.1.nip.io:7071', undefined, false],
      [undefined, undefined, false],
      ['', undefined, false],
      ['refit.example', 'refit.example', true],
      ['refit.example:443', 'refit.example', true],
      ['refit.example:8080', 'refit.example:443', false],
      ['refit.example:443', 'refit.example:443', true],
      ['evil.example', 'refit.example', false],
      ['a b', 'refit.example', false],
    ])('Host %s with REFIT_PUBLIC_HOST %s: %s', (header, publicHost, expected) => {
      expect(hostHeaderAllowed(header, 7071, publicHost)).toBe(expected);
    });
  });
});
