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
  // A fully qualified name may end in dots (`localhost..`): all of them go before classifying.
  const host = url.hostname.replace(/^\[|\]$/g, "").replace(/\.+$/, "");
  if (LOCAL_NAMES.test(host) || !host.includes(".") && !ipaddr.isValid(host)) {
    return { ok: false, reason: `'${host}' is a local name; allowPrivateUrls is off for this endpoint` };
  }
  if (ipaddr.isValid(host)) {
    const problem = addressProblem(ipaddr.parse(host));
    if (problem) return { ok: false, reason: `${host} is ${problem}; allowPrivateUrls is off for this endpoint` };
  }
  return { ok: true, url };
}

/** Global unicast IPv6 (RFC 4291 §2.4, IANA): everything outside it is refused. */
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR("2000::/3");
/** IPv4-compatible IPv6 (`::a.b.c.d`, deprecated by RFC 4291): outside 2000::/3, and ipaddr.js calls it unicast. */
const IPV4_COMPATIBLE = ipaddr.IPv6.parseCIDR("::/96");

/**
 * The IPv4 address an IPv6 address carries, for the forms that carry one: IPv4-mapped and
 * -translated (`::ffff:…`), IPv4-compatible (`::…`), NAT64 (`64:ff9b::/96`) in the last 32 bits;
 * 6to4 (`2002::/16`) in bits 16-47.
 */
function embeddedIPv4(addr: ipaddr.IPv6): ipaddr.IPv4 | null {
  const p = addr.parts;
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const range = addr.range();
  if (range === "ipv4Mapped" || range === "rfc6145" || range === "rfc6052" || addr.match(IPV4_COMPATIBLE)) return v4(p[6]!, p[7]!);
  if (range === "6to4") return v4(p[1]!, p[2]!);
  return null;
}

/** Why an address is not a public unicast one, or null when it is. */
function addressProblem(addr: ipaddr.IPv4 | ipaddr.IPv6): string | null {
  if (addr.kind() === "ipv4") {
    const range = addr.range();
    return range === "unicast" ? null : `a ${range} address`;
  }
  const v6 = addr as ipaddr.IPv6;
  const range = v6.range();
  if (range === "loopback" || range === "unspecified") return `a ${range} address`;
  const v4 = embeddedIPv4(v6);
  if (v4 && v4.range() !== "unicast") return `an IPv6 address (${range === "unicast" ? "IPv4-compatible" : range}) embedding ${v4.toString()}, a ${v4.range()} address`;
  if (range === "ipv4Mapped") return null; // the same as the public IPv4 address it maps
  if (range !== "unicast") return `a ${range} address`;
  if (!v6.match(GLOBAL_UNICAST_V6)) return `outside global unicast IPv6 (2000::/3)`;
  return null;
}

/**
 * A URL as `scheme://host/path`: userinfo, query and fragment dropped, since they may carry
 * secrets (a worker URL's `?key=…`) and errors naming the URL reach client-key holders.
 */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return raw.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1").replace(/[?#].*$/s, "");
  }
}

/** `text` with every http(s) URL in it redacted (see redactUrl); punctuation after a URL stays. */
export function redactUrls(text: string): string {
  return text.replace(/\bhttps?:\/\/[^\s"'<>`]+/gi, (m) => {
    const [, url = m, tail = ""] = /^(.*?)([.,;:!?)\]]*)$/s.exec(m) ?? [];
    return redactUrl(url) + tail;
  });
}

/**
 * This Worker's public origin, from the PUBLIC_URL var: push workers report to URLs under it.
 * Never taken from a request, whose Host header the sender chooses (a forged one sent report
 * tokens elsewhere). Unset or not an http(s) origin, push dispatch is refused with the reason.
 */
export function publicOrigin(env: { PUBLIC_URL?: string }): { ok: true; origin: string } | { ok: false; reason: string } {
  const how = "set PUBLIC_URL (wrangler.toml [vars]) to this Worker's public origin, e.g. https://edge-jobs.<account>.workers.dev; push workers report to URLs under it";
  const raw = env.PUBLIC_URL?.trim() ?? "";
  if (raw === "") return { ok: false, reason: `edge-jobs cannot dispatch push jobs: PUBLIC_URL is not set; ${how}` };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: `edge-jobs cannot dispatch push jobs: PUBLIC_URL '${raw}' is not a URL; ${how}` };
  }
  const originOnly = url.pathname === "/" && !url.search && !url.hash && !url.username && !url.password;
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !originOnly) {
    return { ok: false, reason: `edge-jobs cannot dispatch push jobs: PUBLIC_URL '${redactUrl(raw)}' is not an http(s) origin (no path, query or credentials); ${how}` };
  }
  return { ok: true, origin: url.origin };
}
