// --api-key and CORS flags, on a second server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, post, MODEL } from './fixture.mjs';

let srv;
before(async () => { srv = await startServer(['--api-key', 'k123', '--allowed-origins', 'http://app.example']); });
after(async () => { if (srv) await srv.stop(); });

test('api key: /health open, everything else needs the Bearer key', async () => {
  assert.equal((await fetch(`${srv.base}/health`)).status, 200);
  const r = await post(srv.base, '/v1/completions', { model: MODEL, prompt: 'x', max_tokens: 1 });
  assert.equal(r.status, 401);
  assert.equal(r.json.error.type, 'authentication_error');
  await assert.rejects(srv.client.models.list(), (e) => e.status === 401);
  const good = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'k123', maxRetries: 0 });
  const c = await good.completions.create({ model: MODEL, prompt: 'x', max_tokens: 2 });
  assert.equal(c.choices.length, 1);
});

test('CORS preflight and allowed origins', async () => {
  const pre = await fetch(`${srv.base}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'http://app.example');
  assert.ok(pre.headers.get('access-control-allow-methods').includes('POST'));
  const other = await fetch(`${srv.base}/health`, { headers: { origin: 'http://evil.example' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  const ok = await fetch(`${srv.base}/health`, { headers: { origin: 'http://app.example' } });
  assert.equal(ok.headers.get('access-control-allow-origin'), 'http://app.example');
});
