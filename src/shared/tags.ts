/**
 * Worker tags (issue 15, item 3): a job's required tags and a worker's declared ones, in one
 * canonical form (sorted, unique, joined by ','; '' for none) so a set is one index key.
 * A job matches a worker when every tag it requires is among the worker's.
 */
import { WORKER_TAGS } from "./limits";

/** Why a list of tags is refused, or null. `what`: "tags" or "requests[3].tags". */
export function tagsRefusal(tags: readonly string[], max: number, what: string): string | null {
  if (tags.length > max) return `${what}: at most ${max} tags, got ${tags.length}`;
  for (const t of tags) {
    if (!WORKER_TAGS.pattern.test(t)) {
      return `${what}: '${t.slice(0, 80)}' is not a valid tag: use 1-${WORKER_TAGS.chars} letters, digits, '_', '-', '.', ':' or '/', starting with a letter or digit`;
    }
  }
  return null;
}

/** The canonical form of a tag set ('' for none). */
export function tagKey(tags: readonly string[] | null | undefined): string {
  if (!tags || tags.length === 0) return "";
  return [...new Set(tags)].sort().join(",");
}

/** The tags of a canonical key. */
export function tagsOf(key: string): string[] {
  return key === "" ? [] : key.split(",");
}

/** Does a worker with tags `have` (a canonical key) match a job requiring `need` (a canonical key)? */
export function tagsMatch(need: string, have: string): boolean {
  if (need === "") return true;
  if (have === "") return false;
  const own = new Set(tagsOf(have));
  return tagsOf(need).every((t) => own.has(t));
}
