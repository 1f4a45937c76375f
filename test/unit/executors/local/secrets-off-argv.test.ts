import { AcbError } from '../../../../src/acb/errors';
import { parseBuildCommand } from '../../../../src/acb/command-line';
import {
  buildArgsOffArgv,
  dockerBuildArgs,
  stepEnvOffArgv,
} from '../../../../src/executors/local/secrets-off-argv';

describe('secrets-off-argv', () => {
  describe('buildArgsOffArgv', () => {
    const off = (line: string, secrets: string[]): ReturnType<typeof buildArgsOffArgv> => {
      const command = parseBuildCommand(line, {});
      return buildArgsOffArgv(command.words, command.buildArgIndices, secrets);
    };

    it('passes a build argument holding a secret by name, its value in the environment', () => {
      expect(off('-t app:1 --build-arg TOKEN=s3cr3t --build-arg PLAIN=1 .', ['s3cr3t'])).toEqual({
        words: ['-t', 'app:1', '--build-arg', 'TOKEN', '--build-arg', 'PLAIN=1', '.'],
        env: { TOKEN: 's3cr3t' },
      });
    });

    it('does the same for the --build-arg=NAME=VALUE form and a secret inside a longer value', () => {
      expect(off('--build-arg=URL=https://u:s3cr3t@host/x .', ['s3cr3t'])).toEqual({
        words: ['--build-arg=URL', '.'],
        env: { URL: 'https://u:s3cr3t@host/x' },
      });
    });

    it('leaves plain and value-less arguments, and words that only look like one, as they are', () => {
      const line = '--build-arg A=1 --build-arg B -t s3cr3t --label l=s3cr3t .';
      expect(off(line, ['s3cr3t'])).toEqual({ words: parseBuildCommand(line, {}).words, env: {} });
    });

    it('ignores empty secrets', () => {
      expect(off('--build-arg A=1 .', ['']).env).toEqual({});
    });

    it.each(['PATH', 'HOME', 'LD_PRELOAD', 'CONTAINERS_REGISTRIES_CONF', 'HTTPS_PROXY', 'GODEBUG'])(
      'refuses a secret under a name buildah reads itself (%s)',
      (name) => {
        expect(() => off(`--build-arg ${name}=s3cr3t .`, ['s3cr3t'])).toThrow(AcbError);
        expect(() => off(`--build-arg ${name}=s3cr3t .`, ['s3cr3t'])).toThrow(`'${name}'`);
      },
    );
  });

  describe('dockerBuildArgs', () => {
    it('puts secret arguments on the command line by name only', () => {
      const args = [
        { name: 'A', isSecret: false },
        { name: 'TOKEN', isSecret: true },
      ];
      expect(dockerBuildArgs(args, { A: '1', TOKEN: 's3cr3t' })).toEqual({
        words: ['--build-arg', 'A=1', '--build-arg', 'TOKEN'],
        env: { TOKEN: 's3cr3t' },
      });
    });

    it('refuses a secret argument named like a variable buildah reads', () => {
      expect(() => dockerBuildArgs([{ name: 'PATH', isSecret: true }], { PATH: 'x' })).toThrow(AcbError);
    });
  });

  describe('stepEnvOffArgv', () => {
    it('splits the variables holding a secret from the plain ones', () => {
      expect(stepEnvOffArgv(['A=1', 'TOKEN=s3cr3t', 'AUTH=Bearer s3cr3t', 'EMPTY='], ['s3cr3t'])).toEqual({
        plain: ['A=1', 'EMPTY='],
        secret: { TOKEN: 's3cr3t', AUTH: 'Bearer s3cr3t' },
      });
    });
  });
});
