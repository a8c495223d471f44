// LoRA adapters through the API: --lora-modules at start, /v1/load_lora_adapter at run time,
// selection by `model`, listing in /v1/models.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, post, repo, MODEL } from './fixture.mjs';

const fixtures = path.join(repo, 'tests/fixtures');
let srv;
before(async () => {
  srv = await startServer(['--lora-modules', `qv=${path.join(fixtures, 'qwen3-tiny-lora-qv')}`,
    '--enable-lora-loading']);
});
after(async () => { if (srv) await srv.stop(); });

test('adapters are models: listed, selected by name, loaded and unloaded at run time', async () => {
  const ids = (await srv.client.models.list()).data.map((m) => m.id);
  assert.deepEqual(ids, [MODEL, 'qv']);
  const req = { prompt: 'The weather today', max_tokens: 12, temperature: 0, ignore_eos: true };
  const base = await srv.client.completions.create({ ...req, model: MODEL });
  const qv = await srv.client.completions.create({ ...req, model: 'qv' });
  assert.notEqual(qv.choices[0].text, base.choices[0].text);
  const load = await post(srv.base, '/v1/load_lora_adapter',
    { lora_name: 'mlx', lora_path: path.join(fixtures, 'qwen3-tiny-lora-all-mlx') });
  assert.equal(load.status, 200, load.text);
  const mlx = await srv.client.completions.create({ ...req, model: 'mlx' });
  assert.equal(mlx.model, 'mlx');  // the name the client asked for
  assert.equal(typeof mlx.choices[0].text, 'string');
  const bad = await post(srv.base, '/v1/load_lora_adapter', { lora_name: 'x', lora_path: '/nonexistent' });
  assert.ok(bad.status >= 400 && bad.status < 500 && bad.json.error, bad.text);
  assert.equal((await post(srv.base, '/v1/unload_lora_adapter', { lora_name: 'mlx' })).status, 200);
  await assert.rejects(srv.client.completions.create({ ...req, model: 'mlx' }), (e) => e.status === 404);
  // Base model still served.
  const again = await srv.client.completions.create({ ...req, model: MODEL });
  assert.equal(again.choices[0].text, base.choices[0].text);
});

// Hot load / unload under concurrent streaming load: while streams run on the base model and on
// two resident adapters, a third adapter name is loaded, used and unloaded over and over. Every
// stream must finish and produce exactly the text that model gives alone (no failed or mixed-up
// request); requests for the churned adapter either match its reference or get a clean 404.
test('hot load/unload while streaming: no failed or mixed-up request', async () => {
  const mlxPath = path.join(fixtures, 'qwen3-tiny-lora-all-mlx');
  const peftAll = path.join(fixtures, 'qwen3-tiny-lora-all');
  assert.equal((await post(srv.base, '/v1/load_lora_adapter', { lora_name: 'all', lora_path: peftAll })).status, 200);
  const prompts = ['The weather today', 'Once upon a time', 'def fibonacci(n):', '日本語のテキスト'];
  const req = (model, prompt) => ({ model, prompt, max_tokens: 10, temperature: 0, ignore_eos: true });
  const stream = async (model, prompt) => {
    const s = await srv.client.completions.create({ ...req(model, prompt), stream: true });
    let text = '';
    for await (const chunk of s) text += chunk.choices[0]?.text ?? '';
    return text;
  };
  // References, one request at a time.
  const models = [MODEL, 'qv', 'all'];
  const ref = {};
  for (const m of models) for (const p of prompts) ref[`${m}|${p}`] = await stream(m, p);
  assert.equal((await post(srv.base, '/v1/load_lora_adapter', { lora_name: 'churn', lora_path: peftAll })).status, 200);
  const churnRef = {};
  for (const p of prompts) churnRef[p] = await stream('churn', p);
  for (const p of prompts) assert.equal(churnRef[p], ref[`all|${p}`]);  // same adapter, same text

  let stop = false;
  let cycles = 0;
  const churn = (async () => {
    while (!stop) {
      await post(srv.base, '/v1/unload_lora_adapter', { lora_name: 'churn' });
      const r = await post(srv.base, '/v1/load_lora_adapter', { lora_name: 'churn', lora_path: peftAll });
      assert.equal(r.status, 200, r.text);
      cycles++;
    }
  })();
  const jobs = [];
  for (let i = 0; i < 36; i++) {
    const m = models[i % 3];
    const p = prompts[i % prompts.length];
    jobs.push(stream(m, p).then((t) => assert.equal(t, ref[`${m}|${p}`], `${m} ${p}`)));
    jobs.push(stream('churn', p).then(
      (t) => assert.equal(t, churnRef[p], `churn ${p}`),
      (e) => assert.equal(e.status, 404, String(e))));
  }
  await Promise.all(jobs);
  stop = true;
  await churn;
  assert.ok(cycles > 0);
  const metrics = await (await fetch(`${srv.base}/metrics`)).text();
  assert.match(metrics, /running\S* 0\b/);
});
