/**
 * A token bucket for joins of rooms a connection is not in yet. Every such join may create a room
 * in the store, so this bounds how fast one connection can make the room list grow (issue 21).
 * Pure: the caller passes the clock.
 */
export class JoinBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  /** Take a token; otherwise the seconds (one decimal, at least 0.1) until one is there. */
  take(now: number): true | number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return Math.max(0.1, Math.ceil(((1 - this.tokens) / this.perSecond) * 10) / 10);
  }
}
