/** Azurite's ports: blob, queue and table. */
export interface AzuritePorts {
  readonly blob: number;
  readonly queue: number;
  readonly table: number;
}

/** The arguments that run Azurite (with node) on `host` and `ports`, its files in `location`. */
export function azuriteArgs(location: string, host: string, ports: AzuritePorts): string[] {
  return [
    require.resolve('azurite/dist/src/azurite.js'),
    '--location',
    location,
    '--skipApiVersionCheck',
    '--disableTelemetry',
    '--loose',
    '--blobHost',
    host,
    '--blobPort',
    String(ports.blob),
    '--queueHost',
    host,
    '--queuePort',
    String(ports.queue),
    '--tableHost',
    host,
    '--tablePort',
    String(ports.table),
  ];
}
