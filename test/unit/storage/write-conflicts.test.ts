import { ConflictError } from '../../../src/errors';
import { retryOnConflict } from '../../../src/storage/write-conflicts';

/** An error as the tables SDK throws it when the service answered with `status`. */
const answered = (status: number): Error =>
  Object.assign(new Error(`status ${status}`), { statusCode: status });

describe('write-conflicts', () => {
  describe('retryOnConflict', () => {
    it('tries a write that lost the race again until it wins', async () => {
      let attempts = 0;
      const result = await retryOnConflict('thing', async () => {
        attempts++;
        if (attempts < 4) throw answered(attempts % 2 ? 412 : 409);
        return 'written';
      });
      expect(result).toBe('written');
      expect(attempts).toBe(4);
    });

    it('gives up after a bounded number of tries with a ConflictError naming what kept changing', async () => {
      let attempts = 0;
      const write = retryOnConflict("run 'cf1'", async () => {
        attempts++;
        throw answered(412);
      });
      await expect(write).rejects.toBeInstanceOf(ConflictError);
      await expect(write).rejects.toThrow("run 'cf1' kept changing while it was being written");
      expect(attempts).toBe(13);
    });

    it('ends at once on any other error, with that error', async () => {
      let attempts = 0;
      const unavailable = answered(503);
      await expect(
        retryOnConflict('thing', async () => {
          attempts++;
          throw unavailable;
        }),
      ).rejects.toBe(unavailable);
      expect(attempts).toBe(1);
    });
  });
});
