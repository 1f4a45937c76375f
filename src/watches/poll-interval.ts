import type { PollingSettings } from '../config';

/**
 * The delay before a reference is checked again: uniform in [min, max] seconds, drawn per reference, so that
 * references watched since the same moment spread over the window instead of hitting a registry together.
 */
export function pollDelayMs(
  settings: Pick<PollingSettings, 'intervalMinSeconds' | 'intervalMaxSeconds'>,
  random: () => number = Math.random,
): number {
  const { intervalMinSeconds: min, intervalMaxSeconds: max } = settings;
  return Math.round((min + random() * (max - min)) * 1000);
}
