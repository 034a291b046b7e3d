/**
 * Outbound URL checks against SSRF: worker URLs (and, later, webhook URLs) must be http(s) to a
 * public address unless the endpoint allows private ones. Addresses are classified with
 * ipaddr.js, never a regex; the WHATWG URL parser has already normalized decimal, octal and hex
 * IPv4 forms to dotted quads.
 */
import ipaddr from "ipaddr.js";

type UrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

const LOCAL_NAMES = /(^|\.)(localhost|localdomain|local|internal|home\.arpa)$/i;

export function checkOutboundUrl(raw: string, allowPrivate: boolean): UrlCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: `'${raw}' is not a URL` };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return { ok: false, reason: `${url.protocol} URLs are not allowed; use http or https` };
  if (url.username || url.password) return { ok: false, reason: "URLs with credentials are not allowed" };
  if (allowPrivate) return { ok: true, url };
  const host = url.hostname.replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (LOCAL_NAMES.test(host) || !host.includes(".") && !ipaddr.isValid(host)) {
    return { ok: false, reason: `'${host}' is a local name; allowPrivateUrls is off for this endpoint` };
  }
  if (ipaddr.isValid(host)) {
    const addr = ipaddr.process(host); // IPv4-mapped IPv6 becomes IPv4
    const range = addr.range();
    if (range !== "unicast") return { ok: false, reason: `${host} is a ${range} address; allowPrivateUrls is off for this endpoint` };
  }
  return { ok: true, url };
}
