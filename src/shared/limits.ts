/** Product limits and defaults (SPEC §10, RUNPOD-WIRE §4), in one place. */
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MB = 1024 * 1024;

export const LIMITS = {
  executionTimeout: { min: 5 * SECOND, max: 7 * DAY, default: 10 * MINUTE },
  ttl: { min: 10 * SECOND, max: 7 * DAY, default: DAY },
  /** A submit's `delay` (ms) and how far ahead `runAt` may be: up to the longest TTL (issue 16). */
  delay: { min: 0, max: 7 * DAY },
  /** `policy.retryBackoff`'s `delay` and `maxDelay` (ms). */
  retryBackoff: { min: 0, max: DAY },
  /** A `/retry` or `/requeue`'s `delay` (ms). */
  retryDelay: { min: 0, max: DAY },
  maxAttempts: { min: 1, max: 20, default: 3 },
  heartbeatTimeout: { min: 5 * SECOND, max: HOUR, default: 45 * SECOND },
  retentionMs: { min: 0, max: 7 * DAY, default: 30 * MINUTE },
  syncRetentionMs: { min: 0, max: 7 * DAY, default: MINUTE },
  cancelGraceMs: { min: 0, max: HOUR, default: 30 * SECOND },
  concurrency: { min: 1, max: 100_000 },
  priority: { min: -1_000_000, max: 1_000_000 },
  /** /runsync and /status-sync `wait` (RunPod: default 90 s, 1–300 s). */
  syncWait: { min: 1 * SECOND, max: 300 * SECOND, default: 90 * SECOND },
  /** /stream `wait`: how long a poll that finds nothing new holds (RunPod's JS client polls with no pause). */
  streamWait: { min: 0, max: 90 * SECOND, default: 1 * SECOND },
} as const;

/** Payload limits: inputs and outputs (RunPod: 10 MB on /run, 20 MB on /runsync). */
export const PAYLOAD = {
  runInputBytes: 10 * MB,
  syncInputBytes: 20 * MB,
  outputBytes: 20 * MB,
  /** One job-stream chunk (RunPod: 1 MB). */
  streamChunkBytes: 1 * MB,
  /** Room for the envelope around the payload (`{"input": …, "policy": …}`). */
  envelopeBytes: 64 * 1024,
  /** A job's `s3Config` (handed to its workers as sent): its JSON text at most. */
  s3ConfigBytes: 16 * 1024,
  /** Small bodies: admin requests, reports without output. */
  smallBodyBytes: 64 * 1024,
} as const;

export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * Job logs (issue 14): what a worker may append to a job (`POST /v2/{ep}/job-log`) and what a job
 * keeps. A message over `lineChars` (+ `cutNoteRoom`) characters is cut in the middle as RunPod's
 * SDK cuts it (RUNPOD-WIRE-2 §3.2). Past `linesPerJob` lines or `bytesPerJob` UTF-8 bytes of messages, over
 * all its attempts, a job keeps one truncation marker line and drops later lines.
 */
export const JOB_LOG = {
  linesPerJob: 10_000,
  bytesPerJob: 1 * MB,
  lineChars: 4096,
  /** A message is cut only past `lineChars` plus this, so one already cut (the note is ~35 characters) is not cut again. */
  cutNoteRoom: 64,
  linesPerPost: 1000,
  postBytes: 256 * 1024,
  /** Lines of one `GET /v2/{ep}/logs/{id}` page (and of one SSE read round). */
  page: { default: 100, max: 1000 },
} as const;

/**
 * The OpenAI-compatible route `/v2/{ep}/openai/*` (RUNPOD-WIRE-2 §2). Its body is held to
 * /runsync's input limit; a call waits for its job at most the job's execution timeout after
 * submission (then cancels it), one job-object wait of at most `waitSliceMs` at a time.
 */
export const OPENAI_ROUTE = {
  bodyBytes: PAYLOAD.syncInputBytes,
  /** The route after `/openai` (`/v1/chat/completions`), in characters of the URL path. */
  routeChars: 1024,
  waitSliceMs: 60 * SECOND,
  /** A stream that has begun reads its job at least this often: a lost worker and a gone client are noticed within it. */
  watchSliceMs: 2 * SECOND,
  /** A non-streaming answer assembled from stream chunks (a job that completed without output) holds at most this much. */
  chunkedOutputBytes: PAYLOAD.outputBytes,
} as const;

/**
 * How long after its attempt started a running job must appear in its worker's pings (`job_id=`):
 * a ping sent just before the take was answered cannot list it yet; RunPod's SDK pings every 10 s.
 */
export const PING_LIST_GRACE_MS = 30_000;

/**
 * Reads of a job's stream (issue 11): one /stream answer and one SSE read round carry at most
 * this much chunk data (always at least one chunk), far below the 32 MiB RPC limit and the
 * 128 MB isolate; the rest comes on the next call.
 */
export const STREAM_READ = {
  maxBytes: 8 * MB,
  maxChunks: 256,
} as const;

/**
 * What workers may make the coordinator keep (issue 11): worker registry rows, ping strings,
 * refused-report history lines, handler errors.
 */
export const WORKER_BOUNDS = {
  /** Workers one endpoint remembers; past it the longest-silent are forgotten. */
  registryRows: 10_000,
  /** A worker silent this long is forgotten. */
  forgetMs: 24 * HOUR,
  /** A worker that never took a job is forgotten after this much silence. */
  forgetNeverTookMs: 1 * HOUR,
  /** `runpod_version` of a ping is kept to this many characters (longer is cut, the ping counts). */
  sdkVersionChars: 64,
  /** `check` and `reason` of an unhealthy ping, each (RunPod sends ≤ 256). */
  unhealthyTextChars: 256,
  /** Refused worker reports kept line by line per job; the rest are counted in one line. */
  refusalLinesPerJob: 50,
  /** A handler's `error` is kept up to this many UTF-8 bytes, cut with `errorCutMarker`. */
  errorBytes: 64 * 1024,
  errorCutMarker: "… [error cut to 64 KiB]",
} as const;

/**
 * Memory bounds (issue 11, defect 8): an isolate has 128 MB in production. A batch take answers
 * at most this much input (always at least one job; the rest stay queued for the next take).
 */
export const MEMORY_BOUNDS = {
  batchInputBytes: 16 * MB,
  /** Claimed jobs' inputs pass inline through the shard that claimed them up to this much per take (split over its jobs); the edge reads larger ones from the job. */
  inlineClaimBytes: 1 * MB,
} as const;

/**
 * A push worker's answer, read by bytes as it streams in: a 2xx is read up to the output limit
 * plus the envelope (a larger or endless one fails the attempt, and nothing past the limit is
 * held); any other answer only up to its first KiB, for the error message.
 */
export const PUSH_ANSWER = {
  maxBytes: PAYLOAD.outputBytes + PAYLOAD.envelopeBytes,
  errorBytes: 1024,
} as const;

/**
 * `POST /v2/{ep}/webhooks/{id}/redeliver`, per job: refused (429, Retry-After) while a send of the
 * event is due within this interval or one was made less than this interval ago, so one job's
 * webhook is redelivered at most once per interval and never more than one is pending.
 */
export const WEBHOOK_REDELIVERY = {
  minIntervalMs: 10_000,
} as const;

/**
 * Worker liveness (issue 12): pings, job-stop polls, stop signals and lease checks are served by
 * `shards` liveness objects per endpoint generation, a worker's by hash(workerId) mod `shards`,
 * never by the endpoint object. Each shard keeps its share of WORKER_BOUNDS.registryRows and tells
 * the endpoint a summary (workers by state, its latest sign of life, cold starts) at most once per
 * `flushMs` (and at most every half heartbeat timeout), at once when the endpoint would otherwise
 * think it has no live worker, on a worker's first take and when a worker reports itself unhealthy.
 */
export const LIVENESS = {
  shards: 16,
  flushMs: 10 * SECOND,
  /**
   * A worker new to its shard is told to the endpoint within this long (a summary at most this
   * often on newcomers alone): a blocklist's "every live worker" (jobs/blocklist) counts it.
   */
  newcomerFlushMs: 1 * SECOND,
  /** Released `held` rows are kept this long, so a late, older tell of a job cannot revive them. */
  releasedKeepMs: 1 * HOUR,
  /** Tells a job keeps pending while its worker's liveness object cannot be reached (oldest dropped). */
  pendingTells: 20,
} as const;

/**
 * A waiting job's `queue.position` is counted exactly below this; from there on it answers this
 * number with `positionAtLeast: true`, so a status read steps over at most this many rows however
 * deep the queue (issue 12).
 */
export const QUEUE_POSITION = {
  exactBelow: 1000,
} as const;

/**
 * Issue 12, item 3: an endpoint's ready index is spread over `shards` objects (ShardObjects
 * 1..shards for an endpoint created with several; the endpoint object itself for one created with
 * one shard or a cap). New endpoints get `default`; a PUT may grow it up to `max`, never shrink it
 * (jobs keep the shard they were placed on). An endpoint with a `concurrency` cap is created with
 * 1 shard, so the cap is counted in one place and stays exact.
 */
export const SHARDS = {
  default: 8,
  max: 64,
  /** A shard's hint the endpoint object holds is repeated by alarm when its ready jobs wait this long unserved. */
  hintEveryMs: 2_000,
  /**
   * A take waits this long at its shard before the shard asks the endpoint object for other
   * shards' hints: most waits end sooner (a job placed where the take waits), and those cost the
   * endpoint object nothing. The latency a job on another shard adds for a parked take.
   */
  forwardAfterMs: 50,
} as const;

/**
 * GET /v2/{ep}/requests and the admin bulk cancel/retry (issue 14, item 3): jobs per page
 * (`limit`), and how many index rows one shard walks at most for a page whose filters its index
 * does not all cover (a status with a batch or a sequence key); such a page may come back short,
 * with `hasMore` and a cursor to go on from. `skippedShown`: skipped jobs a bulk answer lists.
 */
export const LISTING = {
  defaultLimit: 50,
  maxLimit: 500,
  scanRows: 2_000,
  skippedShown: 100,
  /** Job objects a bulk action calls at once. */
  parallel: 16,
} as const;

/**
 * Cron schedules (issue 16, item 3): `PUT /admin/endpoints/{ep}/schedules/{name}`. Fires are at
 * whole seconds (the parser's resolution: a 6-field cron may fire every second, the shortest
 * interval). A due fire at most `onTimeMs` old at the alarm is on time; older ones were missed
 * (paused, or the object unreachable) and follow the schedule's `catchUp`. Under "all", at most
 * `catchUpWindow` of the newest missed fires are fired (older ones are missed), `firesPerRun` per
 * alarm run, the rest at once in the next run.
 */
export const SCHEDULES = {
  perEndpoint: 100,
  /** The whole PUT body, and the job's `input` as JSON, in bytes. */
  bodyBytes: 128 * 1024,
  inputBytes: 64 * 1024,
  cronChars: 128,
  timezoneChars: 64,
  onTimeMs: 60 * SECOND,
  catchUpWindow: 100,
  firesPerRun: 20,
  /** Missed fires recorded one by one per alarm run (the newest; older ones only counted). */
  missedRows: 20,
  /** Fire rows a schedule keeps (the newest); GET shows `lastFires` of them. */
  keptFires: 200,
  lastFires: 20,
  nextFires: 5,
} as const;

/**
 * The Batch API (issue 14, item 1; RUNPOD-WIRE-2 §1) under /v2/{ep}/batch. RunPod allows 5,000
 * requests per batch; edge-jobs allows `requestsPerBatch` (the issue asks for 10,000). A create or
 * append body is at most `bodyBytes` (RunPod: 10 MiB per call); a batch holds at most
 * `requestBytes` of request bodies until they become jobs. `activePerEndpoint`: DRAFT batches and
 * FINALIZED ones with unfinished requests (429 past it). Children become jobs `createParallel` at
 * a time, at most `createChunkBytes` of bodies per round; their retention is the longest
 * (`LIMITS.retentionMs.max`). A batch is kept `retentionMs` after it finished (all requests
 * finished, or CANCELLED/FAILED); a DRAFT untouched for `draftIdleMs` is cancelled. A child's
 * output up to `outputCopyBytes` is copied into the batch; a child-list page carries at most
 * `pageOutputBytes` of outputs (always one child).
 */
export const BATCH = {
  requestsPerBatch: 10_000,
  bodyBytes: 10 * MB,
  requestBytes: 512 * MB,
  activePerEndpoint: 10,
  nameChars: 255,
  createParallel: 50,
  createChunkBytes: 16 * MB,
  /** How long one alarm run creates or cancels children before it re-arms (and lets calls in). */
  alarmSliceMs: 5 * SECOND,
  retentionMs: 7 * DAY,
  draftIdleMs: 7 * DAY,
  /** Child creation failing this long in a row (the endpoint unreachable) fails the batch. */
  createGiveUpMs: HOUR,
  outputCopyBytes: 64 * 1024,
  pageOutputBytes: 16 * MB,
  /** GET /batch and GET /batch/{id}/requests: `limit` default and maximum. */
  page: { default: 50, max: 500 },
  listPage: { default: 50, max: 100 },
  /** Job or batch objects one call or alarm round calls at once (reads, cancels). */
  parallel: 16,
} as const;

/**
 * Per-key flow control (issue 16, item 4): a job's `concurrencyKey` or `rateLimitKey` (`keyChars`
 * at most) counts against its key's cap (`concurrency`) and rate (`limit` starts per `periodMs`,
 * a fixed window that opens at the first start after the last one closed). An endpoint keeps at
 * most `overridesPerEndpoint` per-key overrides (409 past it).
 */
export const FLOW_KEYS = {
  keyChars: 255,
  concurrency: { min: 1, max: 100_000 },
  rateLimit: { min: 1, max: 100_000 },
  periodMs: { min: SECOND, max: DAY },
  overridesPerEndpoint: 1_000,
} as const;

/**
 * Worker tags (issue 15, item 3): a job requiring tags (`tags` on submit, at most `perJob`) is
 * handed only to workers that declared all of them (`?tags=` on take and ping, at most
 * `perWorker`). A tag is 1-`chars` letters, digits, '_', '-', '.', ':' or '/', starting with a
 * letter or digit. `perWorker` bounds the ranges of ready tag sets a take reads (one per tag).
 */
export const WORKER_TAGS = {
  chars: 64,
  perJob: 8,
  perWorker: 8,
  pattern: /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$/,
  /** Distinct tag sets of live workers a liveness shard tells its endpoint at most (for queue.reason). */
  setsPerSummary: 64,
} as const;

/**
 * Blocklists (issue 15, item 3; Flamenco's): a worker that failed `threshold` attempts of one job
 * (an error it reported, or a lease it lost) is never handed that job again. When every live
 * worker that may take the job is blocklisted from it, the job fails (reason "blocklisted"); the
 * endpoint learns its live workers from the liveness shards' summaries, each naming at most
 * `liveIdsPerSummary` (past that it does not know them all, and fails no job on that ground).
 */
export const BLOCKLIST = {
  threshold: { min: 1, max: 20, default: 3 },
  liveIdsPerSummary: 64,
} as const;

/**
 * Jobs of tasks (issue 15, item 1; Flamenco's): a job submitted with `tasks` (at most `tasks`,
 * each named 1-`nameChars` of `namePattern`, depending on at most `dependsOn` others, at most
 * `edges` dependencies in all) hands each task to workers as a job of its own once the tasks it
 * depends on completed. A task's job is created `createParallel` at a time; a task is tried
 * `attempts` times by default (each error or lost lease queues it again: soft-failed). A task's
 * output up to `outputCopyBytes` is copied into its job of tasks; /status carries the outputs by
 * name while they total at most `statusOutputBytes`; a /tasks page carries at most
 * `pageOutputBytes` of outputs (always one task).
 */
export const GRAPH = {
  tasks: 10_000,
  /** A job of replicas (issue 15, item 4): at most this many. */
  replicas: 64,
  nameChars: 128,
  namePattern: /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/,
  dependsOn: 10_000,
  edges: 100_000,
  attempts: 3,
  createParallel: 50,
  /**
   * Tasks of one job handed to the queue and not yet started, at most: the rest wait in the job
   * (ready) and are handed over as these start. Creating all 10,000 at once took the whole machine
   * for 90 s under `npm start` (reads of the job waited 17 s); the queue needs only what workers take soon.
   */
  createAhead: 200,
  alarmSliceMs: 5 * SECOND,
  outputCopyBytes: 64 * 1024,
  statusOutputBytes: MB,
  pageOutputBytes: 16 * MB,
  page: { default: 100, max: 1_000 },
  /** Task creation failing this long in a row (the endpoint unreachable) fails the job. */
  createGiveUpMs: HOUR,
} as const;
