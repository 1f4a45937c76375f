import { setValue } from '../../../src/cli/args';
import { CliError } from '../../../src/cli/client';
import { cmdTaskFile } from '../../../src/cli/run-command';
import { parseRenderedTask } from '../../../src/acb/task-file';

describe('--set parsing (acb TestParseValues, az for a bare name)', () => {
  it.each([
    ['a=b', { name: 'a', value: 'b' }],
    ['b===ll', { name: 'b', value: '==ll' }],
    ['d=ab=', { name: 'd', value: 'ab=' }],
    ['e=', { name: 'e', value: '' }],
    ['c=12345', { name: 'c', value: '12345' }],
    ['a.b=1', { name: 'a.b', value: '1' }],
    ['apple', { name: 'apple', value: '' }],
  ])('%s', (entry, expected) => {
    expect(setValue(entry, '--set')).toEqual(expected);
  });

  it.each(['=k', '=', ''])('refuses %p', (entry) => {
    expect(() => setValue(entry, '--set')).toThrow(CliError);
  });
});

describe('--cmd', () => {
  it('becomes one cmd step with no working-directory override, as az acr run --cmd', () => {
    const task = parseRenderedTask(cmdTaskFile('myimage echo "a: b" \'c\'', 600));
    expect(task.steps).toHaveLength(1);
    expect(task.steps[0]).toMatchObject({
      cmd: 'myimage echo "a: b" \'c\'',
      disableWorkingDirectoryOverride: true,
      timeout: 600,
    });
  });
});
