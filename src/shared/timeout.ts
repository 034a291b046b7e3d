/**
 * Runs `work` with an AbortSignal that fires after `ms`, and clears the timer as soon as the work
 * settles (AbortSignal.timeout would leave it pending, keeping the object busy until it fires).
 */
export async function withTimeout<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${ms} ms`, "TimeoutError")), ms);
  try {
    return await work(controller.signal);
  } finally {
    clearTimeout(timer);
  }
}
