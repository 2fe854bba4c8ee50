// video_url parts through the official `openai` npm client, on the shipped tiny model:
//   node tests/serve/video.mjs MITTEN_BINARY SOURCE_DIR WORK_DIR
// Clips made here with ffmpeg. A data:video/mp4 URL, a local file under --allow-files and an image with a video get
// the answers `mitten run --video` gives; the temporary copies of data URLs are gone afterwards (TMPDIR is private
// here). Refused with 400 naming the part, while the server keeps serving: a data URL that is not video/..., a
// truncated clip, a path outside --allow-files, an http URL, more videos than --max-videos.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import OpenAI from 'openai';

import { check, done, healthy, startServer, stopServer } from './serve_lib.mjs';

const [mitten, src, work] = process.argv.slice(2);
try {
  execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
} catch {
  console.log('SKIP: no ffmpeg command to make the clips');
  process.exit(77);
}
rmSync(work, { recursive: true, force: true });
const files = `${work}/files`, tmp = `${work}/tmp`;
mkdirSync(files, { recursive: true });
mkdirSync(tmp, { recursive: true });
const picture = `${src}/docs/tiny_example.png`;
const ffmpeg = (...args) => execFileSync('ffmpeg', ['-loglevel', 'error', '-y', ...args]);
const still = `${files}/still.mp4`, tinted = `${files}/tinted.mp4`, outside = `${work}/outside.mp4`;
ffmpeg('-loop', '1', '-i', picture, '-t', '2', '-r', '10', '-pix_fmt', 'yuv444p', '-c:v', 'libx264', still);
ffmpeg('-loop', '1', '-i', picture, '-t', '2', '-r', '10', '-vf', 'hue=h=120', '-pix_fmt', 'yuv444p', '-c:v', 'libx264', tinted);
writeFileSync(outside, readFileSync(still));
const bytes = readFileSync(still);
const truncated = bytes.subarray(0, Math.floor(bytes.length / 2));
const dataUrl = (b, type = 'video/mp4') => `data:${type};base64,${Buffer.from(b).toString('base64')}`;
const run = (...args) => execFileSync(mitten, ['run', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

process.env.TMPDIR = tmp; // the server inherits it: its temporary copies of data URLs go there
const server = await startServer(mitten, ['--allow-files', files, '--max-videos', '2']);
const client = new OpenAI({ baseURL: `${server.url}v1`, apiKey: 'none', maxRetries: 0 });
const model = 'mitten-tiny';
const Q = 'What colour is the shape?';
const ask = (parts) => client.chat.completions.create({ model, messages: [{ role: 'user', content: [...parts, { type: 'text', text: Q }] }] });
const video = (url) => ({ type: 'video_url', video_url: { url } });

// ---- answers as mitten run gives them
const want = run('--video', still, '-p', Q);
const got = await ask([video(dataUrl(bytes))]);
check(got.choices[0].message.content === want && want !== '', `a data:video/mp4 URL: "${got.choices[0].message.content}" (mitten run --video: "${want}")`);
const wantTinted = run('--video', tinted, '-p', Q);
const gotTinted = await ask([video(dataUrl(readFileSync(tinted)))]);
check(gotTinted.choices[0].message.content === wantTinted && wantTinted !== want,
      `a recoloured clip: "${gotTinted.choices[0].message.content}" (mitten run: "${wantTinted}")`);
const local = await ask([video(still)]);
check(local.choices[0].message.content === want, `a file under --allow-files: "${local.choices[0].message.content}"`);
const fileUrl = await ask([video(`file://${still}`)]);
check(fileUrl.choices[0].message.content === want, 'a file:// URL under --allow-files');
const wantBoth = run('--image', picture, '--video', tinted, '-p', Q);
const both = await ask([{ type: 'image_url', image_url: { url: dataUrl(readFileSync(picture), 'image/png') } }, video(tinted)]);
check(both.choices[0].message.content === wantBoth && both.usage.prompt_tokens > got.usage.prompt_tokens,
      `an image and a video: "${both.choices[0].message.content}" (mitten run: "${wantBoth}"), ${both.usage.prompt_tokens} prompt tokens`);
check(readdirSync(tmp).length === 0, `no temporary copy is left in TMPDIR (${readdirSync(tmp).join(', ')})`);

// ---- refusals: 400 naming the part, and the server goes on
async function refused(what, parts, param, text) {
  try {
    await ask(parts);
    check(false, `${what}: accepted`);
  } catch (e) {
    const ok = e.status === 400 && (e.param ?? e.error?.param ?? '').startsWith(param) && e.message.includes(text);
    check(ok, `${what}: ${e.status} ${e.error?.param ?? e.param} "${e.message}"`);
  }
  check(await healthy(server.url), `${what}: the server still serves`);
}
const p0 = 'messages[0].content[0].video_url';
await refused('a non-video data URL', [video(dataUrl(readFileSync(picture), 'image/png'))], p0, "type is not video/");
await refused('a truncated clip', [video(dataUrl(truncated))], p0, p0);
await refused('a path outside --allow-files', [video(outside)], p0, 'not a file under the --allow-files folder');
await refused('an http URL', [video('https://example.com/a.mp4')], p0, 'fetches nothing from the network');
await refused('three videos with --max-videos 2', [video(still), video(still), video(still)],
              'messages[0].content[2].video_url', 'at most 2 video(s) per request');
await refused('a missing file', [video(`${files}/nope.mp4`)], p0, 'no such file');
check(readdirSync(tmp).length === 0, 'no temporary copy is left after the refusals');
const again = await ask([video(dataUrl(bytes))]);
check(again.choices[0].message.content === want, 'after the refusals the same video gets the same answer');

const exit = await stopServer(server);
check(exit.code === 0, `the server stopped cleanly (${JSON.stringify(exit)})`);
done();
