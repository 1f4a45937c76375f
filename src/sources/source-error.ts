/** A source that could not be fetched; its message becomes the run's runErrorMessage. */
export class SourceError extends Error {}
