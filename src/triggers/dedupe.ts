import { Claims, type ClaimsOptions } from '../storage/claims';
import { names, type Storage } from '../storage/storage';

/**
 * The triggers' claims on the events they handle (an image update per task, a delivery per task, a timer occurrence):
 * claim, queue the run, confirm. A redelivery finds the claim done; a failure before the run was queued releases it
 * for the retry; a holder that died leaves a lease that runs out.
 */
export class Dedupe extends Claims {
  constructor(storage: Storage, options: ClaimsOptions = {}) {
    super(storage.table(names.tables.dedupe), options);
  }
}
