// node_spawn.js - the Node peer for "spawn + wait of /bin/true".
//
// Run by benchmarks/compare:
//   node node_spawn.js OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB [PROGRAM]
// Same protocol as floor_spawn.c: WARMUP_OPS untimed calls (or WARMUP_MS,
// whichever ends first), then up to OPS timed calls, stopping early once
// MAX_MS have passed (at least one timed call always runs).  BALLAST_MIB > 0
// first allocates a Buffer of that size and fills it so it is resident.
//
// Each op is spawnSync(PROGRAM) exactly as a user writes it: default options,
// so stdio is three pipes and both outputs are collected.
//
// Prints one line of JSON on stdout:
//   {"samples_ns":[...],"rss_kib":N,"ballast_mib":M,"failures":0}
'use strict';
const { spawnSync } = require('child_process');

const [ops, maxMs, warmupOps, warmupMs, ballastMib] = process.argv
  .slice(2, 7)
  .map(Number);
const program = process.argv[7] || '/bin/true';

let ballast = null;
if (ballastMib > 0) {
  ballast = Buffer.alloc(ballastMib * 1024 * 1024);
  ballast.fill(1);
}

function once() {
  const r = spawnSync(program);
  return r.error === undefined && r.status === 0;
}

let failures = 0;
const now = process.hrtime.bigint;
const warmEnd = now() + BigInt(Math.round(warmupMs * 1e6));
for (let i = 0; i < warmupOps && now() < warmEnd; i++) if (!once()) failures++;

const samples = [];
const stop = now() + BigInt(Math.round(maxMs * 1e6));
while (samples.length < Math.max(1, ops)) {
  const t0 = now();
  const ok = once();
  const t1 = now();
  if (!ok) failures++;
  samples.push(Number(t1 - t0));
  if (t1 >= stop) break;
}

process.stdout.write(
  JSON.stringify({
    samples_ns: samples,
    rss_kib: Math.round(process.memoryUsage().rss / 1024),
    ballast_mib: ballastMib,
    failures,
    ballast_check: ballast ? ballast[ballast.length - 1] : null,
  }) + '\n'
);
process.exitCode = failures ? 1 : 0;
