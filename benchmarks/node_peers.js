// node_peers.js - the Node peers of the async workloads of compare.
//
//   node node_peers.js MODE OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB [ARGS...]
//
// Same protocol as node_spawn.js (WARMUP_OPS untimed ops or WARMUP_MS,
// whichever ends first, then up to OPS timed ops, stopping once MAX_MS have
// passed; BALLAST_MIB > 0 first fills a Buffer that big), with MODE first:
//
//   spawn PROGRAM [ARGS...]       spawn(PROGRAM, ARGS) with default options
//                                 (stdio: three pipes), wait for 'close'
//   data EXPECTED PROGRAM [ARGS]  spawn, count bytes in child.stdout.on('data'),
//                                 wait for 'close'; EXPECTED bytes or it fails
//   concurrent COUNT PROGRAM [ARGS]
//                                 COUNT spawns with stdio 'ignore', all at
//                                 once, then wait for every 'exit'
//   exec-buffer EXPECTED COMMAND  exec(COMMAND, {encoding: 'buffer', maxBuffer: Infinity})
//   exec-utf8 EXPECTED COMMAND    exec(COMMAND, {maxBuffer: Infinity}) (strings)
//   ipc-roundtrip COUNT           fork(ipc_pong.js) once per batch; one op =
//                                 COUNT send/'message' ping-pongs of a small object
//   ipc-oneway COUNT              fork(ipc_sink.js) once per batch; one op =
//                                 COUNT sends, then 'end', answered with the count
//   fork-first                    fork(ipc_first.js); the op's time is fork()
//                                 to the child's first 'message' (the wait for
//                                 its exit is not timed)
//
// Each op is a Promise; ops run one after another.  Prints one JSON line:
//   {"samples_ns":[...],"rss_kib":N,"base_rss_kib":N,"hwm_kib":N,"failures":0}
'use strict';
const { spawn, exec, fork } = require('child_process');

// compare's two-CPU workloads: the child runs on BENCH_CHILD_CPU.  Node
// cannot set its own affinity, so the child starts through taskset, which
// execs node with the channel fd and environment untouched.
function childCpuOptions() {
  const cpu = process.env.BENCH_CHILD_CPU;
  return cpu ? { execPath: 'taskset', execArgv: ['-c', cpu, process.execPath] } : {};
}
const fs = require('fs');
const path = require('path');

const mode = process.argv[2];
const [ops, maxMs, warmupOps, warmupMs, ballastMib] = process.argv.slice(3, 8).map(Number);
const args = process.argv.slice(8);
const now = process.hrtime.bigint;
const MSG = { seq: 1, cmd: 'ping', ok: true, data: 'hello' };

function statusKib(key) {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${key}:\\s+(\\d+)`, 'm'));
  return m ? Number(m[1]) : -1;
}

const closed = (child) =>
  new Promise((resolve) => {
    child.on('error', () => resolve(-1));
    child.on('close', (code) => resolve(code));
  });

// Each factory returns op(): Promise<true | false | {ok, ns}>, and optionally op.close().
const modes = {
  spawn() {
    const [program, ...rest] = args;
    return async () => (await closed(spawn(program, rest))) === 0;
  },
  data() {
    const [expected, program, ...rest] = args;
    return async () => {
      const child = spawn(program, rest);
      let n = 0;
      child.stdout.on('data', (chunk) => {
        n += chunk.length;
      });
      return (await closed(child)) === 0 && n === Number(expected);
    };
  },
  concurrent() {
    const [count, program, ...rest] = args;
    return async () => {
      const exits = [];
      for (let i = 0; i < Number(count); i++) {
        const child = spawn(program, rest, { stdio: 'ignore' });
        exits.push(
          new Promise((resolve) => {
            child.on('error', () => resolve(-1));
            child.on('exit', (code) => resolve(code));
          })
        );
      }
      return (await Promise.all(exits)).every((c) => c === 0);
    };
  },
  'exec-buffer'() {
    const [expected, command] = args;
    return () =>
      new Promise((resolve) =>
        exec(command, { encoding: 'buffer', maxBuffer: Infinity }, (err, stdout) =>
          resolve(!err && stdout.length === Number(expected))
        )
      );
  },
  'exec-utf8'() {
    const [expected, command] = args;
    return () =>
      new Promise((resolve) =>
        exec(command, { maxBuffer: Infinity }, (err, stdout) =>
          resolve(!err && typeof stdout === 'string' && stdout.length === Number(expected))
        )
      );
  },
  'ipc-roundtrip'() {
    const count = Number(args[0]);
    const child = fork(path.join(__dirname, 'ipc_pong.js'), [], childCpuOptions());
    const op = () =>
      new Promise((resolve) => {
        let i = 0;
        const onMessage = (m) => {
          if (m.seq !== 1) {
            child.off('message', onMessage);
            resolve(false);
          } else if (++i === count) {
            child.off('message', onMessage);
            resolve(true);
          } else {
            child.send(MSG);
          }
        };
        child.on('message', onMessage);
        child.send(MSG);
      });
    op.close = () => child.disconnect();
    return op;
  },
  'ipc-oneway'() {
    const count = Number(args[0]);
    const child = fork(path.join(__dirname, 'ipc_sink.js'), [], childCpuOptions());
    const op = () =>
      new Promise((resolve) => {
        child.once('message', (n) => resolve(n === count));
        for (let i = 0; i < count; i++) child.send(MSG);
        child.send('end');
      });
    op.close = () => child.disconnect();
    return op;
  },
  'fork-first'() {
    const script = path.join(__dirname, 'ipc_first.js');
    return () =>
      new Promise((resolve) => {
        const t0 = now();
        let ns = null;
        const child = fork(script);
        child.once('message', () => {
          ns = Number(now() - t0);
        });
        child.on('error', () => resolve(false));
        child.on('exit', (code) => resolve({ ok: code === 0 && ns !== null, ns }));
      });
  },
};

async function main() {
  let ballast = null;
  if (ballastMib > 0) {
    ballast = Buffer.alloc(ballastMib * 1024 * 1024);
    ballast.fill(1);
  }
  if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
  const op = modes[mode]();
  const baseRss = statusKib('VmRSS');
  let failures = 0;
  const run = async () => {
    const t0 = now();
    const r = await op();
    const t1 = now();
    if (r !== null && typeof r === 'object') return [r.ok, r.ns];
    return [r, Number(t1 - t0)];
  };
  const warmEnd = now() + BigInt(Math.round(warmupMs * 1e6));
  for (let i = 0; i < warmupOps && now() < warmEnd; i++) if (!(await run())[0]) failures++;

  const samples = [];
  const stop = now() + BigInt(Math.round(maxMs * 1e6));
  while (samples.length < Math.max(1, ops)) {
    const [ok, ns] = await run();
    if (!ok) failures++;
    samples.push(ns);
    if (now() >= stop) break;
  }
  if (op.close) op.close();
  process.stdout.write(
    JSON.stringify({
      samples_ns: samples,
      rss_kib: statusKib('VmRSS'),
      base_rss_kib: baseRss,
      hwm_kib: statusKib('VmHWM'),
      ballast_mib: ballastMib,
      failures,
      ballast_check: ballast ? ballast[ballast.length - 1] : null,
    }) + '\n'
  );
  process.exitCode = failures ? 1 : 0;
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exitCode = 2;
});
