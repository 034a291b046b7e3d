import { createApp } from "./http/app";

export { JobObject } from "./jobs/job-object";
export { EndpointObject } from "./endpoints/endpoint-object";
export { DirectoryObject } from "./endpoints/directory-object";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
