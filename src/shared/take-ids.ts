/**
 * A take's id (one job-take call at the edge): when the take reached the edge, then a random part.
 * Its claims carry it to the worker's liveness object (HoldTell.takeId), which reads the time back
 * to order two takes of one worker: a take saying the worker runs nothing releases only jobs
 * claimed by takes that started before it (LivenessObject.taking). Both times are read at the
 * edge, so the comparison never mixes the edge's clock with an object's.
 */
export function newTakeId(startedAt: number): string {
  return `${Math.max(0, Math.floor(startedAt)).toString(36)}.${crypto.randomUUID()}`;
}

/** When the take `takeId` started (epoch ms), or null for an id without a time (older ids: plain UUIDs). */
export function takeStartOf(takeId: string | null): number | null {
  const m = takeId === null ? null : /^([0-9a-z]{1,11})\.[0-9a-f-]{36}$/.exec(takeId);
  return m ? parseInt(m[1]!, 36) : null;
}
