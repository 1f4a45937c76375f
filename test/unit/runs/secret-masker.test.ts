import { MASK, SecretMasker, maskSecrets } from '../../../src/runs/secret-masker';

/** Feeds `pieces` through one masking stream, as a tool's output arrives, and returns what the log shows. */
function streamed(masker: SecretMasker, pieces: readonly string[]): string {
  const stream = masker.stream();
  return pieces.map((p) => stream.push(p)).join('') + stream.end();
}

/** Whether `secret` can be read back from `text` by decoding base64 from any of its first four characters. */
function decodesTo(text: string, secret: string, encoding: 'base64' | 'base64url'): boolean {
  const compact = text.replace(/\s/g, '');
  return [0, 1, 2, 3].some((o) => Buffer.from(compact.slice(o), encoding).includes(Buffer.from(secret)));
}

describe('secret-masker', () => {
  const secret = 'pa55-w0rd/xyz+7781?&=';

  describe('maskSecrets', () => {
    it('replaces every occurrence of every secret', () => {
      expect(maskSecrets('a=s3cret b=s3cret c=tok', ['s3cret', 'tok', ''])).toBe(
        `a=${MASK} b=${MASK} c=${MASK}`,
      );
    });

    it('masks the longer of two secrets that start alike whole', () => {
      expect(maskSecrets('x abcdefgh y', ['abcd', 'abcdefgh'])).toBe(`x ${MASK} y`);
    });

    it('masks a secret that contains a newline, with LF or CRLF line ends', () => {
      const multi = 'line-one\nline-two';
      expect(maskSecrets(`a ${multi} b`, [multi])).toBe(`a ${MASK} b`);
      expect(maskSecrets(`a line-one\r\nline-two b`, [multi])).toBe(`a ${MASK} b`);
    });

    it('masks each line of a secret of several lines when printed on its own', () => {
      const key = '-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----';
      const masked = maskSecrets('the second line is MIIBOgIBAAJBAKj34GkxFhD9 here', [key]);
      expect(masked).toBe(`the second line is ${MASK} here`);
    });

    it('masks the JSON-escaped form of a secret with quotes or newlines', () => {
      const value = 'say "hi"\nnow';
      expect(maskSecrets(JSON.stringify({ v: value }), [value])).toBe(`{"v":"${MASK}"}`);
    });

    it.each([
      ['encodeURIComponent', encodeURIComponent(secret)],
      ['lower-case hex', encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())],
      ['a form body', new URLSearchParams({ v: secret }).toString().slice(2)],
      ['a form body with spaces', new URLSearchParams({ v: 'my secret value' }).toString().slice(2)],
    ])('masks the URL-encoded form (%s)', (_name, encoded) => {
      const value = decodeURIComponent(encoded.replace(/\+/g, ' '));
      const masked = maskSecrets(`https://h/?token=${encoded}&x=1`, [value]);
      expect(masked).toBe(`https://h/?token=${MASK}&x=1`);
    });

    it.each([0, 1, 2])(
      'masks the base64 of a secret %i bytes into a longer encoded text (standard and URL-safe)',
      (shift) => {
        for (const suffix of ['', 'x', 'xy', 'xyz']) {
          const plain = Buffer.from(`${'ABC'.slice(0, shift)}${secret}${suffix}`);
          for (const encoding of ['base64', 'base64url'] as const) {
            const encoded = plain.toString(encoding);
            expect(decodesTo(encoded, secret, encoding)).toBe(true);

            const masked = maskSecrets(`value: ${encoded}\n`, [secret]);

            expect(masked).toContain(MASK);
            expect(decodesTo(masked.replace(MASK, ''), secret, encoding)).toBe(false);
          }
        }
      },
    );

    it('masks a secret of 1 to 3 characters as it is, but not its base64 (it would match all over the log)', () => {
      expect(maskSecrets('key=ab;', ['ab'])).toBe(`key=${MASK};`);
      expect(maskSecrets('YWJj QUJD', ['abc'])).toBe('YWJj QUJD');
      expect(maskSecrets('x%20y', ['x y'])).toBe(MASK);
    });
  });

  describe('MaskingStream', () => {
    const masker = new SecretMasker([secret]);
    const text = `token is ${secret} here\n`;
    const expected = `token is ${MASK} here\n`;

    it('masks a secret split into two chunks at every offset', () => {
      for (let cut = 0; cut <= text.length; cut++) {
        expect(streamed(masker, [text.slice(0, cut), text.slice(cut)])).toBe(expected);
      }
    });

    it('masks a secret split into three chunks at every pair of offsets', () => {
      const start = text.indexOf(secret);
      for (let a = start; a <= start + secret.length; a++) {
        for (let b = a; b <= start + secret.length; b++) {
          expect(streamed(masker, [text.slice(0, a), text.slice(a, b), text.slice(b)])).toBe(expected);
        }
      }
    });

    it('masks a secret that arrives one character at a time', () => {
      expect(streamed(masker, [...text])).toBe(expected);
    });

    it('masks a secret containing a newline split at every offset', () => {
      const multi = 'first-half\nsecond-half';
      const m = new SecretMasker([multi]);
      const out = `a ${multi} b\n`;
      for (let cut = 0; cut <= out.length; cut++) {
        expect(streamed(m, [out.slice(0, cut), out.slice(cut)])).toBe(`a ${MASK} b\n`);
      }
    });

    it.each([0, 1, 2])('masks base64 at alignment %i split at every offset', (shift) => {
      const encoded = Buffer.from(`${'ABC'.slice(0, shift)}${secret}!`).toString('base64');
      for (let cut = 0; cut <= encoded.length; cut++) {
        const out = streamed(masker, [encoded.slice(0, cut), encoded.slice(cut), '\n']);
        expect(out).toContain(MASK);
        expect(decodesTo(out.replace(MASK, ''), secret, 'base64')).toBe(false);
      }
    });

    it('masks the URL-encoded form split at every offset', () => {
      const encoded = `?t=${encodeURIComponent(secret)}\n`;
      for (let cut = 0; cut <= encoded.length; cut++) {
        expect(streamed(masker, [encoded.slice(0, cut), encoded.slice(cut)])).toBe(`?t=${MASK}\n`);
      }
    });

    it('holds back only what could be the start of a secret, so ordinary lines show at once', () => {
      const stream = masker.stream();
      expect(stream.push('STEP 1/3: FROM busybox\n')).toBe('STEP 1/3: FROM busybox\n');
      expect(stream.push('token is pa55-w0')).toBe('token is ');
      expect(stream.push('rd/xyz+7781?&= done\n')).toBe(`${MASK} done\n`);
    });

    it('never lets a secret through whatever the secret, the text around it and the chunking (seeded random cases)', () => {
      // A small seeded generator (mulberry32), so that a failure repeats.
      let seed = 0x5eed;
      const random = (): number => {
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
      const pick = (chars: string, n: number): string =>
        Array.from({ length: n }, () => chars[Math.floor(random() * chars.length)]).join('');
      const alphabet = 'abcXYZ019-_/+=%&? \n"é';
      for (let i = 0; i < 300; i++) {
        const value = pick(alphabet, 4 + Math.floor(random() * 20));
        if (!value.trim()) continue;
        const forms = [
          value,
          encodeURIComponent(value),
          Buffer.from(`${pick('ab', i % 3)}${value}`).toString('base64'),
        ];
        const text = `${pick(alphabet, 10)}${forms.join(pick(' \n', 1))}${pick(alphabet, 10)}`;
        const pieces: string[] = [];
        for (let at = 0; at < text.length;) {
          const size = 1 + Math.floor(random() * 12);
          pieces.push(text.slice(at, at + size));
          at += size;
        }

        const out = streamed(new SecretMasker([value]), pieces);

        expect(out).not.toContain(value);
        expect(out).not.toContain(encodeURIComponent(value));
        expect(decodesTo(out.split(MASK).join(' '), value, 'base64')).toBe(false);
      }
    });

    it('passes output through unchanged when there are no secrets', () => {
      expect(streamed(new SecretMasker([]), ['a', 'b\n'])).toBe('ab\n');
    });

    it('masks the secrets of a masker it is switched to, the old ones too, a secret it held the start of included', () => {
      const later = 'kv-value-0042';
      const stream = masker.stream();
      // The stream holds back the start of the first secret, then learns a second one.
      const before = stream.push(`one ${secret.slice(0, 6)}`);
      stream.use(masker.with([later]));
      const after = stream.push(`${secret.slice(6)} two ${later} three ${secret}\n`) + stream.end();
      expect(before + after).toBe(`one ${MASK} two ${MASK} three ${MASK}\n`);
    });
  });
});
