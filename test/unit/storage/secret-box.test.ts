import { randomBytes } from 'node:crypto';
import { open, seal } from '../../../src/storage/secret-box';

describe('secret-box', () => {
  const key = randomBytes(32);

  it('opens what it sealed', () => {
    expect(open(key, seal(key, 'pässword'))).toBe('pässword');
  });

  it('seals the same text differently each time', () => {
    expect(seal(key, 'x')).not.toBe(seal(key, 'x'));
  });

  it('refuses a wrong key or altered text', () => {
    const sealed = seal(key, 'secret');
    expect(() => open(randomBytes(32), sealed)).toThrow();
    const raw = Buffer.from(sealed, 'base64');
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 1;
    expect(() => open(key, raw.toString('base64'))).toThrow();
  });
});
