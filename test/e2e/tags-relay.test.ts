/**
 * Issue 15, item 3, found from outside: with long polls (20 s here; 30 s in production), a GPU
 * worker parked on a shard beside plain workers missed the GPU jobs' hints for a whole poll, the
 * shard's one forwarded poll to the endpoint object naming only the plain workers. The outsider's
 * setup, the same worker ids (so the same home shards): 5 plain workers and one GPU worker poll on
 * the default 8 shards while 40 GPU jobs and one plain job arrive; every GPU job must reach the GPU
 * worker within seconds, not polls.
 */
import { describe, expect, it } from "vitest";
import { api, endpointWithKeys, eventually } from "./api";
import { useServer } from "./harness";

const server = useServer({ TAKE_WAIT_MS: "20000" });

/** A worker loop: long-polls job-take (with `tags`), completes each job at once; runs until `stop` aborts. */
async function loop(ep: string, key: string, id: string, tags: string, stop: AbortSignal, got: string[]): Promise<void> {
  const q = tags ? `&tags=${tags}` : "";
  while (!stop.aborted) {
    let res: Response;
    try {
      res = await fetch(`${server.base}/v2/${ep}/job-take/${id}?gpu=none&job_in_progress=0${q}`, { headers: { authorization: key }, signal: stop });
    } catch {
      return; // aborted
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      continue;
    }
    const job = (await res.json()) as { id: string };
    got.push(job.id);
    await fetch(`${server.base}/v2/${ep}/job-done/${id}/${job.id}?gpu=none`, { method: "POST", headers: { authorization: key }, body: JSON.stringify({ output: { by: id } }) });
  }
}

describe("worker tags between shards, 20 s polls", () => {
  it("a GPU worker parked beside 5 plain workers gets 40 GPU jobs within seconds (the outsider's worker ids)", async () => {
    const ep = "e2e-tags-relay";
    const keys = await endpointWithKeys(server.base, server.adminKey, ep);
    const stop = new AbortController();
    const plainGot: string[] = [];
    const gpuGot: string[] = [];
    const loops = [...[0, 1, 2, 3, 4].map((i) => loop(ep, keys.worker, `u${i}`, "", stop.signal, plainGot)), loop(ep, keys.worker, "gpu1", "gpu", stop.signal, gpuGot)];
    try {
      await new Promise((r) => setTimeout(r, 500)); // every loop parked
      const started = Date.now();
      const gpu: string[] = [];
      for (let i = 0; i < 40; i++) gpu.push((await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { i }, tags: ["gpu"] })).body.id as string);
      const plain = (await api(server.base, "POST", `/v2/${ep}/run`, keys.client, { input: { plain: true } })).body.id as string;
      await eventually("every GPU job taken by the GPU worker", 15_000, async () => (gpu.every((id) => gpuGot.includes(id)) ? true : undefined));
      console.log(`40 GPU jobs reached the GPU worker parked beside 5 plain ones in ${Date.now() - started} ms (20 s polls)`);
      await eventually("the plain job taken by a plain worker", 15_000, async () => (plainGot.includes(plain) ? true : undefined));
      expect(plainGot.filter((id) => gpu.includes(id))).toEqual([]);
    } finally {
      stop.abort();
      await Promise.all(loops);
    }
  }, 60_000);
});
