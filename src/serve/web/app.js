// The chat page of `mitten serve`: talks to the OpenAI-compatible API of the same origin
// (GET v1/models, POST v1/chat/completions with stream:true) and renders the answers as Markdown.
'use strict';

const $ = (id) => document.getElementById(id);
const log = $('log'), prompt = $('prompt'), sendButton = $('send'), stopButton = $('stop');
const state = { model: null, history: [], images: [], controller: null };

// ---- Settings: kept in localStorage; the API key only in sessionStorage, so it does not outlive the tab.

const stored = { system: localStorage, temperature: localStorage, 'max-tokens': localStorage, 'api-key': sessionStorage };
for (const [id, store] of Object.entries(stored)) {
  $(id).value = store.getItem('mitten.' + id) ?? '';
  $(id).addEventListener('change', () => {
    store.setItem('mitten.' + id, $(id).value);
    if (id === 'api-key') loadModel();
  });
}
$('open-settings').addEventListener('click', () => $('settings').showModal());

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = $('api-key').value.trim();
  if (key) h.Authorization = 'Bearer ' + key;
  return h;
}

// An OpenAI error body is {error: {message, type, code}}; anything else is shown as it came.
async function errorText(res) {
  const body = await res.text();
  let detail = body.trim().slice(0, 500) || res.statusText;
  try {
    const e = JSON.parse(body).error;
    if (e && e.message) detail = e.message + (e.type ? ` (${e.type})` : '');
  } catch { /* not JSON: keep the text */ }
  return `HTTP ${res.status}: ${detail}`;
}

async function loadModel() {
  const label = $('model');
  try {
    const res = await fetch('v1/models', { headers: headers() });
    if (!res.ok) throw new Error(await errorText(res));
    const data = await res.json();
    state.model = data.data?.[0]?.id ?? null;
    label.textContent = state.model ?? 'no model';
    label.title = 'Model served';
  } catch (e) {
    state.model = null;
    label.textContent = 'model unavailable';
    label.title = e.message;
  }
}

// ---- Markdown: a small renderer for what models write. The whole text is HTML-escaped first, so every tag in
// the output was made here; links get an href only for http(s) URLs.

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ESC[c]);

// Code spans and links are set aside first so that `*` or `_` inside them is not read as emphasis.
function inline(s) {
  const kept = [];
  const keep = (html) => `\u0000${kept.push(html) - 1}\u0000`;
  s = s.replace(/(`+)(.+?)\1/g, (_, tick, code) => keep(`<code>${code.trim()}</code>`));
  s = s.replace(/\[([^\]]+)\]\(((?:[^()\s]|\([^()\s]*\))+)\)/g, (_, text, url) =>
    /^https?:\/\//i.test(url) ? keep(`<a href="${url}" target="_blank" rel="noopener noreferrer">${text}</a>`) : text);
  s = s.replace(/(\*\*|__)(?=\S)(.+?)(?<=\S)\1/g, '<strong>$2</strong>');
  s = s.replace(/\*(?=\S)(.+?)(?<=\S)\*/g, '<em>$1</em>');
  s = s.replace(/(^|\W)_(?=\S)(.+?)(?<=\S)_(?!\w)/g, '$1<em>$2</em>');
  s = s.replace(/~~(?=\S)(.+?)(?<=\S)~~/g, '<del>$1</del>');
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => kept[i]);
}

const FENCE = /^\s*(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^\s*&gt;\s?/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
const startsBlock = (line) => FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
const indentOf = (line) => line.match(/^\s*/)[0].length;

function codeBlock(code, lang) {
  return `<div class="code"><div class="code-head"><span>${lang}</span>` +
    `<button type="button" class="copy">Copy</button></div><pre><code>${code}</code></pre></div>`;
}

const cells = (row) => row.trim().replace(/^\||\|$/g, '').split('|').map((c) => inline(c.trim()));

// Items of one list: lines indented past the marker belong to the item above (nested lists, continued text).
function list(lines, i, out) {
  const [, indent, marker] = lines[i].match(ITEM);
  const ordered = /\d/.test(marker);
  const contentIndent = indent.length + marker.length + 1;
  const items = [];
  while (i < lines.length) {
    const m = lines[i].match(ITEM);
    if (m && m[1].length === indent.length && /\d/.test(m[2]) === ordered) {
      items.push({ first: m[3], rest: [] });
    } else if (lines[i].trim() && indentOf(lines[i]) > indent.length) {
      items.at(-1).rest.push(lines[i].slice(Math.min(indentOf(lines[i]), contentIndent)));
    } else if (!lines[i].trim() && (lines[i + 1] ?? '').match(ITEM)?.[1].length >= indent.length) {
      // a blank line between items keeps the list going
    } else break;
    i++;
  }
  const start = ordered && parseInt(marker) !== 1 ? ` start="${parseInt(marker)}"` : '';
  const tag = ordered ? 'ol' : 'ul';
  out.push(`<${tag}${start}>` + items.map((it) => `<li>${inline(it.first)}${it.rest.length ? blocks(it.rest) : ''}</li>`).join('') + `</${tag}>`);
  return i;
}

function blocks(lines) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if ((m = line.match(FENCE))) {
      const body = [];
      for (i++; i < lines.length && !lines[i].trim().startsWith(m[1]); i++) body.push(lines[i]);
      out.push(codeBlock(body.join('\n'), m[2]));
      i++;
    } else if ((m = line.match(HEADING))) {
      out.push(`<h${m[1].length}>${inline(m[2])}</h${m[1].length}>`);
      i++;
    } else if (RULE.test(line)) {
      out.push('<hr>');
      i++;
    } else if (QUOTE.test(line)) {
      const body = [];
      for (; i < lines.length && QUOTE.test(lines[i]); i++) body.push(lines[i].replace(QUOTE, ''));
      out.push(`<blockquote>${blocks(body)}</blockquote>`);
    } else if (ITEM.test(line)) {
      i = list(lines, i, out);
    } else if (line.includes('|') && TABLE_SEP.test(lines[i + 1] ?? '') && lines[i + 1].includes('|')) {
      const head = cells(line);
      const rows = [];
      for (i += 2; i < lines.length && lines[i].includes('|'); i++) rows.push(cells(lines[i]));
      out.push(`<table><thead><tr>${head.map((c) => `<th>${c}</th>`).join('')}</tr></thead><tbody>` +
        rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('') + '</tbody></table>');
    } else if (!line.trim()) {
      i++;
    } else {
      const para = [];
      for (; i < lines.length && lines[i].trim() && (para.length === 0 || !startsBlock(lines[i])); i++) para.push(lines[i].trim());
      out.push(`<p>${inline(para.join('\n')).replace(/\n/g, '<br>')}</p>`);
    }
  }
  return out.join('');
}

const markdown = (text) => blocks(escapeHtml(text.replace(/\u0000/g, '')).split('\n'));

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  // Pages served over plain http to another machine have no clipboard API.
  const area = Object.assign(document.createElement('textarea'), { value: text });
  document.body.append(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

log.addEventListener('click', async (e) => {
  const button = e.target.closest('button.copy');
  if (!button) return;
  try {
    await copyText(button.closest('.code').querySelector('code').textContent);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed';
  }
  setTimeout(() => { button.textContent = 'Copy'; }, 1500);
});

// ---- Conversation view

// Runs change() and keeps the view at the end of the conversation if it was there (else leaves the reader be).
function keepingBottom(change) {
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  const result = change();
  if (atEnd) log.scrollTop = log.scrollHeight;
  return result;
}

function addMessage(role, text = '', images = []) {
  $('empty')?.remove();
  const msg = document.createElement('article');
  msg.className = 'msg ' + role;
  const who = document.createElement('p');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : role === 'error' ? 'Error' : state.model ?? 'Assistant';
  msg.append(who);
  if (images.length) {
    const row = document.createElement('div');
    row.className = 'images';
    for (const img of images) row.append(Object.assign(new Image(), { src: img.url, alt: img.name }));
    msg.append(row);
  }
  const content = document.createElement('div');
  content.className = role === 'assistant' ? 'content md' : 'content';
  content.textContent = text;
  msg.append(content);
  keepingBottom(() => log.append(msg));
  return msg;
}

function showAnswer(msg, text) {
  keepingBottom(() => { msg.querySelector('.content').innerHTML = markdown(text); });
}

function setStats(msg, text) {
  const p = Object.assign(document.createElement('p'), { className: 'stats', textContent: text });
  keepingBottom(() => msg.append(p));
}

// Speed of generation: the tokens after the first over the time since the first arrived, so the prompt's
// processing time (shown apart as "first token after") does not count. Without usage (a stopped answer) each
// streamed chunk counts as one token, marked "≈".
function statsText(t) {
  const tokens = t.usage?.completion_tokens ?? t.chunks;
  const approx = t.usage?.completion_tokens == null ? '≈' : '';
  const span = (t.last - t.first) / 1000;
  const rate = tokens > 1 && span > 0 ? (tokens - 1) / span : tokens / Math.max((t.last - t.start) / 1000, 1e-3);
  const parts = [`${approx}${tokens} token${tokens === 1 ? '' : 's'}`, `${approx}${rate.toFixed(1)} tokens/s`,
    `first token after ${((t.first - t.start) / 1000).toFixed(2)} s`];
  if (t.stopped) parts.push('stopped');
  else if (t.finish === 'length') parts.push('max tokens reached');
  return parts.join(' · ');
}

// ---- Streaming: the data lines of an SSE response, as OpenAI sends them.

async function* sseData(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('data:')) yield line.slice(5).trim();
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function request(history) {
  const system = $('system').value.trim();
  const body = {
    messages: [...(system ? [{ role: 'system', content: system }] : []), ...history],
    stream: true,
    stream_options: { include_usage: true },
  };
  if (state.model) body.model = state.model;
  if ($('temperature').value !== '') body.temperature = Number($('temperature').value);
  if ($('max-tokens').value !== '') body.max_tokens = parseInt($('max-tokens').value, 10);
  return body;
}

// Focus stays in the prompt, so that a second Enter never lands on the stop button.
function setBusy(busy) {
  const lost = document.activeElement === sendButton || document.activeElement === stopButton;
  sendButton.hidden = busy;
  stopButton.hidden = !busy;
  if (lost) prompt.focus();
}

async function answer() {
  const history = state.history;
  const msg = addMessage('assistant');
  msg.setAttribute('aria-busy', 'true');
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const t = { start: performance.now(), first: 0, last: 0, chunks: 0, usage: null, finish: null, stopped: false };
  let text = '', error = null, frame = 0;
  try {
    const res = await fetch('v1/chat/completions', {
      method: 'POST', headers: headers(), body: JSON.stringify(request(history)), signal: controller.signal,
    });
    if (!res.ok) throw new Error(await errorText(res));
    for await (const data of sseData(res.body)) {
      if (data === '[DONE]') break;
      let chunk;
      try {
        chunk = JSON.parse(data);
      } catch {
        throw new Error(`the server sent a stream line that is not JSON: ${data.slice(0, 200)}`);
      }
      if (chunk.error) throw new Error(chunk.error.message ?? JSON.stringify(chunk.error));
      if (chunk.usage) t.usage = chunk.usage;
      const choice = chunk.choices?.[0];
      if (choice?.finish_reason) t.finish = choice.finish_reason;
      if (choice?.delta?.content) {
        t.last = performance.now();
        t.first ||= t.last;
        t.chunks++;
        text += choice.delta.content;
        frame ||= requestAnimationFrame(() => { frame = 0; showAnswer(msg, text); });
      }
    }
  } catch (e) {
    if (e.name === 'AbortError') t.stopped = true;
    else error = e instanceof TypeError ? `cannot reach the server (${e.message})` : e.message;
  }
  cancelAnimationFrame(frame);
  state.controller = null;
  msg.removeAttribute('aria-busy');
  setBusy(false);
  if (history !== state.history) return; // "New chat" was pressed meanwhile
  if (text) {
    showAnswer(msg, text);
    setStats(msg, statsText(t));
    history.push({ role: 'assistant', content: text });
  } else {
    // Nothing came back: the question leaves the history, so the next one is not sent after it unanswered.
    msg.remove();
    history.pop();
    if (t.stopped) addMessage('error', 'Stopped before the first token.');
  }
  if (error) addMessage('error', error);
}

async function send() {
  const text = prompt.value.trim();
  if (state.controller || (!text && !state.images.length)) return;
  const content = state.images.length
    ? [...state.images.map((img) => ({ type: 'image_url', image_url: { url: img.url } })),
      ...(text ? [{ type: 'text', text }] : [])]
    : text;
  state.history.push({ role: 'user', content });
  addMessage('user', text, state.images);
  prompt.value = '';
  state.images = [];
  showAttachments();
  await answer();
}

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  send();
});
prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
stopButton.addEventListener('click', () => state.controller?.abort());
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && state.controller && !$('settings').open) state.controller.abort();
});
$('new-chat').addEventListener('click', () => {
  state.controller?.abort();
  state.history = [];
  log.replaceChildren(Object.assign(document.createElement('p'), {
    id: 'empty', className: 'empty', textContent: 'New conversation.',
  }));
  prompt.focus();
});

// ---- Images: attached by the file button, pasted, or dropped anywhere on the page; sent as data URLs.

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function attach(files) {
  for (const file of files) {
    const name = file.name || 'pasted image';
    if (!file.type.startsWith('image/')) {
      addMessage('error', `${name}: not an image (${file.type || 'unknown type'}), not attached.`);
      continue;
    }
    try {
      state.images.push({ name, url: await readAsDataUrl(file) });
    } catch (e) {
      addMessage('error', `${name}: cannot be read (${e.message}).`);
    }
  }
  showAttachments();
}

function showAttachments() {
  const list = $('attachments');
  list.replaceChildren(...state.images.map((img, i) => {
    const li = document.createElement('li');
    const remove = Object.assign(document.createElement('button'), { type: 'button', textContent: '×' });
    remove.setAttribute('aria-label', `Remove ${img.name}`);
    remove.addEventListener('click', () => {
      state.images.splice(i, 1);
      showAttachments();
      prompt.focus();
    });
    li.append(Object.assign(new Image(), { src: img.url, alt: img.name }), remove);
    return li;
  }));
}

$('file').addEventListener('change', async (e) => {
  await attach([...e.target.files]);
  e.target.value = '';
});
prompt.addEventListener('paste', (e) => {
  const files = [...e.clipboardData.files].filter((f) => f.type.startsWith('image/'));
  if (files.length) attach(files);
});
let dragDepth = 0;
document.addEventListener('dragenter', (e) => {
  if (!e.dataTransfer.types.includes('Files')) return;
  dragDepth++;
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => {
  if (dragDepth > 0 && --dragDepth === 0) document.body.classList.remove('dragging');
});
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  document.body.classList.remove('dragging');
  if (e.dataTransfer.files.length) attach([...e.dataTransfer.files]);
});

loadModel();
prompt.focus();
