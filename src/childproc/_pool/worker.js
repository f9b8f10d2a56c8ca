'use strict';
// The Node side of a childproc ProcessPool: `node worker.js <module>`,
// forked with a JSON channel.  It loads the user's module and answers
// {id, fn, args} with {id, result} or {id, error: {name, message, stack}},
// one task at a time and in arrival order (a pool worker runs one task at
// a time, so a timeout or a crash is about exactly one task); promises are
// awaited.  {ready: pid} comes first, once the module loaded.
const path = require('path');
const { pathToFileURL } = require('url');

const target = path.resolve(process.argv[2] || '');

function errorOf(e) {
  if (e instanceof Error) {
    return { name: e.name || 'Error', message: String(e.message), stack: String(e.stack || '') };
  }
  return { name: typeof e, message: String(e), stack: '' };
}

async function load() {
  try {
    return require(target);
  } catch (e) {
    if (e && e.code === 'ERR_REQUIRE_ESM') return import(pathToFileURL(target).href);
    throw e;
  }
}

function lookup(mod, name) {
  let fn;
  if (name === null || name === undefined || name === 'default') {
    fn = typeof mod === 'function' ? mod : mod && mod.default;
  } else {
    fn = mod ? mod[name] : undefined;
    if (fn === undefined && mod && mod.default && typeof mod.default === 'object') fn = mod.default[name];
  }
  if (typeof fn !== 'function') throw new TypeError(`${name} is not a function exported by ${target}`);
  return fn;
}

function reply(message) {
  try {
    process.send(message);
  } catch (e) {
    // A result JSON cannot carry (a BigInt, a cycle): the task fails, the worker goes on.
    process.send({ id: message.id, error: errorOf(e) });
  }
}

async function serve(mod) {
  const queue = [];
  let running = false;
  async function drain() {
    running = true;
    while (queue.length) {
      const msg = queue.shift();
      try {
        const value = await lookup(mod, msg.fn)(...(Array.isArray(msg.args) ? msg.args : []));
        reply({ id: msg.id, result: value === undefined ? null : value });
      } catch (e) {
        reply({ id: msg.id, error: errorOf(e) });
      }
    }
    running = false;
  }
  process.on('message', (msg) => {
    if (msg === null || typeof msg !== 'object' || !('id' in msg)) return;
    queue.push(msg);
    if (!running) drain();
  });
  process.send({ ready: process.pid });
}

load().then(serve, (e) => {
  process.stderr.write(`childproc pool worker: cannot load ${target}\n${(e && e.stack) || e}\n`);
  process.exit(70);
});
