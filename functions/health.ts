import { health } from '../src/health';
import { api, json } from './http';

/** GET /health: each part's state; 503 when any is down. */
export const getHealth = api(async (_request, r) => {
  const report = await health(r);
  return json(report.status === 'ok' ? 200 : 503, report);
});
