import { renderRunTemplate, runDate } from '../../../src/runs/render';

describe('render', () => {
  describe('runDate', () => {
    it("uses acb's layout yyyyMMdd-HHmmssz", () => {
      expect(runDate(new Date('2026-11-23T02:30:05.123Z'))).toBe('20261123-023005z');
    });
  });

  describe('renderRunTemplate', () => {
    const data = { ID: 'aa7', Registry: 'myreg.azurecr.io', Date: '20261123-023005z' };
    it.each([
      ['hello:{{.Run.ID}}', 'hello:aa7'],
      ['{{.Run.Registry}}/hello:{{ .Run.ID }}', 'myreg.azurecr.io/hello:aa7'],
      ['{{.Run.RegistryName}}-x', 'myreg-x'],
      ['hello:{{.Run.Date}}', 'hello:20261123-023005z'],
      ['hello:{{.Build.ID}}', 'hello:aa7'],
      ['hello:{{.Run.Nope}}x', 'hello:x'],
      ['plain:tag', 'plain:tag'],
    ])('renders %j', (text, out) => {
      expect(renderRunTemplate(text, data)).toBe(out);
    });
  });
});
