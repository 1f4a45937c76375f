import { closeEmptyTargetStage, EMPTY_STAGE_ARG } from '../../../src/dockerfile/empty-stage';

describe('dockerfile/empty-stage', () => {
  describe('closeEmptyTargetStage', () => {
    it('closes a last stage that is only a FROM', () => {
      expect(closeEmptyTargetStage('FROM base:1\n')).toBe(`FROM base:1\n${EMPTY_STAGE_ARG}\n`);
    });

    it('closes the target stage right after its FROM, continuation lines included', () => {
      const text = 'ARG V=1\nFROM \\\n  base:$V AS app\nFROM scratch AS other\nCOPY --from=app / /\n';
      expect(closeEmptyTargetStage(text, 'APP')).toBe(
        `ARG V=1\nFROM \\\n  base:$V AS app\n${EMPTY_STAGE_ARG}\nFROM scratch AS other\nCOPY --from=app / /\n`,
      );
    });

    it.each([
      ['a stage with an instruction', 'FROM base:1\nRUN true\n', undefined],
      ['a target stage with an instruction', 'FROM base:1 AS app\nENV A=1\nFROM base:1\n', 'app'],
      ['an unknown target', 'FROM base:1\n', 'nope'],
    ])('leaves %s alone', (_name, text, target) => {
      expect(closeEmptyTargetStage(text, target)).toBeNull();
    });
  });
});
