// Property-based tests of acb task files: the loader (YAML, version, aliases, the Go-template subset, validation)
// and the values file. Whatever the file, it loads or fails with an AcbError naming what is wrong (a TemplateError
// from the template alone), never a TypeError, RangeError or stack overflow, and never hangs.
import fc from 'fast-check';
import { AcbError } from '../../../src/acb/errors';
import { loadTaskFile } from '../../../src/acb/task-file';
import { renderTemplate, TemplateError, type TemplateData } from '../../../src/acb/template';
import { parseValuesFile, templateData } from '../../../src/runs/task-file-run';
import {
  corpus,
  itReplaysCorpus,
  mutatedText,
  nastyString,
  params,
  printCounts,
  refusesCleanly,
} from '../../support/fuzz';

afterAll(() => printCounts('task-files'));

const facts = {
  runId: 'cf12',
  registry: '127.0.0.1:5000',
  date: new Date('2026-11-29T10:00:00Z'),
  platform: { os: 'Linux' as const, architecture: 'amd64' as const },
  sharedVolume: '/workspace',
};

/** Template actions and YAML that have broken loaders: prototype keys, bad escapes, aliases, anchors, tags. */
const acbSnippet: fc.Arbitrary<string> = fc.oneof(
  nastyString.map((s) => s.slice(0, 2000)),
  fc.constantFrom(
    '{{ .Values.constructor }}',
    '{{ .Values.__proto__ }}',
    '{{ .Values.toString }}',
    '{{ .Secrets.hasOwnProperty }}',
    '{{ .Run.constructor.name }}',
    '{{ "\\x41" }}',
    '{{ "\\u12" }}',
    '{{ `raw` | upper }}',
    '{{ toJson .Values }}',
    '{{ toJson . }}',
    '{{ b64dec "!!!" }}',
    '{{ default }}',
    '{{ upper }}',
    '{{ replace "a" }}',
    '{{ trimSuffix "" .Run.ID }}',
    '{{ .Run.ID | default "x" | quote | squote }}',
    '{{ 1e400 }}',
    '{{ -1 }}',
    '{{ nil | print }}',
    '{{ if .Run.ID }}x{{ end }}',
    '{{- -}}',
    '{{}}',
    '{{ | }}',
    '{{ " }}',
    '}}{{',
    '$ID$$Registry$',
    '$',
    'alias:',
    '  values:',
    '    __proto__: x',
    '    constructor: y',
    '  src: [a.yaml]',
    '  directive: "&"',
    '  directive: "💥"',
    'a: &a [*a]',
    'b: &b\n  c: *b',
    '<<: *nope',
    'x: !!binary aGk=',
    'x: !!js/function "() => 1"',
    'x: !!timestamp 2001-12-14',
    'version: v1.1.0',
    'version: 1.0-preview-1',
    'version: {a: 1}',
    'steps: {}',
    'steps: [[]]',
    '  - id: acb_root',
    '  - id: a b',
    '    when: [later]',
    '    when: ["-", x]',
    '    timeout: 1e99',
    '    retries: -1',
    '    timeout: 99999999999999999999999',
    '    cmd: {a: 1}',
    '    push: {a: 1}',
    '    volumeMounts: [{name: v, mountPath: /x}]',
    '    env: [{a: 1}]',
    'env: ["nope"]',
    'secrets: [{id: "a b"}]',
    'volumes: [{name: v, secret: {"../x": y}}]',
    '%YAML 1.1',
    '---',
    '...',
    '? [a, b]\n: c',
  ),
  fc.nat({ max: 5000 }).map((n) => `${'  '.repeat(n)}- x`),
  fc.nat({ max: 1000 }).map((n) => `x: ${'['.repeat(n)}${']'.repeat(n)}`),
  fc.nat({ max: 1000 }).map((n) => `${'- '.repeat(n)}x`),
  // Malformed flow maps: slow in the yaml library (see src/acb/yaml-size.ts), so kept well under the 64 KiB cap.
  fc.nat({ max: 1500 }).map((n) => `cmd: ${'{{ "a" }}'.repeat(n)}`),
);

const valuesYaml: fc.Arbitrary<string> = mutatedText(
  ['tag: v1\nname: app-x\nnested:\n  a: 1\n  b: [1, 2]\n', 'constructor: 1\n__proto__: {polluted: true}\n'],
  acbSnippet,
);

const valueName = fc.oneof(
  fc.constantFrom('tag', 'name', '__proto__', 'constructor', 'toString', 'nested'),
  nastyString.map((s) => s.slice(0, 50) || 'x'),
);

const loadInput = fc.record({
  text: mutatedText(
    corpus('acb')
      .map((c) => c.input)
      .filter((t): t is string => typeof t === 'string'),
    acbSnippet,
  ),
  values: fc.array(fc.record({ name: valueName, value: nastyString.map((s) => s.slice(0, 500)) }), {
    maxLength: 4,
  }),
  valuesFile: fc.option(valuesYaml),
  alias: fc.option(valuesYaml),
});
type LoadInput = typeof loadInput extends fc.Arbitrary<infer T> ? T : never;

/** Loads a task file as a run does: the values file, the set values, the secrets, alias files from the source. */
function load(input: LoadInput) {
  return refusesCleanly(input, async () => {
    const valuesFile = input.valuesFile ? parseValuesFile(input.valuesFile, 'values.yaml') : {};
    const secrets = Object.fromEntries(input.values.map((v) => [v.name, v.value]));
    return loadTaskFile(input.text, {
      data: templateData(facts, input.values, valuesFile, secrets),
      readAliasSource: async () => input.alias ?? '',
    });
  }, [AcbError]);
}

describe('task-file (fuzzed)', () => {
  describe('loadTaskFile', () => {
    itReplaysCorpus('acb', 'loadTaskFile', (input) =>
      typeof input === 'string'
        ? load({ text: input, values: [{ name: 'tag', value: 'v1' }], valuesFile: null, alias: null })
        : load(input as LoadInput),
    );

    it('loads or refuses with an AcbError for mutated real task files, values files, set values and alias files', async () => {
      await fc.assert(
        fc.asyncProperty(loadInput, async (input) => {
          await load(input);
        }),
        params('loadTaskFile', 150),
      );
    });

    it('loads or refuses with an AcbError for any text', async () => {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.string({ maxLength: 2000 }), acbSnippet), async (text) => {
          await load({ text, values: [], valuesFile: null, alias: null });
        }),
        params('loadTaskFile (any text)', 150),
      );
    });
  });
});

describe('template (fuzzed)', () => {
  const data: TemplateData = {
    Run: { ID: 'cf12', Registry: '127.0.0.1:5000' },
    Values: JSON.parse('{"tag":"v1","nested":{"a":[1,{"b":null}]},"__proto__":{"x":1}}') as Record<
      string,
      unknown
    >,
    Secrets: { s: 'secret' },
  };
  const check = (template: unknown) =>
    refusesCleanly(template, () => renderTemplate(template as string, data), [TemplateError]);

  describe('renderTemplate', () => {
    itReplaysCorpus('template', 'renderTemplate', check);

    it('renders or refuses with a TemplateError for any action made of the subset’s words', async () => {
      const word = fc.oneof(
        fc.constantFrom(
          '.Run.ID',
          '.Values',
          '.Values.tag',
          '.Values.nested.a',
          '.Values.constructor',
          '.Values.__proto__',
          '.Values.__proto__.x',
          '.Secrets.toString',
          '.',
          '..',
          '.Build.ID',
          'upper',
          'lower',
          'title',
          'trim',
          'trimPrefix',
          'trimSuffix',
          'replace',
          'quote',
          'squote',
          'b64enc',
          'b64dec',
          'default',
          'print',
          'toJson',
          'if',
          'end',
          'nil',
          'true',
          '|',
          '-',
          '"x"',
          '"\\q"',
          '`raw`',
          '1',
          '-1.5',
          '1e400',
          '(',
          ')',
        ),
        nastyString.map((s) => s.slice(0, 100)),
      );
      const action = fc.array(word, { maxLength: 6 }).map((ws) => `{{${ws.join(' ')}}}`);
      const template = fc
        .array(fc.oneof(action, fc.string({ maxLength: 10 })), { maxLength: 6 })
        .map((p) => p.join(''));
      await fc.assert(
        fc.asyncProperty(template, async (t) => {
          await check(t);
        }),
        params('renderTemplate', 500),
      );
    });
  });
});
