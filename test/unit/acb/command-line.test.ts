import { parseBuildCommand } from '../../../src/acb/command-line';

describe('command-line', () => {
  describe('parseBuildCommand', () => {
    it("resolves a value-less --build-arg from the build's environment, never from Refit's own", () => {
      process.env.REFIT_TEST_SERVER_SETTING = 'server-only';
      try {
        const command = parseBuildCommand(
          '--build-arg REFIT_TEST_SERVER_SETTING --build-arg LANG --build-arg=GIVEN=1 .',
          { LANG: 'C.UTF-8' },
        );
        expect(command.buildArgs).toEqual({ REFIT_TEST_SERVER_SETTING: '', LANG: 'C.UTF-8', GIVEN: '1' });
      } finally {
        delete process.env.REFIT_TEST_SERVER_SETTING;
      }
    });

    it('says which words hold the build arguments', () => {
      const command = parseBuildCommand('-t a --build-arg X=1 --build-arg=Y=2 -f D .', {});
      expect(command.buildArgIndices.map((i) => command.words[i])).toEqual(['X=1', '--build-arg=Y=2']);
    });
  });
});
