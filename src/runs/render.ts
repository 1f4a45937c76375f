/** What `{{.Run.*}}` renders to in image names and arguments. */
export interface RunTemplateData {
  readonly ID: string;
  readonly Registry: string;
  readonly Date: string;
}

/** `20261123-023000z`: the layout of `{{.Run.Date}}` (Go's `20060102-150405z`). */
export function runDate(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}z`;
}

const RUN_FIELD = /\{\{\s*\.(?:Run|Build)\.([A-Za-z]+)\s*\}\}/g;

/**
 * Renders the `{{.Run.ID}}`, `{{.Run.Registry}}`, `{{.Run.RegistryName}}` and `{{.Run.Date}}` of a quick build's
 * image names (`{{.Build.ID}}`, the legacy spelling, too). Unknown fields render empty, as in acb.
 */
export function renderRunTemplate(text: string, data: RunTemplateData): string {
  return text.replace(RUN_FIELD, (_, field: string) => {
    switch (field) {
      case 'ID':
        return data.ID;
      case 'Registry':
        return data.Registry;
      case 'RegistryName':
        return data.Registry.split('.')[0] ?? '';
      case 'Date':
        return data.Date;
      default:
        return '';
    }
  });
}
