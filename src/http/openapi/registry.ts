/**
 * The operations the app serves, as `route()` registers them (per isolate: the app is built
 * once, and building it again registers the same operations).
 */
import type { OperationDoc } from "./operation";

export interface RegisteredOperation {
  method: string;
  /** The route as Hono spells it (`/v2/:ep/status/:id`). */
  path: string;
  doc: OperationDoc;
}

const operations = new Map<string, RegisteredOperation>();

export function register(method: string, path: string, doc: OperationDoc): void {
  operations.set(`${method} ${path}`, { method, path, doc });
}

export function registeredOperations(): RegisteredOperation[] {
  return [...operations.values()];
}
