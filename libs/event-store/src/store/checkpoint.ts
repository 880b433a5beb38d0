// A place in the global log: (transaction id, position), compared in that order. xid8 and bigint
// travel as decimal strings so nothing is rounded through a JS number.

export interface GlobalCheckpoint {
  /** xid8 of the transaction that wrote the event. */
  transactionId: string;
  /** global_position of the event. */
  position: string;
}

/** Before the first event. */
export const BEGINNING: GlobalCheckpoint = Object.freeze({ transactionId: '0', position: '0' });

const DECIMAL = /^(0|[1-9]\d*)$/;

export function checkpoint(transactionId: string, position: string): GlobalCheckpoint {
  if (!DECIMAL.test(transactionId) || !DECIMAL.test(position)) {
    throw new RangeError(`not a checkpoint: (${transactionId}, ${position})`);
  }
  return { transactionId, position };
}

export function compareCheckpoints(a: GlobalCheckpoint, b: GlobalCheckpoint): -1 | 0 | 1 {
  const tx = BigInt(a.transactionId) - BigInt(b.transactionId);
  if (tx !== 0n) return tx < 0n ? -1 : 1;
  const pos = BigInt(a.position) - BigInt(b.position);
  return pos === 0n ? 0 : pos < 0n ? -1 : 1;
}
