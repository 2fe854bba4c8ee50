// CORS in a real browser: a page served from another origin (a node http server on its own port) calls `mitten
// serve` with fetch: POST JSON with an Authorization header (which needs a preflight), streamed and not, and GET
// /v1/models. Chromium (playwright-core) decides whether the page may read the answers:
//   - without --cors, every call is refused by the browser (a page a user visits cannot use a local server);
//   - with --cors naming the page's origin, all of them work, and a page from an origin not in the list is refused;
//   - with --cors '*', any origin works.
// Usage: node cors.mjs MITTEN
import http from 'node:http';
import { check, done, startServer, stopServer, rawRequest, status, launchChromium } from './serve_lib.mjs';

const mitten = process.argv[2];
const KEY = 'cors-test-key';

// An empty page on its own origin (127.0.0.1:PORT): the calls run from it.
function startPageServer() {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><title>other origin</title>');
    });
    srv.listen(0, '127.0.0.1', () => resolve({ srv, url: `http://127.0.0.1:${srv.address().port}/` }));
  });
}

// Runs the three calls from the page; each gives the answer's text (or 'refused: ...' when the browser blocks it).
async function callsFrom(page, api) {
  return page.evaluate(async ({ api, key }) => {
    const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` };
    const body = (stream) => JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, stream });
    async function attempt(fn) {
      try {
        return await fn();
      } catch (e) {
        return `refused: ${e.message}`;
      }
    }
    const whole = await attempt(async () => {
      const r = await fetch(`${api}v1/chat/completions`, { method: 'POST', headers, body: body(false) });
      const j = await r.json();
      return `${r.status} ${j.choices?.[0]?.message?.role}`;
    });
    const streamed = await attempt(async () => {
      const r = await fetch(`${api}v1/chat/completions`, { method: 'POST', headers, body: body(true) });
      const text = await r.text();
      return `${r.status} ${text.includes('data: [DONE]') ? 'done' : 'cut'}`;
    });
    const models = await attempt(async () => {
      const r = await fetch(`${api}v1/models`, { headers: { Authorization: `Bearer ${key}` } });
      const j = await r.json();
      return `${r.status} ${j.object}`;
    });
    return { whole, streamed, models };
  }, { api, key: KEY });
}

const pages = [await startPageServer(), await startPageServer()];
const browser = await launchChromium();
const context = await browser.newContext();
const page = await context.newPage();

async function scenario(what, corsArgs, pageIndex, expectAllowed) {
  const server = await startServer(mitten, ['--api-key', KEY, '--quiet', ...corsArgs]);
  try {
    await page.goto(pages[pageIndex].url);
    const r = await callsFrom(page, server.url);
    const want = { whole: '200 assistant', streamed: '200 done', models: '200 list' };
    for (const k of Object.keys(want)) {
      const ok = expectAllowed ? r[k] === want[k] : r[k].startsWith('refused');
      check(ok, `${what}: ${k} ${expectAllowed ? 'read by the page' : 'refused by the browser'} (${r[k]})`);
    }
    // the preflight itself, as the browser sends it
    const origin = new URL(pages[pageIndex].url).origin;
    const { host } = new URL(server.url);
    const pre = await rawRequest(server.url, `OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nOrigin: ${origin}\r\n` +
      'Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n' +
      'Connection: close\r\n\r\n');
    const allowOrigin = /access-control-allow-origin: *([^\r\n]*)/i.exec(pre.text)?.[1] ?? null;
    check(status(pre.text) === 204, `${what}: OPTIONS preflight answered 204 without a key (${status(pre.text)})`);
    check(expectAllowed ? allowOrigin === origin || allowOrigin === '*' : allowOrigin === null,
      `${what}: preflight Access-Control-Allow-Origin ${allowOrigin}`);
    if (expectAllowed) check(/access-control-allow-headers:[^\r\n]*authorization/i.test(pre.text),
      `${what}: preflight allows the Authorization header`);
  } finally {
    await stopServer(server);
  }
}

try {
  const origin0 = new URL(pages[0].url).origin;
  await scenario('no --cors', [], 0, false);
  await scenario('--cors listing the page', ['--cors', `http://example.invalid, ${origin0}`], 0, true);
  await scenario('--cors listing another origin', ['--cors', origin0], 1, false);
  await scenario("--cors '*'", ['--cors', '*'], 1, true);
} finally {
  await browser.close();
  for (const p of pages) p.srv.close();
}
done();
