#!/usr/bin/env node
// Load tool for `petrel serve` (or any OpenAI-compatible server): streaming clients over
// loopback at several concurrency levels, each level bounded in request count and time.
// Reports throughput, TTFT and inter-token latency percentiles and the error count.
//
//   node bench/load/load.mjs --base http://127.0.0.1:8000 --model qwen3-tiny \
//        --concurrency 1,8,64,512 --max-tokens 64 [--requests N] [--seconds S] [--json out.json]
//
// Each client sends requests back to back (POST /v1/completions, stream: true,
// stream_options.include_usage, ignore_eos so every request generates exactly --max-tokens)
// until the level's request budget (default max(2 x concurrency, 16)) or time budget is spent.
// Tokens come from the final usage chunk; TTFT is the time to the first chunk carrying text;
// inter-token latency is the gap between consecutive text chunks (one chunk per token here).
import http from 'node:http';

function parseArgs(argv) {
  const a = { base: 'http://127.0.0.1:8000', model: '', concurrency: '1,8,64,512', maxTokens: 64,
    requests: 0, seconds: 120, json: '', prompt: 'Write a long story about a storm petrel that crosses the ocean.',
    temperature: 0.7 };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    const v = argv[++i];
    if (k === 'base') a.base = v;
    else if (k === 'model') a.model = v;
    else if (k === 'concurrency') a.concurrency = v;
    else if (k === 'max-tokens') a.maxTokens = Number(v);
    else if (k === 'requests') a.requests = Number(v);
    else if (k === 'seconds') a.seconds = Number(v);
    else if (k === 'json') a.json = v;
    else if (k === 'prompt') a.prompt = v;
    else if (k === 'temperature') a.temperature = Number(v);
    else { console.error(`unknown flag --${k}`); process.exit(2); }
  }
  return a;
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

// One streamed completion. Resolves {ok, ttft, gaps, tokens, error}.
function streamOnce(url, agent, body) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let first = 0, last = 0, tokens = 0, buf = '', done = false, error = '';
    const gaps = [];
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      if (res.statusCode !== 200) {
        let t = '';
        res.on('data', (d) => { t += d; });
        res.on('end', () => resolve({ ok: false, error: `HTTP ${res.statusCode} ${t.slice(0, 200)}` }));
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let idx;
        while ((idx = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, idx);
          buf = buf.slice(idx + 2);
          if (!ev.startsWith('data: ')) continue;
          const data = ev.slice(6);
          if (data === '[DONE]') { done = true; continue; }
          let j;
          try { j = JSON.parse(data); } catch { error = 'bad JSON chunk'; continue; }
          if (j.error) { error = j.error.message; continue; }
          if (j.usage) tokens = j.usage.completion_tokens;
          for (const c of j.choices || []) {
            if (c.text) {
              const now = performance.now();
              if (!first) first = now; else gaps.push(now - last);
              last = now;
            }
          }
        }
      });
      res.on('end', () => resolve(done && !error
        ? { ok: true, ttft: first ? first - t0 : NaN, gaps, tokens, e2e: performance.now() - t0 }
        : { ok: false, error: error || 'stream ended without [DONE]' }));
      res.on('error', (e) => resolve({ ok: false, error: e.message }));
    });
    req.on('error', (e) => resolve({ ok: false, error: e.message }));
    req.end(body);
  });
}

async function runLevel(a, concurrency) {
  const budget = a.requests > 0 ? a.requests : Math.max(2 * concurrency, 16);
  const deadline = performance.now() + a.seconds * 1000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = `${a.base}/v1/completions`;
  let sent = 0;
  const results = [];
  const t0 = performance.now();
  async function client(k) {
    while (sent < budget && performance.now() < deadline) {
      const i = sent++;
      const body = JSON.stringify({
        ...(a.model ? { model: a.model } : {}), prompt: `${a.prompt} (${i})`, max_tokens: a.maxTokens,
        ignore_eos: true, temperature: a.temperature, stream: true, stream_options: { include_usage: true },
      });
      results.push(await streamOnce(url, agent, body));
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, k) => client(k)));
  const wall = (performance.now() - t0) / 1000;
  agent.destroy();
  const ok = results.filter((r) => r.ok);
  const ttft = ok.map((r) => r.ttft).filter((x) => !Number.isNaN(x)).sort((x, y) => x - y);
  const itl = ok.flatMap((r) => r.gaps).sort((x, y) => x - y);
  const tokens = ok.reduce((s, r) => s + r.tokens, 0);
  const errors = results.filter((r) => !r.ok);
  return {
    concurrency, requests: results.length, ok: ok.length, errors: errors.length,
    first_error: errors[0]?.error, wall_s: wall, output_tokens: tokens,
    tokens_per_s: tokens / wall, requests_per_s: ok.length / wall,
    ttft_ms: { p50: pct(ttft, 50), p90: pct(ttft, 90), p99: pct(ttft, 99) },
    itl_ms: { p50: pct(itl, 50), p90: pct(itl, 90), p99: pct(itl, 99) },
  };
}

const a = parseArgs(process.argv);
const levels = a.concurrency.split(',').map(Number);
const out = [];
const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
console.log('| concurrency | requests | errors | output tok/s | req/s | TTFT p50 / p90 / p99 (ms) | ITL p50 / p90 / p99 (ms) |');
console.log('|---:|---:|---:|---:|---:|---|---|');
for (const c of levels) {
  const r = await runLevel(a, c);
  out.push(r);
  console.log(`| ${c} | ${r.requests} | ${r.errors} | ${f(r.tokens_per_s)} | ${f(r.requests_per_s)} | ` +
    `${f(r.ttft_ms.p50)} / ${f(r.ttft_ms.p90)} / ${f(r.ttft_ms.p99)} | ${f(r.itl_ms.p50)} / ${f(r.itl_ms.p90)} / ${f(r.itl_ms.p99)} |`);
  if (r.errors) console.error(`  first error: ${r.first_error}`);
}
if (a.json) {
  const fs = await import('node:fs');
  fs.writeFileSync(a.json, JSON.stringify({ base: a.base, max_tokens: a.maxTokens, levels: out }, null, 2));
}
const errors = out.reduce((s, r) => s + r.errors, 0);
process.exit(errors ? 1 : 0);
