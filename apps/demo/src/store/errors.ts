/** Errors every store raises; each has a stable `code` (the README lists them). */

/** An operation on a store that is not open yet or already closed. */
export class StoreClosedError extends Error {
  readonly code = 'ERR_STORE_CLOSED';
  constructor() {
    super('the message store is closed');
    this.name = 'StoreClosedError';
  }
}

/**
 * The store is unreachable right now (e.g. Redis restarting) and gave up after a bounded wait.
 * Retryable: the operation was not acknowledged; retry it later (with the same clientId for an
 * append, so a write that landed despite the error is not stored twice).
 */
export class StoreUnavailableError extends Error {
  readonly code: string = 'ERR_STORE_UNAVAILABLE';
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * The store gave up waiting for the answer to a write it had already sent: the write may have
 * happened or not. Retryable like StoreUnavailableError, but a client must not be told "not
 * stored": it resends with the same clientId and gets the first id if the write did land.
 */
export class StoreOutcomeUnknownError extends StoreUnavailableError {
  override readonly code: string = 'ERR_STORE_OUTCOME_UNKNOWN';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreOutcomeUnknownError';
  }
}

/**
 * The store refused to create another room (too many live rooms, or rooms created too fast
 * across all nodes). Nothing was changed; joining an existing room still works.
 */
export class StoreLimitError extends Error {
  readonly code = 'ERR_STORE_ROOM_LIMIT';
  constructor(message: string) {
    super(message);
    this.name = 'StoreLimitError';
  }
}

/** A private room limit (`maxPrivateRooms`, `maxMembers`) is reached: nothing was changed. */
export class RoomAclLimitError extends Error {
  readonly code = 'ERR_STORE_ACL_LIMIT';
  constructor(message: string) {
    super(message);
    this.name = 'RoomAclLimitError';
  }
}

/** `<dataDir>/rooms.json` cannot be read: the server does not start rather than open private rooms to all. */
export class RoomAclFileError extends Error {
  readonly code = 'ERR_ROOM_ACL_FILE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RoomAclFileError';
  }
}
