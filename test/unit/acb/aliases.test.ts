import { loadTaskFile } from '../../../src/acb/task-file';
import {
  expandAliases,
  mergeAliases,
  parseAliasBlock,
  parseAliasFile,
  separateAliases,
} from '../../../src/acb/aliases';
import { AcbError } from '../../../src/acb/errors';

describe('aliases (acb preprocessor cases)', () => {
  it('TestProcessString: known aliases expand, unknown ones stay', () => {
    const aliases = mergeAliases({ reg: '{{.Run.Registry}}' }, []);
    expect(expandAliases('-t $reg/$repo:$ID', aliases)).toBe('-t {{.Run.Registry}}/$repo:{{.Run.ID}}');
    expect(expandAliases('{{$foo}}', { foo: '.Values.bar' })).toBe('{{.Values.bar}}');
  });

  it('escapes a doubled directive and chains adjacent aliases', () => {
    expect(expandAliases('$$x $a$b $ID2', { a: '1', b: '2', ID: 'no' })).toBe('$x 12 $ID2');
  });

  it('takes a unicode directive (Chaining Directive Unicode)', () => {
    const self = Object.fromEntries([...'abcdefghijklmnopqrstuvwxyz'].map((c) => [c, c]));
    expect(expandAliases('🐳i🐳d', self, '🐳')).toBe('id');
  });

  it('leaves text unchanged when aliases are defined but unused (Alias No Use)', () => {
    expect(expandAliases('steps:\n- cmd: echo hi', { a: 'x' })).toBe('steps:\n- cmd: echo hi');
  });

  it('ranks inline values over src files (later over earlier) over the defaults', () => {
    const merged = mergeAliases({ a: 'inline' }, [{ a: 'f1', b: 'f1', c: 'f1' }, { b: 'f2' }], {
      c: 'g',
      ID: 'g',
    });
    expect(merged).toEqual({ a: 'inline', b: 'f2', c: 'f1', ID: 'g' });
  });

  it('refuses non-alphanumeric keys and bad directives', () => {
    expect(() => mergeAliases({ 'a-b': 'x' }, [])).toThrow(
      'alias key names only support alphanumeric characters',
    );
    expect(() => parseAliasBlock('alias:\n  directive: "ab"\n')).toThrow(
      'can only be overwritten by a single character',
    );
    expect(() => parseAliasBlock('alias:\n  directive: "a"\n')).toThrow('may not be alphanumeric characters');
  });

  it('loads an empty alias file and refuses a malformed one', () => {
    expect(parseAliasFile('', 'empty.yaml')).toEqual({});
    expect(() => parseAliasFile('just a string\nanother', 'bad.yaml')).toThrow(AcbError);
    expect(() => parseAliasFile('a: 1\na: 2\n', 'dup.yaml')).toThrow(/dup.yaml/);
  });

  it('cuts the alias block out up to the next top-level key', () => {
    const { block, rest } = separateAliases(
      'version: v1.1.0\nalias:\n  values:\n    a: b\nsteps:\n- cmd: x\n',
    );
    expect(block).toBe('alias:\n  values:\n    a: b');
    expect(rest).toBe('version: v1.1.0\nsteps:\n- cmd: x\n');
  });

  it('expands a whole step body kept in an alias (Multiline Alias)', async () => {
    const file = [
      'version: v1.1.0',
      'alias:',
      '  values:',
      '    greet: |',
      '      cmd: hello-world',
      '          env: [A=1]',
      'steps:',
      '  - $greet',
      '',
    ].join('\n');
    const task = await loadTaskFile(file, { data: { Run: {}, Values: {} } });
    expect(task.steps[0]).toMatchObject({ cmd: 'hello-world', env: ['A=1'] });
  });
});
