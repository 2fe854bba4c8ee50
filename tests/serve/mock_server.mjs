// A stand-in for `mitten serve` that the chat page's own test runs against: it serves the files of src/serve/web/
// as the binary does ("/" is index.html) and answers the OpenAI API with a fixed streamed answer, so the page is
// tested without a model. Every chat request is kept (body, Authorization, whether the client hung up) for the
// test to check what the page sent.
//   node tests/serve/mock_server.mjs [port]      serves on 127.0.0.1 (port 0: any free one) and prints the URL
//
// A question holding "please fail" gets an OpenAI error (HTTP 400); one holding "quick" streams a chunk every 5 ms
// instead of every 150 ms.
import http from 'node:http';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB_DIR = fileURLToPath(new URL('../../src/serve/web/', import.meta.url));
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
export const MODEL = 'mock-model';

// Markdown with each block kind the page renders, and HTML that must come out as text.
export const ANSWER = [
  '## A house\n\n', 'The picture shows **a red house** ', 'under a *yellow sun*, ', 'with `code` and ~~no~~ snow.\n\n',
  '- a green field\n', '- a blue sky\n', '  1. nested\n\n', '```js\n', 'console.log("<b>hi</b>" && 1);\n', '```\n\n',
  '| part | colour |\n', '| --- | --- |\n', '| roof | brown |\n\n', '> quoted\n\n',
  'See [the docs](https://example.com/a_b_c?x=1&y=2) or [this](javascript:alert(1)). ',
  '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>', ' The end.',
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function sendJson(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function staticFile(res, urlPath) {
  const name = urlPath === '/' ? 'index.html' : urlPath.slice(1);
  const files = await readdir(WEB_DIR);
  if (!files.includes(name) || name.startsWith('.')) return sendJson(res, 404, { error: { message: `${urlPath} not found`, type: 'not_found_error', code: 404 } });
  res.writeHead(200, { 'Content-Type': TYPES[path.extname(name)] ?? 'application/octet-stream' });
  res.end(await readFile(path.join(WEB_DIR, name)));
}

async function chat(req, res, requests) {
  let raw = '';
  for await (const part of req) raw += part;
  const entry = { body: null, authorization: req.headers.authorization ?? null, aborted: false, chunksSent: 0 };
  requests.push(entry);
  try {
    entry.body = JSON.parse(raw);
  } catch {
    return sendJson(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error', code: null } });
  }
  const last = entry.body.messages?.at(-1)?.content;
  const question = typeof last === 'string' ? last : (last ?? []).map((p) => p.text ?? '').join(' ');
  if (question.includes('please fail')) {
    return sendJson(res, 400, { error: { message: 'mock failure on request', type: 'invalid_request_error', code: 'mock' } });
  }
  const delay = question.includes('quick') ? 5 : 150;
  res.on('close', () => { if (!res.writableFinished) entry.aborted = true; });
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  const base = { id: 'chatcmpl-mock', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: MODEL };
  const send = (obj) => res.write(`data: ${JSON.stringify({ ...base, ...obj })}\n\n`);
  send({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
  for (const piece of ANSWER) {
    await sleep(delay);
    if (entry.aborted) return;
    send({ choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] });
    entry.chunksSent++;
  }
  send({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  if (entry.body.stream_options?.include_usage) {
    send({ choices: [], usage: { prompt_tokens: 42, completion_tokens: ANSWER.length, total_tokens: 42 + ANSWER.length } });
  }
  res.end('data: [DONE]\n\n');
}

// Starts the server; resolves to { url, requests, close }.
export function startMock(port = 0) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    try {
      const urlPath = new URL(req.url, 'http://x').pathname;
      if (req.method === 'GET' && urlPath === '/v1/models') {
        sendJson(res, 200, { object: 'list', data: [{ id: MODEL, object: 'model', created: 0, owned_by: 'mitten' }] });
      } else if (req.method === 'POST' && urlPath === '/v1/chat/completions') {
        await chat(req, res, requests);
      } else if (req.method === 'GET') {
        await staticFile(res, urlPath);
      } else {
        sendJson(res, 405, { error: { message: `${req.method} ${urlPath} is not served`, type: 'invalid_request_error', code: null } });
      }
    } catch (e) {
      if (!res.headersSent) sendJson(res, 500, { error: { message: String(e), type: 'server_error', code: null } });
      else res.destroy();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}/`,
      requests,
      close: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }),
    }));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const mock = await startMock(Number(process.argv[2] ?? 0));
  console.log(mock.url);
}
