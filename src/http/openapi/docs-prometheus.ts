/** The descriptions of the Prometheus scrape routes (routes/prometheus.ts). */
import type { OperationDoc } from "./operation";
import { PROMETHEUS_CONTENT_TYPE } from "../../flows/prometheus-text";

const TEXT = PROMETHEUS_CONTENT_TYPE.split(";")[0]!;
const FAMILIES =
  "Families: `edge_jobs_jobs{state}` (gauge), `edge_jobs_jobs_submitted_total`, `edge_jobs_jobs_ended_total{outcome}`, " +
  "`edge_jobs_jobs_retried_total`, `edge_jobs_webhook_deliveries_total{result}` (counters), `edge_jobs_workers{state}` (gauge), " +
  "`edge_jobs_execution_seconds`, `edge_jobs_delay_seconds`, `edge_jobs_cold_start_seconds` (summaries: quantiles 0.7, 0.9, 0.98 over the last hour); " +
  "every sample has an `endpoint` label.";

export const ENDPOINT_PROMETHEUS_DOC: OperationDoc = {
  operationId: "getEndpointPrometheusMetrics",
  summary: "The endpoint's numbers in Prometheus's text format",
  description: `For a Prometheus scrape job with the endpoint's client key as its bearer token. ${FAMILIES}`,
  tags: ["Endpoint"],
  auth: "client",
  responses: {
    200: { description: `Prometheus text exposition format 0.0.4 (${PROMETHEUS_CONTENT_TYPE}).`, contentType: TEXT },
    404: { description: "No such endpoint." },
  },
};

export const ADMIN_PROMETHEUS_DOC: OperationDoc = {
  operationId: "getPrometheusMetrics",
  summary: "Every endpoint's numbers in Prometheus's text format",
  description: `For one Prometheus scrape job over the whole Worker, with the admin key as its bearer token. At most the first 100 endpoints (by id); a comment line says when there are more. ${FAMILIES}`,
  tags: ["Admin"],
  auth: "admin",
  responses: { 200: { description: `Prometheus text exposition format 0.0.4 (${PROMETHEUS_CONTENT_TYPE}).`, contentType: TEXT } },
};
