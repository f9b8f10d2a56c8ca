// Piscina peer for pool_workloads.py: node pool_piscina.js <workload> <ops> <batches>
// Prints {"samples": [...]}: per-op µs for rt, tasks/s per batch for thr.
const path = require('path');
let Piscina;
try {
  Piscina = require(process.env.PISCINA_PATH || 'piscina');
} catch (e) {
  console.log(JSON.stringify({ skipped: 'piscina is not installed (npm install piscina)' }));
  process.exit(0);
}
const [workload, opsArg, batchesArg] = process.argv.slice(2);
const ops = Number(opsArg), batches = Number(batchesArg);
const pool = new (Piscina.Piscina || Piscina)({
  filename: path.join(__dirname, 'pool_piscina_worker.js'), minThreads: 2, maxThreads: 2,
});
(async () => {
  for (let i = 0; i < 200; i++) await pool.run(i);
  const samples = [];
  for (let b = 0; b < batches; b++) {
    if (workload === 'rt') {
      const each = [];
      for (let i = 0; i < ops; i++) {
        const t = process.hrtime.bigint();
        await pool.run(i);
        each.push(Number(process.hrtime.bigint() - t) / 1000);
      }
      each.sort((a, b) => a - b);
      samples.push(each[each.length >> 1]);
    } else {
      const t = process.hrtime.bigint();
      const all = [];
      for (let i = 0; i < ops; i++) all.push(pool.run(i));
      await Promise.all(all);
      samples.push(ops / (Number(process.hrtime.bigint() - t) / 1e9));
    }
  }
  console.log(JSON.stringify({ samples }));
  await pool.destroy();
})();
