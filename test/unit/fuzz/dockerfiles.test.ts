// Property-based tests of the Dockerfile scan: for mutated real Dockerfiles and for any text, with any build
// arguments and target, it finds the base images or refuses with a ValidationError naming the line, never a
// TypeError, RangeError or stack overflow, and never hangs (variable expansion recurses; image references are regexes).
import fc from 'fast-check';
import { RefitError } from '../../../src/errors';
import { scanDockerfile } from '../../../src/dockerfile/scan';
import {
  corpus,
  itReplaysCorpus,
  mutatedText,
  nastyString,
  params,
  printCounts,
  refusesCleanly,
} from '../../support/fuzz';

afterAll(() => printCounts('dockerfiles'));

/** Lines and fragments that have broken Dockerfile scanners: expansions, flags, stage references, escapes. */
const dockerfileSnippet: fc.Arbitrary<string> = fc.oneof(
  nastyString.map((s) => s.slice(0, 2000)),
  fc.constantFrom(
    'FROM',
    'FROM ',
    'FROM scratch',
    'FROM ${A}',
    'FROM ${A:-${B:-${C:-busybox}}}',
    'FROM ${A:+x}',
    'FROM ${',
    'FROM ${}',
    'FROM ${A:?err}',
    'FROM $',
    'FROM \\$A',
    'FROM 0',
    'FROM 99',
    'FROM a AS',
    'FROM a AS b c',
    'FROM --platform=$BUILDPLATFORM node:20 AS build',
    'FROM --platform node',
    'FROM node@sha256:abc',
    'FROM NODE:Latest',
    'FROM [::1]:5000/x',
    'FROM a/b/c/d/e/f/g/h:1',
    'ARG',
    'ARG =x',
    'ARG A',
    'ARG A=${A}',
    'ARG A=${B',
    'ARG A=${B:?x}',
    'ARG A=${A:-${A:-${A:-${A:-x}}}}',
    'ARG A=$A$A$A$A',
    'ARG __proto__=x',
    'ARG constructor',
    'COPY --from= / /',
    'COPY --from=0 / /',
    'COPY --from=${A} / /',
    'COPY --from=build --from=other / /',
    'ADD --from=x / /',
    'RUN --mount=type=cache,from=x,target=/y true',
    'RUN --mount=from= true',
    'RUN --mount true',
    '# escape=`',
    '# escape=',
    '# syntax=docker/dockerfile:1',
    '\\',
    'RUN a \\',
    '\uFEFFFROM x',
    'ONBUILD FROM x',
    'HEALTHCHECK CMD FROM x',
  ),
  fc.nat({ max: 5000 }).map((n) => `FROM ${'${A:-'.repeat(n)}x${'}'.repeat(n)}`),
  fc.nat({ max: 5000 }).map((n) => `ARG A=${'${A:-'.repeat(n)}x${'}'.repeat(n)}\nFROM x`),
  fc.nat({ max: 5000 }).map((n) => `FROM ${'$A'.repeat(n)}`),
  fc.nat({ max: 2000 }).map((n) => `FROM ${'a'.repeat(n)}/${'b-'.repeat(n)}c:${'1'.repeat(n)}`),
  fc.nat({ max: 2000 }).map((n) => 'FROM x AS s\n'.repeat(n)),
);

const buildArgs = fc.dictionary(
  fc.oneof(fc.constantFrom('A', 'B', 'REGISTRY', '__proto__', 'constructor', 'toString'), nastyString),
  nastyString.map((s) => s.slice(0, 500)),
  { maxKeys: 4 },
);

describe('scan (fuzzed)', () => {
  const check = (input: unknown) =>
    refusesCleanly(input, () => {
      const { text, args, target } =
        typeof input === 'string'
          ? { text: input, args: {}, target: undefined }
          : (input as { text: string; args: Record<string, string>; target: string | undefined });
      return scanDockerfile(text, { buildArgs: args, target });
    }, [RefitError]);

  describe('scanDockerfile', () => {
    itReplaysCorpus('dockerfile', 'scanDockerfile', check);

    it('finds the base images or refuses with a ValidationError for mutated real Dockerfiles, any build args and target', async () => {
      const input = fc.record({
        text: mutatedText(
          corpus('dockerfile').map((c) => c.input as string),
          dockerfileSnippet,
        ),
        args: buildArgs,
        target: fc.option(
          fc.oneof(fc.constantFrom('build', 'final', 'base', 'FINAL', '0', '__proto__'), nastyString),
          {
            nil: undefined,
          },
        ),
      });
      await fc.assert(
        fc.asyncProperty(input, async (i) => {
          await check(i);
        }),
        params('scanDockerfile', 150),
      );
    });

    it('finds the base images or refuses with a ValidationError for any text', async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.string({ maxLength: 2000 }), dockerfileSnippet), async (text) => {
          await check(text);
        }),
        params('scanDockerfile (any text)', 100),
      );
    });
  });
});
