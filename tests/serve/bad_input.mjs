// mitten serve on bad input: each request gets an error (OpenAI's error object, the right status) or a closed
// connection, and the server keeps serving.
//   node tests/serve/bad_input.mjs MITTEN_BINARY SOURCE_DIR WORK_DIR
import { copyFileSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';

import { check, done, healthy, rawRequest, startServer, status, stopServer } from './serve_lib.mjs';

const [mitten, src, work] = process.argv.slice(2);
rmSync(work, { recursive: true, force: true });
mkdirSync(`${work}/allowed`, { recursive: true });
copyFileSync(`${src}/docs/tiny_example.png`, `${work}/allowed/ok.png`);
copyFileSync(`${src}/docs/tiny_example.png`, `${work}/outside.png`);
symlinkSync(`${work}/outside.png`, `${work}/allowed/link.png`);

const server = await startServer(mitten, ['--allow-files', `${work}/allowed`, '--idle-timeout', '1', '--ctx', '128']);
const url = server.url;

async function post(body, what, want, { field } = {}) {
  const r = await fetch(`${url}v1/chat/completions`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
  const text = await r.text();
  let err = null;
  try {
    err = JSON.parse(text).error;
  } catch {}
  const fine = r.status === want && (want === 200 || (err && typeof err.message === 'string' && (!field || err.param === field)));
  check(fine && (await healthy(url)), `${what}: ${r.status} ${err ? err.message.slice(0, 110) : text.slice(0, 60)}`);
}

const msg = (content) => JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: 4 });
const image = (u) => msg([{ type: 'image_url', image_url: { url: u } }, { type: 'text', text: 'What colour?' }]);

await post('{"messages": [', 'invalid JSON', 400);
await post('[1, 2]', 'not an object', 400);
await post('{"messages": "hi"}', 'messages a string', 400, { field: 'messages' });
await post('{"messages": []}', 'no messages', 400, { field: 'messages' });
await post('{"messages": [{"role": "wizard", "content": "hi"}]}', 'an unknown role', 400, { field: 'messages[0]' });
await post('{"messages": [{"role": "user", "content": 5}]}', 'content a number', 400, { field: 'messages[0].content' });
await post(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: '10' }), 'max_tokens a string', 400, { field: 'max_tokens' });
await post('{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e300}', 'max_tokens 1e300', 400, { field: 'max_tokens' });
await post('{"messages": [{"role": "user", "content": "hi"}], "top_k": 1e20}', 'top_k 1e20', 400, { field: 'top_k' });
await post('{"messages": [{"role": "user", "content": "hi"}], "seed": -3}', 'a negative seed', 400, { field: 'seed' });
await post('{"messages": [{"role": "user", "content": "hi"}], "stop": [1]}', 'stop a number', 400, { field: 'stop' });
await post('{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', 'stream a string', 400, { field: 'stream' });
await post('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": null}, ' +
           '{"role": "user", "content": "hi"}]}', 'an assistant turn of null content and null tool_calls', 400,
           { field: 'messages[1].content' });
// content null beside tool_calls is what the openai client sends back; Qwen2-VL's template (the shipped model's) loops
// over content, so the server hands it "" (as vLLM does)
await post(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null, tool_calls: [
  { id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c', content: 'x' }],
max_tokens: 4 }), 'a tool call round trip on a template without tools', 200);
await post('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [{"function": {}}]}]}',
           'a tool call without a name', 400, { field: 'messages[1]' });
await post('{"messages": [{"role": "user", "content": "hi"}], "tools": [1]}', 'a tool that is not an object', 400,
           { field: 'tools' });
await post(image('data:image/png;base64,!!!!'), 'bad base64', 400);
await post(image('data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA'), 'a truncated PNG', 400);
await post(image('data:text/plain;base64,aGk='), 'a data: URL that is not an image', 400);
await post(image('ftp://x/y.png'), 'an ftp URL', 400);
await post(image(`file://${work}/allowed/ok.png`), 'a file under --allow-files', 200);
await post(image(`file://${work}/allowed/../outside.png`), 'a path escaping through ..', 400);
await post(image(`file://${work}/allowed/link.png`), 'a symlink out of the folder', 400);
await post(image(`${work}/allowed/missing.png`), 'a missing file', 400);
await post(msg('word '.repeat(200)), 'a prompt longer than the context', 400, { field: 'messages' });
await post(msg('a\u0000b'), 'U+0000 in a message (kept, as transformers keeps it)', 200);
await post('{"messages": [{"role": "user", "content": "\\ud800"}]}', 'a lone surrogate', 400);
await post('{"messages": [{"role": "user", "content": "hi"}], "stop": "x\\u0000"}', 'U+0000 in a stop string', 400, { field: 'stop' });
await post(`{"messages": ${'['.repeat(5000)}`, 'nesting 5000 deep', 400);

// raw HTTP: things a client library would not send
const wrong = await fetch(`${url}v1/chat/completions`);
check(wrong.status === 405, `GET on a POST endpoint: ${wrong.status}`);
const nowhere = await fetch(`${url}v1/nothing`);
check(nowhere.status === 404 && (await nowhere.json()).error, `an unknown path: ${nowhere.status}`);
const truncated = await rawRequest(url, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"mess',
  { closeAfterSend: true, ms: 3000 });
check(await healthy(url), `a body cut short by the client: served on (${status(truncated.text) || 'closed'})`);
const t0 = Date.now();
const slow = await rawRequest(url, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n', { ms: 8000 });
check(slow.closedByServer && Date.now() - t0 < 7000, `a client that stops sending its headers is closed after ${Date.now() - t0} ms`);
const flood = await rawRequest(url, `GET /health HTTP/1.1\r\nHost: x\r\n${'X-Flood: ' + 'a'.repeat(200) + '\r\n'}`.repeat(1) +
  Array.from({ length: 2000 }, (_, i) => `X-H${i}: ${'b'.repeat(60)}\r\n`).join('') + '\r\n', { ms: 5000 });
check([0, 413, 431].includes(status(flood.text)) && (await healthy(url)), `a header flood: ${status(flood.text) || 'closed'}, served on`);
const garbage = await rawRequest(url, '\x00\x01\x02 not http at all\r\n\r\n', { ms: 3000 });
check(await healthy(url), `bytes that are not HTTP: ${status(garbage.text) || 'closed'}, served on`);

const exit = await stopServer(server);
check(exit.code === 0, `SIGTERM: exit ${exit.code}`);

// a client that goes away mid-answer cancels its generation (vLLM's ignore_eos keeps the tiny model talking)
const long = await startServer(mitten, ['--ctx', '4096']);
const abort = new AbortController();
const r = await fetch(`${long.url}v1/chat/completions`, { method: 'POST', signal: abort.signal,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ stream: true, max_tokens: 4000, ignore_eos: true, messages: [{ role: 'user', content: 'Who are you?' }] }) });
await r.body.getReader().read();
abort.abort();
let line = null;
for (let i = 0; i < 50 && !line; i++) {
  await new Promise((ok) => setTimeout(ok, 100));
  line = /answer (\d+) tok[^\n]*client gone/.exec(long.log);
}
check(line && Number(line[1]) < 4000, `a client gone mid-stream cancels it: ${line ? line[0] : long.log.split('\n').slice(-3).join(' | ')}`);
const full = await fetch(`${long.url}v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ max_tokens: 50, ignore_eos: true, messages: [{ role: 'user', content: 'Who are you?' }] }) });
const fullBody = await full.json();
check(fullBody.usage?.completion_tokens === 50 && fullBody.choices?.[0]?.finish_reason === 'length',
      `ignore_eos: ${fullBody.usage?.completion_tokens} tokens, ${fullBody.choices?.[0]?.finish_reason}`);
await stopServer(long);
check(!/AddressSanitizer|runtime error/.test(server.log + long.log), 'no sanitizer report in the server logs');
done();
