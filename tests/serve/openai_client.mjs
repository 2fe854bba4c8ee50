// mitten serve through the official `openai` npm client, on the shipped tiny model:
//   node tests/serve/openai_client.mjs MITTEN_BINARY SOURCE_DIR
// Plain and streamed chat completions (the same text, OpenAI's chunk sequence, usage), an image as a data URL and
// two images, stop strings cut exactly, text completions, concurrency (each of N greedy streams gives the text it
// gives alone), and errors raised as the SDK's own types: bad key, body over the limit, unknown model, bad fields,
// a fetched URL, a full queue (429 with Retry-After), a prompt over the context. The answers are checked against
// `mitten run` on the same prompts.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';

import { check, done, startServer, stopServer } from './serve_lib.mjs';

const [mitten, src] = process.argv.slice(2);
const png = (name) => `data:image/png;base64,${readFileSync(`${src}/docs/${name}`).toString('base64')}`;
const run = (...args) => execFileSync(mitten, ['run', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

const KEY = 'sk-test-key';
const server = await startServer(mitten, ['--api-key', KEY, '--parallel', '4', '--max-body', '200000', '--ctx', '256']);
const client = new OpenAI({ baseURL: `${server.url}v1`, apiKey: KEY, maxRetries: 0 });
const model = 'mitten-tiny';

// ---- models
const models = await client.models.list();
check(models.data.length === 1 && models.data[0].id === model, `models.list gives ${model}`);

// ---- plain, streamed, the same answer as mitten run
const who = run('-p', 'Who are you?');
const plain = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Who are you?' }] });
check(plain.choices[0].message.content === who, `plain answer "${plain.choices[0].message.content}" is mitten run's "${who}"`);
check(plain.choices[0].finish_reason === 'stop' && plain.object === 'chat.completion', 'finish_reason stop');
check(plain.usage.prompt_tokens > 0 && plain.usage.completion_tokens > 0 &&
      plain.usage.total_tokens === plain.usage.prompt_tokens + plain.usage.completion_tokens, 'usage adds up');

const stream = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: 'Who are you?' }], stream: true, stream_options: { include_usage: true },
});
const chunks = [];
for await (const c of stream) chunks.push(c);
const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
check(text === who, `streamed text "${text}" is the plain answer`);
check(chunks[0].choices[0].delta.role === 'assistant', 'the first chunk gives the role');
const last = chunks[chunks.length - 2];
check(last.choices[0].finish_reason === 'stop', 'the last choice chunk has finish_reason stop');
const usage = chunks[chunks.length - 1];
check(usage.choices.length === 0 && usage.usage.completion_tokens === plain.usage.completion_tokens,
      'include_usage: a final chunk with usage and no choices');
check(chunks.every((c) => c.id === chunks[0].id && c.object === 'chat.completion.chunk'), 'one id for every chunk');

// ---- images
const colour = run('--image', `${src}/docs/tiny_example.png`, '-p', 'What colour is the shape?');
const img = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: [
    { type: 'image_url', image_url: { url: png('tiny_example.png') } },
    { type: 'text', text: 'What colour is the shape?' }] }],
});
check(img.choices[0].message.content === colour, `an image as a data URL: "${img.choices[0].message.content}" (mitten run: "${colour}")`);
const two = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: [
    { type: 'image_url', image_url: { url: png('tiny_example.png') } },
    { type: 'text', text: 'and' },
    { type: 'image_url', image_url: { url: png('tiny_example.png') } },
    { type: 'text', text: 'What colour is the shape?' }] }],
});
check(two.usage.prompt_tokens > img.usage.prompt_tokens + 5, `two images: ${two.usage.prompt_tokens} prompt tokens (one: ${img.usage.prompt_tokens})`);

// ---- stop strings: cut exactly, not shown
const cut = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Who are you?' }], stop: [' small', 'zzz'] });
check(cut.choices[0].message.content === who.slice(0, who.indexOf(' small')) && cut.choices[0].finish_reason === 'stop',
      `stop " small": "${cut.choices[0].message.content}"`);
const cutStream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Who are you?' }], stop: 'mitten-', stream: true });
let cutText = '';
for await (const c of cutStream) cutText += c.choices[0]?.delta?.content ?? '';
check(cutText === who.slice(0, who.indexOf('mitten-')), `streamed stop "mitten-": "${cutText}"`);

// ---- max_tokens
const short = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Who are you?' }], max_tokens: 3 });
check(short.usage.completion_tokens === 3 && short.choices[0].finish_reason === 'length', 'max_tokens 3: finish_reason length');

// ---- text completions
const comp = await client.completions.create({ model, prompt: '<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n', max_tokens: 40 });
check(comp.choices[0].text === who && comp.object === 'text_completion', `completions: "${comp.choices[0].text}"`);

// ---- concurrency: each stream alone and all at once give the same text
const questions = ['Who are you?', 'What colour is the shape?', 'How many shapes are there?', 'Describe the image.',
  'What shape is it?', 'Where is the shape?'];
const ask = async (q) => {
  const s = await client.chat.completions.create({
    model, stream: true, messages: [{ role: 'user', content: [
      { type: 'image_url', image_url: { url: png('tiny_example.png') } }, { type: 'text', text: q }] }],
  });
  let t = '';
  for await (const c of s) t += c.choices[0]?.delta?.content ?? '';
  return t;
};
const alone = [];
for (const q of questions) alone.push(await ask(q));
const together = await Promise.all(questions.map(ask));
check(together.every((t, i) => t === alone[i]), `${questions.length} concurrent streams give what each gives alone`);

// ---- errors, as the SDK's types
async function expectError(what, fn, cls, status) {
  try {
    await fn();
    check(false, `${what}: no error`);
  } catch (e) {
    check(e instanceof cls && (status === undefined || e.status === status),
          `${what}: ${e.constructor.name} ${e.status} "${e.message?.slice(0, 120)}"`);
  }
}
const bad = new OpenAI({ baseURL: `${server.url}v1`, apiKey: 'wrong', maxRetries: 0 });
await expectError('a wrong key', () => bad.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }),
  OpenAI.AuthenticationError, 401);
const big = 'A'.repeat(300000);
await expectError('a body over --max-body', () => client.chat.completions.create({ model, messages: [{ role: 'user', content: [
  { type: 'image_url', image_url: { url: `data:image/png;base64,${big}` } }] }] }), OpenAI.APIError, 413);
await expectError('an unknown model', () => client.chat.completions.create({ model: 'gpt-9', messages: [{ role: 'user', content: 'hi' }] }),
  OpenAI.NotFoundError, 404);
await expectError('an http image URL', () => client.chat.completions.create({ model, messages: [{ role: 'user', content: [
  { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] }), OpenAI.BadRequestError, 400);
await expectError('n = 2', () => client.chat.completions.create({ model, n: 2, messages: [{ role: 'user', content: 'hi' }] }),
  OpenAI.BadRequestError, 400);
await expectError('temperature 7', () => client.chat.completions.create({ model, temperature: 7, messages: [{ role: 'user', content: 'hi' }] }),
  OpenAI.BadRequestError, 400);
await expectError('a prompt over the context', () => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'word '.repeat(400) }] }),
  OpenAI.BadRequestError, 400);
await expectError('not an image', () => client.chat.completions.create({ model, messages: [{ role: 'user', content: [
  { type: 'image_url', image_url: { url: 'data:image/png;base64,aGVsbG8gd29ybGQ=' } }] }] }), OpenAI.BadRequestError, 400);
check((await client.models.list()).data.length === 1, 'still serving after the errors');
const code = await stopServer(server);
check(code.code === 0, `SIGTERM: exit ${code.code}`);

// ---- a full queue: 429 with Retry-After, as RateLimitError
const tight = await startServer(mitten, ['--parallel', '1', '--queue', '1']);
const tc = new OpenAI({ baseURL: `${tight.url}v1`, apiKey: 'none', maxRetries: 0 });
const slow = () => tc.chat.completions.create({ model, max_tokens: 200, temperature: 1, messages: [{ role: 'user', content: 'Tell a story.' }] })
  .then(() => 'ok', (e) => e);
const results = await Promise.all([slow(), slow(), slow(), slow(), slow()]);
const limited = results.filter((r) => r instanceof OpenAI.RateLimitError);
check(limited.length > 0 && limited.every((e) => e.headers?.get?.('retry-after') === '1'),
      `a full queue: ${limited.length} of 5 got 429 with Retry-After`);
check(results.some((r) => r === 'ok'), 'the others were answered');
await stopServer(tight);
done();
