/**
 * SSRF: webhook and worker URLs must be http(s) to public addresses. Every one of these is
 * refused unless the endpoint allows private URLs.
 */
import { describe, expect, it } from "vitest";
import { checkOutboundUrl } from "../../src/shared/urls";
import { call, createEndpoint, json } from "./helpers";

/** Defect 13: names with several trailing dots, and IPv6 forms that embed a private IPv4 address. */
const DEFECT_13_URLS = [
  "http://localhost../", "http://localhost.../x", "http://LOCALHOST../", "http://db.internal../", "http://127.0.0.1../", "http://10.0.0.1.../",
  // IPv4-compatible IPv6 (::a.b.c.d), in both spellings, with private and public IPv4
  "http://[::127.0.0.1]/", "http://[::7f00:1]/", "http://[::10.0.0.1]/", "http://[::169.254.169.254]/", "http://[::8.8.8.8]/",
  // IPv4-mapped and IPv4-translated forms of private addresses
  "http://[::ffff:100.64.0.1]/", "http://[::ffff:0:127.0.0.1]/", "http://[::ffff:0:a00:1]/", "http://[0:0:0:0:0:ffff:192.168.0.1]/",
  // NAT64 and 6to4 carrying private IPv4
  "http://[64:ff9b::10.0.0.1]/", "http://[64:ff9b::192.168.1.1]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[64:ff9b:1::a00:1]/",
  "http://[2002:a00:1::]/", "http://[2002:c0a8:101::1]/", "http://[2002:a9fe:a9fe::1]/",
  // IPv6 outside global unicast that ipaddr.js would otherwise call unicast
  "http://[4000::1]/", "http://[100::1]/", "http://[::2]/",
];

const HOSTILE_URLS = [
  ...DEFECT_13_URLS,
  // loopback, by name and by every spelling of the address
  "http://localhost/", "http://localhost:8080/hook", "http://LOCALHOST/", "http://localhost./", "http://api.localhost/",
  "https://localhost:443/", "http://127.0.0.1/", "http://127.1/", "http://127.0.1/", "http://127.255.255.254/",
  "http://2130706433/", "http://0x7f000001/", "http://0x7f.0x0.0x0.0x1/", "http://0177.0.0.1/", "http://017700000001/",
  "http://[::1]/", "http://[0:0:0:0:0:0:0:1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/",
  // unspecified
  "http://0.0.0.0/", "http://0/", "http://[::]/",
  // private (RFC 1918), in several spellings
  "http://10.0.0.1/", "http://10.255.255.255/", "http://0x0a000001/", "http://167772161/", "http://012.0.0.1/",
  "http://172.16.0.1/", "http://172.31.255.255/", "http://192.168.0.1/", "http://192.168.1.1:8443/", "http://[::ffff:10.0.0.1]/",
  "http://[::ffff:a00:1]/", "http://[::ffff:192.168.1.1]/",
  // link-local and cloud metadata
  "http://169.254.169.254/latest/meta-data/", "http://169.254.0.1/", "http://[::ffff:169.254.169.254]/", "http://[fe80::1]/",
  "http://metadata.google.internal/computeMetadata/v1/",
  // carrier-grade NAT, multicast, broadcast, reserved, documentation, benchmarking
  "http://100.64.0.1/", "http://100.127.255.254/", "http://224.0.0.1/", "http://239.255.255.250/", "http://[ff02::1]/",
  "http://255.255.255.255/", "http://240.0.0.1/", "http://192.0.2.1/", "http://198.51.100.1/", "http://203.0.113.1/",
  "http://198.18.0.1/", "http://192.0.0.8/", "http://[2001:db8::1]/",
  // unique-local, site-local, and IPv6 forms that embed an IPv4 address
  "http://[fc00::1]/", "http://[fd12:3456:789a::1]/", "http://[fec0::1]/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/",
  "http://[2001::1]/",
  // local names
  "http://intranet/", "http://printer.local/", "http://router.home.arpa/", "http://db.internal/",
  // other schemes and credentials
  "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)", "data:text/plain,hi",
  "http://user:pass@example.com/", "not a url",
];

describe("hostile URLs", () => {
  it(`refuses all ${HOSTILE_URLS.length} of them with a reason`, () => {
    expect(HOSTILE_URLS.length).toBeGreaterThanOrEqual(60);
    const passed = HOSTILE_URLS.filter((url) => checkOutboundUrl(url, false).ok);
    expect(passed).toEqual([]);
    for (const url of HOSTILE_URLS) {
      const r = checkOutboundUrl(url, false);
      if (!r.ok) expect(r.reason.length).toBeGreaterThan(5);
    }
  });

  it("defect 13: trailing dots and IPv6 forms embedding a private IPv4 are refused, as worker URLs too", async () => {
    const passed = DEFECT_13_URLS.filter((url) => checkOutboundUrl(url, false).ok);
    expect(passed).toEqual([]);
    const r = checkOutboundUrl("http://[::127.0.0.1]/", false);
    expect(!r.ok && r.reason).toMatch(/embedding 127\.0\.0\.1, a loopback address/);
    for (const url of ["http://localhost../", "http://[::127.0.0.1]/", "http://[64:ff9b::10.0.0.1]/", "http://[2002:a00:1::]/"]) {
      const res = await call("PUT", `/admin/endpoints/ep-defect13-${DEFECT_13_URLS.indexOf(url)}`, { body: { mode: "push", workerUrls: [url], allowPrivateUrls: false } });
      expect(res.status, url).toBe(400);
      expect((await json(res)).error, url).toMatch(/workerUrls: /);
    }
    // The public IPv4 an IPv4-mapped address names is as good as the IPv4 address itself.
    expect(checkOutboundUrl("http://[::ffff:93.184.216.34]/", false).ok).toBe(true);
  });

  it("accepts public http(s) URLs, and private ones when allowed", () => {
    for (const url of ["https://example.com/hook", "http://93.184.216.34/x", "https://[2606:4700::1111]/", "https://hooks.example.co.uk:8443/a?b=c"]) {
      expect(checkOutboundUrl(url, false).ok, url).toBe(true);
    }
    expect(checkOutboundUrl("http://127.0.0.1:9000/", true).ok).toBe(true);
    expect(checkOutboundUrl("ftp://example.com/", true).ok).toBe(false); // schemes are checked regardless
  });

  it("a submit with a hostile webhook is a 400 that says why, and queues nothing", async () => {
    const ep = await createEndpoint({ allowPrivateUrls: false });
    for (const webhook of ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/", "http://localhost/"]) {
      const res = await call("POST", `/v2/${ep}/run`, { body: { input: 1, webhook } });
      expect(res.status, webhook).toBe(400);
      expect((await json(res)).error).toMatch(/webhook: /);
    }
    expect((await json<{ jobs: { inQueue: number } }>(await call("GET", `/v2/${ep}/health`))).jobs.inQueue).toBe(0);
  });
});
