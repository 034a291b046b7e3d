import { handleDeadLetters, handleDispatch } from "./dispatch/consumer";
import { createApp } from "./http/app";

export { JobObject } from "./jobs/job-object";
export { EndpointObject } from "./endpoints/endpoint-object";
export { DirectoryObject } from "./endpoints/directory-object";
export { LivenessObject } from "./endpoints/liveness-object";
export { ShardObject } from "./endpoints/shard-object";
export { BatchObject } from "./batches/batch-object";
export { GraphObject } from "./graphs/graph-object";
export { ScheduleObject } from "./schedules/schedule-object";

const app = createApp();

export default {
  fetch: app.fetch,
  async queue(batch, env, _ctx) {
    if (batch.queue.endsWith("-dlq")) await handleDeadLetters(batch, env);
    else await handleDispatch(batch, env);
  },
} satisfies ExportedHandler<Env>;
