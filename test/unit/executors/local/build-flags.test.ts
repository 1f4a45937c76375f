import { AcbError } from '../../../../src/acb/errors';
import { parseBuildCommand } from '../../../../src/acb/command-line';
import { checkBuildFlags } from '../../../../src/executors/local/build-flags';

describe('build-flags', () => {
  describe('checkBuildFlags', () => {
    const check = (line: string): void => checkBuildFlags(parseBuildCommand(line, {}).flags);

    it('accepts the usual docker build flags', () => {
      expect(() =>
        check(
          '-t a:1 --tag=b -f D --build-arg X=1 --target t --platform linux/amd64 --label l=1 --no-cache --pull .',
        ),
      ).not.toThrow();
    });

    it.each([
      ['-v /:/host .', '-v'],
      ['--volume=/:/host .', '--volume'],
      ['--secret id=k,src=/etc/shadow .', '--secret'],
      ['--build-context host=/ .', '--build-context'],
      ['-o type=local,dest=/ .', '-o'],
      ['--output=type=local,dest=/ .', '--output'],
      ['--iidfile /etc/cron.d/x .', '--iidfile'],
      ['--ssh default .', '--ssh'],
      ['--network ns:/proc/1/ns/net .', '--network'],
      ['--isolation oci .', '--isolation'],
      ['-qv /:/host .', '-qv'],
    ])('refuses a flag that reaches this machine (%s)', (line, flag) => {
      expect(() => check(line)).toThrow(AcbError);
      expect(() => check(line)).toThrow(`the flag '${flag}' is not allowed`);
    });
  });
});
