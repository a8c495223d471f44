// End-to-end tests of `petrel serve` with the official openai client, curl and raw fetch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startServer, post, metric, MODEL } from './fixture.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { if (srv) await srv.stop(); });

const chatMsgs = (text) => [{ role: 'user', content: text }];

async function healthy() {
  const r = await fetch(`${srv.base}/health`);
  assert.equal(r.status, 200);
  const c = await srv.client.completions.create({ model: MODEL, prompt: 'ok', max_tokens: 2 });
  assert.equal(c.choices.length, 1);
}

test('health, models, metrics', async () => {
  await healthy();
  const models = await srv.client.models.list();
  assert.equal(models.data[0].id, MODEL);
  const text = await (await fetch(`${srv.base}/metrics`)).text();
  for (const name of ['petrel:num_requests_running', 'petrel:num_requests_waiting',
    'petrel:kv_cache_usage_perc', 'petrel:prefix_cache_hits_total', 'petrel:prefix_cache_queries_total',
    'petrel:prompt_tokens_total', 'petrel:generation_tokens_total',
    'petrel:time_to_first_token_seconds_bucket', 'petrel:inter_token_latency_seconds_bucket',
    'petrel:e2e_request_latency_seconds_bucket']) {
    assert.ok(text.includes(name), name);
  }
});

test('chat: streamed chunks concatenate to the non-streamed answer (temperature 0)', async () => {
  const req = { model: MODEL, messages: chatMsgs('Tell me a story about a petrel.'), temperature: 0, max_tokens: 40 };
  const whole = await srv.client.chat.completions.create(req);
  const stream = await srv.client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, role = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(role, 'assistant');
  const msg = whole.choices[0].message;
  assert.equal(text, msg.content ?? '');
  assert.equal(finish, whole.choices[0].finish_reason);
  // The repeated prompt now comes (partly) from the prefix cache; the counts are the same.
  assert.equal(usage.prompt_tokens, whole.usage.prompt_tokens);
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
  assert.ok(usage.prompt_tokens_details.cached_tokens >= whole.usage.prompt_tokens_details.cached_tokens);
});

test('completions: stream == whole, echo, token-array prompt', async () => {
  const req = { model: MODEL, prompt: 'The capital of France is', temperature: 0, max_tokens: 24 };
  const whole = await srv.client.completions.create(req);
  let text = '';
  for await (const chunk of await srv.client.completions.create({ ...req, stream: true })) {
    for (const c of chunk.choices) text += c.text;
  }
  assert.equal(text, whole.choices[0].text);
  const echo = await srv.client.completions.create({ ...req, echo: true });
  assert.equal(echo.choices[0].text, req.prompt + whole.choices[0].text);
  const tok = await post(srv.base, '/tokenize', { model: MODEL, prompt: req.prompt });
  const byIds = await srv.client.completions.create({ ...req, prompt: tok.json.tokens });
  assert.equal(byIds.choices[0].text, whole.choices[0].text);
});

test('32 concurrent requests give exactly the sequential outputs', async () => {
  const prompts = Array.from({ length: 32 }, (_, i) => `Request number ${i}: ${'abc '.repeat(i % 7)}`);
  const one = (p, i) => (i % 2 === 0
    ? srv.client.completions.create({ model: MODEL, prompt: p, temperature: 0, max_tokens: 16 + (i % 5), ignore_eos: true })
      .then((r) => r.choices[0].text)
    : srv.client.chat.completions.create({ model: MODEL, messages: chatMsgs(p), temperature: 0, max_tokens: 16 + (i % 5) })
      .then((r) => r.choices[0].message.content));
  const sequential = [];
  for (let i = 0; i < prompts.length; i++) sequential.push(await one(prompts[i], i));
  const concurrent = await Promise.all(prompts.map(one));
  assert.deepEqual(concurrent, sequential);
});

test('stop strings: output ends before the stop string, also when streamed', async () => {
  const req = { model: MODEL, prompt: 'Once upon a time', temperature: 0, max_tokens: 40, ignore_eos: true };
  const full = (await srv.client.completions.create(req)).choices[0].text;
  assert.ok(full.length > 10, 'model produced text');
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
  const expected = full.slice(0, full.indexOf(stop));
  const r = await srv.client.completions.create({ ...req, stop: [stop, 'never-there'] });
  assert.equal(r.choices[0].text, expected);
  assert.equal(r.choices[0].finish_reason, 'stop');
  let text = '';
  for await (const chunk of await srv.client.completions.create({ ...req, stop, stream: true })) {
    for (const c of chunk.choices) text += c.text;
  }
  assert.equal(text, expected);
  const chat = await srv.client.chat.completions.create({ model: MODEL, messages: chatMsgs('hi'), temperature: 0, max_tokens: 30 });
  const ctext = chat.choices[0].message.content;
  if (ctext && ctext.length > 6) {
    const s2 = ctext.slice(3, 6);
    const c2 = await srv.client.chat.completions.create({ model: MODEL, messages: chatMsgs('hi'), temperature: 0, max_tokens: 30, stop: s2 });
    assert.equal(c2.choices[0].message.content, ctext.slice(0, ctext.indexOf(s2)));
  }
});

test('max_tokens and max_completion_tokens: finish_reason length and exact counts', async () => {
  const r = await srv.client.completions.create({ model: MODEL, prompt: 'Count:', max_tokens: 7, ignore_eos: true });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 7);
  const c = await srv.client.chat.completions.create({ model: MODEL, messages: chatMsgs('x'), max_completion_tokens: 5, ignore_eos: true });
  assert.equal(c.usage.completion_tokens, 5);
  assert.equal(c.choices[0].finish_reason, 'length');
});

test('n: several choices with their own indices', async () => {
  const r = await srv.client.chat.completions.create({ model: MODEL, messages: chatMsgs('pick'), n: 3, temperature: 1, seed: 7, max_tokens: 8 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  const seen = new Set();
  let streamedChoices = 0;
  for await (const chunk of await srv.client.completions.create({ model: MODEL, prompt: 'x', n: 4, max_tokens: 4, stream: true })) {
    for (const c of chunk.choices) { seen.add(c.index); if (c.finish_reason) streamedChoices++; }
  }
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
  assert.equal(streamedChoices, 4);
});

test('logprobs: chat and completions formats', async () => {
  const r = await srv.client.chat.completions.create({ model: MODEL, messages: chatMsgs('hello'), max_tokens: 6, ignore_eos: true, logprobs: true, top_logprobs: 3, temperature: 0 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 6);
  for (const e of content) {
    assert.equal(typeof e.token, 'string');
    assert.ok(e.logprob <= 0);
    assert.ok(Array.isArray(e.bytes));
    assert.equal(e.top_logprobs.length, 3);
    // Greedy: the sampled token is the most likely one.
    assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-4);
  }
  const c = await srv.client.completions.create({ model: MODEL, prompt: 'hello', max_tokens: 5, ignore_eos: true, logprobs: 2 });
  const lp = c.choices[0].logprobs;
  assert.equal(lp.tokens.length, 5);
  assert.equal(lp.token_logprobs.length, 5);
  assert.equal(lp.top_logprobs.length, 5);
  assert.equal(lp.text_offset.length, 5);
  assert.ok(Object.keys(lp.top_logprobs[0]).length >= 1);
});

test('seed reproducibility', async () => {
  const req = { model: MODEL, prompt: 'Random words:', max_tokens: 20, temperature: 1.0, top_p: 1, ignore_eos: true };
  const a = await srv.client.completions.create({ ...req, seed: 1234 });
  const b = await srv.client.completions.create({ ...req, seed: 1234 });
  const c = await srv.client.completions.create({ ...req, seed: 999 });
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.notEqual(a.choices[0].text, c.choices[0].text);
});

test('usage counts match /tokenize and the generated tokens', async () => {
  const messages = chatMsgs('How many tokens is this?');
  const tok = await post(srv.base, '/tokenize', { model: MODEL, messages });
  assert.equal(tok.status, 200);
  const r = await srv.client.chat.completions.create({ model: MODEL, messages, max_tokens: 9, ignore_eos: true, logprobs: true });
  assert.equal(r.usage.prompt_tokens, tok.json.count);
  assert.equal(r.usage.completion_tokens, r.choices[0].logprobs.content.length);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
  // The same prompt again: its full blocks come from the prefix cache.
  const again = await srv.client.chat.completions.create({ model: MODEL, messages, max_tokens: 2 });
  assert.ok(again.usage.prompt_tokens_details.cached_tokens >= 0);
  const det = await post(srv.base, '/detokenize', { model: MODEL, tokens: tok.json.tokens });
  assert.ok(det.json.prompt.includes('How many tokens is this?'));
});

test('reasoning and tool-call fields have the OpenAI shapes', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  for (const enable_thinking of [true, false]) {
    const r = await srv.client.chat.completions.create({
      model: MODEL, messages: chatMsgs('Weather in Paris?'), tools, max_tokens: 16,
      chat_template_kwargs: { enable_thinking },
    });
    const m = r.choices[0].message;
    assert.equal(m.role, 'assistant');
    assert.ok(m.content === null || typeof m.content === 'string');
    assert.ok(m.reasoning_content === undefined || typeof m.reasoning_content === 'string');
    assert.ok(m.tool_calls === undefined || Array.isArray(m.tool_calls));
    assert.ok(['stop', 'length', 'tool_calls'].includes(r.choices[0].finish_reason));
  }
  // enable_thinking=false puts an empty think block in the prompt: visible in the token count.
  const on = await post(srv.base, '/tokenize', { model: MODEL, messages: chatMsgs('q'), chat_template_kwargs: { enable_thinking: true } });
  const off = await post(srv.base, '/tokenize', { model: MODEL, messages: chatMsgs('q'), chat_template_kwargs: { enable_thinking: false } });
  assert.ok(off.json.count > on.json.count);
});

test('seed API /generate', async () => {
  const r = await post(srv.base, '/generate', { prompt: 'Hello', max_tokens: 5 });
  assert.equal(r.status, 200);
  assert.equal(r.json.prompt, 'Hello');
  assert.equal(typeof r.json.response, 'string');
});

function assertError(r, status, param) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json && r.json.error, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  assert.equal(typeof r.json.error.type, 'string');
  assert.ok('param' in r.json.error && 'code' in r.json.error);
  if (param !== undefined) assert.equal(r.json.error.param, param);
}

test('malformed requests get OpenAI-shaped 4xx and the server keeps serving', async () => {
  const C = '/v1/chat/completions';
  const msgs = chatMsgs('x');
  const cases = [
    [C, '{"model": ', 400],
    [C, '[1,2,3]', 400],
    [C, { model: MODEL }, 400, 'messages'],
    [C, { model: MODEL, messages: 'hi' }, 400, 'messages'],
    [C, { model: MODEL, messages: [{ role: 'robot', content: 'x' }] }, 400, 'messages.0.role'],
    [C, { model: MODEL, messages: msgs, temperature: 'hot' }, 400, 'temperature'],
    [C, { model: MODEL, messages: msgs, max_tokens: -1 }, 400, 'max_tokens'],
    [C, { model: MODEL, messages: msgs, n: 'two' }, 400, 'n'],
    [C, { model: MODEL, messages: msgs, stop: 5 }, 400, 'stop'],
    [C, { model: MODEL, messages: msgs, logit_bias: { 999999999: 1 } }, 400, 'logit_bias'],
    [C, { model: MODEL, messages: msgs, stream: 'yes' }, 400, 'stream'],
    [C, { model: 'gpt-4o', messages: msgs }, 404, 'model'],
    ['/v1/completions', { model: MODEL, prompt: 'word '.repeat(3000) }, 400, 'prompt'],
    ['/v1/completions', { model: MODEL, prompt: 'x', max_tokens: 100000 }, 400, 'prompt'],
    ['/v1/completions', { model: MODEL, prompt: [1, 2, 'x'] }, 400],
    ['/v1/completions', { model: MODEL, prompt: [999999999] }, 400, 'prompt'],
    ['/tokenize', { model: MODEL }, 400, 'prompt'],
    ['/detokenize', { model: MODEL, tokens: 'abc' }, 400, 'tokens'],
  ];
  for (const [p, body, status, param] of cases) {
    assertError(await post(srv.base, p, body), status, param);
  }
  // Unknown model through the official client: NotFoundError with code model_not_found.
  await assert.rejects(srv.client.chat.completions.create({ model: 'nope', messages: msgs }),
    (e) => e.status === 404 && e.code === 'model_not_found');
  // A body over --max-body-bytes (1 MiB here).
  const huge = JSON.stringify({ model: MODEL, prompt: 'x'.repeat(2 << 20) });
  assertError(await post(srv.base, '/v1/completions', huge), 413);
  // Unknown route / wrong method.
  assert.equal((await fetch(`${srv.base}/v1/nothing`)).status, 404);
  assert.equal((await fetch(`${srv.base}/v1/completions`)).status, 405);
  // curl too (keep-alive off, plain HTTP/1.1).
  const out = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST',
    '-H', 'content-type: application/json', '-d', '{bad', `${srv.base}/v1/chat/completions`]).toString();
  assert.equal(out, '400');
  await healthy();
});

test('a client that disconnects mid-stream frees its KV blocks', async () => {
  const idle = await metric(srv.base, 'petrel:kv_cache_blocks_used');
  const ac = new AbortController();
  const r = await fetch(`${srv.base}/v1/completions`, {
    method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: 'Long story: ' + 'once more '.repeat(50), max_tokens: 900, ignore_eos: true, stream: true }),
  });
  const reader = r.body.getReader();
  await reader.read();  // first chunk arrived: the request is running
  let busy = 0;
  for (let i = 0; i < 50 && busy === 0; i++) {
    busy = await metric(srv.base, 'petrel:kv_cache_blocks_used');
    if (busy === 0) await new Promise((res) => setTimeout(res, 20));
  }
  assert.ok(busy > idle, `blocks in use while streaming (${busy} > ${idle})`);
  ac.abort();
  let used = busy, running = 1;
  for (let i = 0; i < 100 && (used > idle || running > 0); i++) {
    await new Promise((res) => setTimeout(res, 50));
    used = await metric(srv.base, 'petrel:kv_cache_blocks_used');
    running = await metric(srv.base, 'petrel:num_requests_running');
  }
  assert.equal(running, 0);
  assert.equal(used, idle);
  assert.ok(await metric(srv.base, 'petrel:client_disconnects_total') >= 1);
  await healthy();
});
