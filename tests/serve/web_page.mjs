// The chat page in a real browser (playwright-core driving Debian's chromium):
//   node tests/serve/web_page.mjs <base-url | mock | mitten=BINARY> <screenshot.png>
// Opens the page, attaches docs/example.png through the file input, asks, waits for streamed text, presses stop,
// checks the tokens/s line, and saves <screenshot.png> and <screenshot>-narrow.png (a 360 px wide phone). Any
// server works: `mitten serve`'s URL, "mitten=BINARY" to start `BINARY serve` on the shipped model here, or "mock" for tests/serve/mock_server.mjs started here, which also lets the
// test check what the page sent (image bytes, settings, key, history, the hang-up on stop), the Markdown, an error
// answer, and the copy button. Fails when playwright-core or chromium is missing (setup installs both); MT_CHROMIUM names
// another browser binary, MT_API_KEY the key a real server asks for.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './serve_lib.mjs';

const [target, shot] = process.argv.slice(2);
if (!target || !shot || !shot.endsWith('.png')) {
  console.error('usage: node web_page.mjs <base-url | mock | mitten=BINARY> <screenshot.png>');
  process.exit(2);
}
const imagePath = fileURLToPath(new URL('../../docs/example.png', import.meta.url));
const { startMock, ANSWER } = target === 'mock' ? await import('./mock_server.mjs') : {};
const mock = startMock ? await startMock() : null;
const serve = target.startsWith('mitten=') ? await import('./serve_lib.mjs') : null;
const real = serve ? await serve.startServer(target.slice(7), []) : null;
const base = mock ? mock.url : real ? real.url : target.replace(/\/?$/, '/');
const origin = new URL(base).origin;
const png = readFileSync(imagePath).toString('base64');

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}

const browser = await launchChromium();
const context = await browser.newContext({ viewport: { width: 1100, height: 850 } });
if (process.env.MT_API_KEY && !mock) {
  await context.addInitScript((key) => sessionStorage.setItem('mitten.api-key', key), process.env.MT_API_KEY);
}
const page = await context.newPage();
const foreign = [];
const pageErrors = [];
page.on('request', (r) => { if (!/^(data|blob):/.test(r.url()) && new URL(r.url()).origin !== origin) foreign.push(r.url()); });
page.on('pageerror', (e) => pageErrors.push(e.message));
const assistant = page.locator('.msg.assistant');
const lastAnswer = () => assistant.last();

try {
  await page.goto(base);
  await page.waitForFunction(() => !['…', ''].includes(document.getElementById('model').textContent));
  const model = await page.locator('#model').textContent();
  check(model !== 'model unavailable', `model shown in the header: ${model}`);
  if (mock) check(model === 'mock-model', 'the model id is data[0].id of /v1/models');

  if (mock) {
    await page.click('#open-settings');
    await page.fill('#system', 'You are terse.');
    await page.fill('#temperature', '0.3');
    await page.fill('#max-tokens', '64');
    await page.fill('#api-key', 'sekrit');
    await page.click('#settings button.primary');
    check(!(await page.locator('#settings').evaluate((d) => d.open)), 'the settings dialog closes');
  }

  // Ask about the picture, then stop the answer once text has streamed in.
  await page.setInputFiles('#file', imagePath);
  await page.locator('#attachments img').waitFor();
  check(await page.locator('#attachments img').count() === 1, 'the attached image is previewed');
  await page.fill('#prompt', 'What is in this picture?');
  await page.press('#prompt', 'Enter');
  check(await page.locator('.msg.user .images img').count() === 1, 'the question shows its image');
  check(await page.locator('#attachments img').count() === 0, 'the attachments are cleared once sent');
  await page.waitForFunction(() => {
    const answers = document.querySelectorAll('.msg.assistant .content');
    return answers.length && answers[answers.length - 1].textContent.trim().length > 0;
  }, null, { timeout: 60000 });
  check(true, 'streamed text appears');
  const stop = page.locator('#stop');
  // Only the mock streams slowly enough for the page's streaming state to be checked and stopped: the real tiny
  // model may finish between any two checks (it did, under a loaded test run).
  const stoppable = mock ? await stop.isVisible() : false;
  if (stoppable) {
    check(!(await page.locator('#send').isVisible()), 'stop replaces send while streaming');
    check(await lastAnswer().getAttribute('aria-busy') === 'true', 'the answer is marked busy while streaming');
    if (mock) {
      await lastAnswer().locator('strong').waitFor();
      check(true, 'Markdown renders while streaming');
    }
    await stop.click();
  }
  await lastAnswer().locator('.stats').waitFor({ timeout: 60000 });
  const stats = await lastAnswer().locator('.stats').textContent();
  check(/[\d.]+ tokens\/s/.test(stats), `tokens/s shown: ${stats}`);
  check(await page.locator('#send').isVisible() && !(await stop.isVisible()), 'send is back after the answer, stop gone');
  await page.screenshot({ path: shot });

  if (mock) {
    const first = mock.requests[0];
    const body = first.body;
    const user = body.messages.at(-1);
    check(stoppable && stats.includes('stopped'), 'stop ends the answer and says so');
    await new Promise((resolve) => setTimeout(resolve, 300));
    check(first.aborted && first.chunksSent < ANSWER.length, `the server saw the client hang up after ${first.chunksSent} chunks`);
    check(body.stream === true && body.stream_options?.include_usage === true, 'stream with usage requested');
    check(body.model === 'mock-model', 'the model id is sent');
    check(body.temperature === 0.3 && body.max_tokens === 64, 'temperature and max_tokens sent');
    check(body.messages[0].role === 'system' && body.messages[0].content === 'You are terse.', 'system prompt first');
    check(first.authorization === 'Bearer sekrit', 'API key sent as a Bearer token');
    check(Array.isArray(user.content) && user.content[0].type === 'image_url' &&
      user.content[0].image_url.url === `data:image/png;base64,${png}`, 'the image is sent byte for byte as a data URL');
    check(user.content[1]?.type === 'text' && user.content[1].text === 'What is in this picture?', 'the question text');

    // A whole answer: Markdown, usage-based speed, the copy button; the history goes with the next question.
    await page.fill('#prompt', 'A quick one');
    await page.click('#send');
    await page.locator('.msg.assistant >> nth=1 >> .stats').waitFor();
    const second = mock.requests[1].body.messages;
    check(second.length === 4 && second[2].role === 'assistant' && second[2].content.length > 0,
      'the stopped answer stays in the history');
    const answer = lastAnswer();
    const answerStats = await answer.locator('.stats').textContent();
    check(/^17 tokens · [\d.]+ tokens\/s/.test(answerStats), `speed from usage: ${answerStats}`);
    check(await answer.locator('h2').textContent() === 'A house', 'heading');
    check(await answer.locator('strong').textContent() === 'a red house', 'bold');
    check(await answer.locator('em').textContent() === 'yellow sun', 'italic');
    check(await answer.locator('p code').textContent() === 'code', 'inline code');
    check(await answer.locator('del').textContent() === 'no', 'strikethrough');
    check(await answer.locator('ul > li').count() === 2 && await answer.locator('ul ol > li').textContent() === 'nested', 'lists, nested');
    check(await answer.locator('pre code').textContent() === 'console.log("<b>hi</b>" && 1);', 'fenced code as text');
    check(await answer.locator('td').first().textContent() === 'roof', 'table');
    check(await answer.locator('blockquote').textContent() === 'quoted', 'blockquote');
    const links = await answer.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    check(links.length === 1 && links[0] === 'https://example.com/a_b_c?x=1&y=2', `only the http(s) link has an href: ${links}`);
    check((await answer.textContent()).includes('or this. <img src=x onerror='), 'a javascript: link is its text');
    check(await answer.locator('img, script').count() === 0 && !(await page.evaluate(() => window.pwned)),
      'HTML in the answer stays text');
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
    await answer.locator('button.copy').click();
    await page.waitForFunction(() => [...document.querySelectorAll('button.copy')].some((b) => b.textContent !== 'Copy'));
    const copied = await answer.locator('button.copy').textContent();
    check(copied === 'Copied', `copy button answers: ${copied}`);
    check(await page.evaluate(() => navigator.clipboard.readText()) === 'console.log("<b>hi</b>" && 1);',
      'the code is on the clipboard');

    await page.fill('#prompt', 'please fail');
    await page.click('#send');
    const error = page.locator('.msg.error');
    await error.waitFor();
    const errorText = await error.textContent();
    check(errorText.includes('HTTP 400') && errorText.includes('mock failure on request'), `error shown: ${errorText}`);
    check(mock.requests[2].body.messages.length === 6, 'the history holds both answered turns');
    await page.fill('#prompt', 'quick again');
    await page.click('#send');
    await page.locator('.msg.assistant >> nth=2 >> .stats').waitFor();
    const fourth = mock.requests[3].body.messages;
    check(fourth.length === 6 && fourth[5].content === 'quick again' && !JSON.stringify(fourth).includes('please fail'),
      'the failed question left the history');
  }

  // Drag and drop, and paste, as the browser delivers them (a DataTransfer of files).
  await page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const files = (...list) => {
      const dt = new DataTransfer();
      for (const f of list) dt.items.add(f);
      return dt;
    };
    const image = (name) => new File([bytes], name, { type: 'image/png' });
    const log = document.getElementById('log');
    log.dispatchEvent(new DragEvent('dragenter', { dataTransfer: files(image('x.png')), bubbles: true }));
    window.dragShown = document.body.classList.contains('dragging');
    log.dispatchEvent(new DragEvent('drop', {
      dataTransfer: files(image('dropped.png'), new File(['hello'], 'notes.txt', { type: 'text/plain' })),
      bubbles: true, cancelable: true,
    }));
    document.getElementById('prompt').dispatchEvent(new ClipboardEvent('paste', {
      clipboardData: files(image('pasted.png')), bubbles: true, cancelable: true,
    }));
  }, png);
  await page.locator('#attachments img >> nth=1').waitFor();
  check(await page.evaluate(() => window.dragShown && !document.body.classList.contains('dragging')),
    'dragging over the page shows the drop hint until the drop');
  const alts = await page.locator('#attachments img').evaluateAll((imgs) => imgs.map((i) => i.alt));
  check(alts.join() === 'dropped.png,pasted.png', `dropped and pasted images previewed: ${alts}`);
  check((await page.locator('.msg.error').last().textContent()).includes('notes.txt: not an image'),
    'a dropped non-image is refused, naming it');
  await page.click('#attachments button[aria-label="Remove dropped.png"]');
  check(await page.locator('#attachments img').count() === 1, 'an attachment can be removed');

  await page.setViewportSize({ width: 360, height: 740 });
  const fit = await page.evaluate(() => {
    const send = document.getElementById('send').getBoundingClientRect();
    return { width: document.documentElement.scrollWidth, view: innerWidth, sendRight: send.right, sendBottom: send.bottom };
  });
  check(fit.width <= fit.view && fit.sendRight <= fit.view && fit.sendBottom <= 740,
    `fits 360 px: page ${fit.width} px wide, send at ${fit.sendRight},${fit.sendBottom}`);
  await page.screenshot({ path: shot.replace(/\.png$/, '-narrow.png') });
  check(foreign.length === 0, `nothing loaded from elsewhere${foreign.length ? ': ' + foreign.join(' ') : ''}`);
  check(pageErrors.length === 0, `no script errors${pageErrors.length ? ': ' + pageErrors.join('; ') : ''}`);
} catch (e) {
  console.error(`FAIL ${e.message}`);
  failures++;
  await page.screenshot({ path: shot }).catch(() => {});
} finally {
  await browser.close();
  await mock?.close();
  if (real) await serve.stopServer(real);
}
console.log(failures ? `${failures} failed; screenshot ${shot}` : `all passed; screenshot ${shot}`);
process.exit(failures ? 1 : 0);
