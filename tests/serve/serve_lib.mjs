// What the serve tests share: starting `mitten serve` on a free port, a check counter, raw HTTP.
import { spawn } from 'node:child_process';
import net from 'node:net';

let failures = 0;
export function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}
export function done() {
  if (failures) console.log(`${failures} checks failed`);
  process.exit(failures ? 1 : 0);
}

// Starts mitten serve with args (port 0: a free one) and resolves once it listens; the log is kept in .log.
export function startServer(mitten, args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(mitten, ['serve', '--port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const server = { proc, log: '', url: null, exited: null };
    proc.stderr.on('data', (d) => {
      server.log += d.toString();
      const m = /listening on (http:\/\/[^ ]+\/)/.exec(server.log);
      if (m && !server.url) {
        server.url = m[1];
        resolve(server);
      }
    });
    proc.on('exit', (code, signal) => {
      server.exited = { code, signal };
      if (!server.url) reject(new Error(`mitten serve exited (${code}): ${server.log}`));
    });
  });
}

export function stopServer(server, signal = 'SIGTERM') {
  return new Promise((resolve) => {
    if (server.exited) return resolve(server.exited);
    server.proc.on('exit', (code, sig) => resolve({ code, signal: sig }));
    server.proc.kill(signal);
  });
}

// Sends raw bytes to host:port and resolves with everything the server sent back before closing (or after ms).
export function rawRequest(url, bytes, { ms = 5000, closeAfterSend = false } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname);
    let got = '';
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ text: got, closedByServer: false });
    }, ms);
    sock.on('connect', () => {
      sock.write(bytes);
      if (closeAfterSend) sock.end();
    });
    sock.on('data', (d) => (got += d.toString()));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ text: got, closedByServer: true });
    });
    sock.on('error', () => {});
  });
}

export function status(text) {
  const m = /^HTTP\/1\.[01] (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

export async function healthy(url) {
  try {
    const r = await fetch(new URL('health', url));
    return r.status === 200;
  } catch {
    return false;
  }
}

// Debian's chromium through playwright-core, or exit 1 naming what is missing (scripts/setup.sh installs both);
// MT_CHROMIUM names another browser.
export async function launchChromium() {
  const { existsSync } = await import('node:fs');
  const path = process.env.MT_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(path)) {
    console.error(`FAIL: no browser at ${path} (apt-get install chromium, or set MT_CHROMIUM)`);
    process.exit(1);
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    console.error('FAIL: playwright-core is not installed (npm install in the source folder)');
    process.exit(1);
  }
  return chromium.launch({ executablePath: path, args: ['--no-sandbox'] });
}
