// mitten serve under load: 64 streaming clients on loopback for 60 s (or SECONDS), each asking again as soon as its
// answer ends, at most MAX_REQUESTS in all. Passes when no request failed, every stream ended with [DONE] and a
// finish_reason, the server stayed up, and its resident memory stopped growing (the second half of the run peaks
// no more than 10% + 16 MiB above the first half's peak).
//   node tests/serve/load.mjs MITTEN_BINARY SOURCE_DIR [SECONDS] [CLIENTS]
import { readFileSync } from 'node:fs';

import { check, done, startServer, stopServer } from './serve_lib.mjs';

const [mitten, src, secondsArg, clientsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 60), clients = Number(clientsArg ?? 64), maxRequests = 20000;
const png = readFileSync(`${src}/docs/tiny_example.png`).toString('base64');
const server = await startServer(mitten, ['--parallel', '8', '--queue', String(clients), '--quiet']);
const endpoint = `${server.url}v1/chat/completions`;

const rss = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.proc.pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
};

let started = 0, ok = 0, failed = 0, tokens = 0;
const failures = [];
const t0 = Date.now(), until = t0 + seconds * 1000;

async function one(i) {
  const body = {
    model: 'mitten-tiny', stream: true, max_tokens: 24, temperature: 1, seed: started,
    messages: [{ role: 'user', content: i % 3 ? 'Who are you?' : [
      { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
      { type: 'text', text: 'What colour is the shape?' }] }],
  };
  const r = await fetch(endpoint, { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${(await r.text()).slice(0, 200)}`);
  const text = await r.text();
  if (!text.endsWith('data: [DONE]\n\n')) throw new Error(`stream did not end with [DONE]: ${text.slice(-200)}`);
  if (!/"finish_reason":"(stop|length)"/.test(text)) throw new Error('no finish_reason');
  tokens += (text.match(/"content":"[^"]/g) ?? []).length;
}

async function client(i) {
  while (Date.now() < until && started < maxRequests) {
    started++;
    try {
      await one(i);
      ok++;
    } catch (e) {
      failed++;
      if (failures.length < 5) failures.push(e.message);
    }
  }
}

const samples = [];
const sampler = setInterval(() => {
  samples.push(rss());
  const s = Math.round((Date.now() - t0) / 1000);
  console.log(`  ${s}s: ${ok} answered, ${failed} failed, RSS ${(samples.at(-1) / 2 ** 20).toFixed(1)} MiB`);
}, 5000);
await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
clearInterval(sampler);
samples.push(rss());

const half = Math.floor(samples.length / 2);
const first = Math.max(...samples.slice(0, half)), second = Math.max(...samples.slice(half));
check(failed === 0, `${clients} clients, ${seconds} s: ${ok} requests answered, ${failed} failed${failures.length ? ': ' + failures.join(' | ') : ''}`);
check(ok > clients, `more answers (${ok}) than clients`);
check(second <= first * 1.1 + 16 * 2 ** 20,
      `RSS stops growing: peak ${(first / 2 ** 20).toFixed(1)} MiB in the first half, ${(second / 2 ** 20).toFixed(1)} MiB in the second`);
console.log(`  about ${(tokens / seconds).toFixed(0)} streamed pieces/s`);
// SIGTERM while a stream runs: the stream still ends with a finish_reason and [DONE], then the server exits 0
const running = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ stream: true, max_tokens: 200, messages: [{ role: 'user', content: 'Who are you?' }] }) });
const reader = running.body.getReader();
let streamed = new TextDecoder().decode((await reader.read()).value);
const exitP = stopServer(server);
for (let r = await reader.read(); !r.done; r = await reader.read()) streamed += new TextDecoder().decode(r.value);
check(streamed.endsWith('data: [DONE]\n\n') && /"finish_reason":"(stop|length)"/.test(streamed),
      'a stream running at SIGTERM ends cleanly with its finish_reason and [DONE]');
const exit = await exitP;
check(exit.code === 0 && !/AddressSanitizer|runtime error/.test(server.log), `the server stopped cleanly (exit ${exit.code})`);
done();
