import { renderTemplate, TemplateError } from '../../../src/acb/template';

const data = {
  Run: {
    ID: 'cf12',
    Commit: 'ABCDEF',
    Registry: 'foo-bar.azurecr-test.io',
    RegistryName: 'foo-bar',
    Branch: 'main',
  },
  Values: { born: 1867, name: 'Marie Curie', nested: { deep: 'yes' }, empty: '' },
  Secrets: { pw: 's3cret' },
};

describe('templates', () => {
  it.each([
    ['{{.Run.ID}}', 'cf12'],
    ['{{ .Run.ID | upper }}', 'CF12'],
    ['{{.Run.Commit | lower}}', 'abcdef'],
    ['{{ upper .Run.ID }}', 'CF12'],
    ['{{.Values.name}} {{.Values.born}}', 'Marie Curie 1867'],
    ['{{.Values.nested.deep}}', 'yes'],
    ['{{.Values.missing}}', ''],
    ['{{.Run.Tag}}', ''],
    ['{{.Values.empty | default "x"}}', 'x'],
    ['{{.Values.name | default "x"}}', 'Marie Curie'],
    ['{{ "hello" | b64enc }}', 'aGVsbG8='],
    ['{{ .Values.name | quote }}', '"Marie Curie"'],
    ['{{ .Values.name | replace " " "-" | lower }}', 'marie-curie'],
    ['{{.Build.ID}}', 'cf12'],
    ['{{.Secrets.pw}}', 's3cret'],
    ['a {{- " b " -}} c', 'a b c'],
    ['x{{/* a comment */}}y', 'xy'],
    ['{{.Run.RegistryName}}', 'foo-bar'],
  ])('%s → %p', (template, expected) => {
    expect(renderTemplate(template, data)).toBe(expected);
  });

  it.each([
    ['{{ if .Values.x }}y{{ end }}', /'\{\{ if \}\}' actions are not supported/],
    ['{{ nope .Run.ID }}', /unknown function 'nope'/],
    ['line\n{{ .Run.ID ', /line 2: '\{\{' is never closed/],
    ['{{ }}', /empty action/],
  ])('%s fails clearly', (template, message) => {
    expect(() => renderTemplate(template, data)).toThrow(TemplateError);
    expect(() => renderTemplate(template, data)).toThrow(message);
  });
});
