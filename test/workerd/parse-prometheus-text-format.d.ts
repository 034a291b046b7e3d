declare module "parse-prometheus-text-format" {
  /** Families as prom2json prints them: name, help, type (upper case) and samples with string values. */
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
