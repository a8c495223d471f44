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
