/** A task file that cannot run: the message names the step or the value at fault (acb's wording where it has one). */
export class AcbError extends Error {}
