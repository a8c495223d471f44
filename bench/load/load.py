#!/usr/bin/env python3
"""Load tool for `petrel serve` (or any OpenAI-compatible server), the Python twin of load.mjs for
machines without node (python3 + aiohttp). Same flags, same Markdown table, same --json layout.

  python3 bench/load/load.py --base http://127.0.0.1:8000 --model qwen3-tiny \
       --concurrency 1,8,64,512 --max-tokens 64 [--requests N] [--seconds S] [--json out.json]

Each client sends requests back to back (POST /v1/completions, stream: true,
stream_options.include_usage, ignore_eos so every request generates exactly --max-tokens) until
the level's request budget (default max(2 x concurrency, 16)) or time budget is spent. Tokens come
from the final usage chunk; TTFT is the time to the first chunk carrying text; inter-token latency
is the gap between consecutive text chunks (one chunk per token here). Exits 1 if any request
failed.
"""
import asyncio
import json
import math
import sys
import time

import aiohttp

DEFAULT_PROMPT = 'Write a long story about a storm petrel that crosses the ocean.'


def parse_args(argv):
    a = {'base': 'http://127.0.0.1:8000', 'model': '', 'concurrency': '1,8,64,512',
         'max_tokens': 64, 'requests': 0, 'seconds': 120.0, 'json': '', 'prompt': DEFAULT_PROMPT,
         'temperature': 0.7}
    i = 1
    while i < len(argv):
        k = argv[i].lstrip('-')
        v = argv[i + 1] if i + 1 < len(argv) else ''
        i += 2
        if k == 'base': a['base'] = v
        elif k == 'model': a['model'] = v
        elif k == 'concurrency': a['concurrency'] = v
        elif k == 'max-tokens': a['max_tokens'] = int(v)
        elif k == 'requests': a['requests'] = int(v)
        elif k == 'seconds': a['seconds'] = float(v)
        elif k == 'json': a['json'] = v
        elif k == 'prompt': a['prompt'] = v
        elif k == 'temperature': a['temperature'] = float(v)
        else:
            print(f'unknown flag --{k}', file=sys.stderr)
            sys.exit(2)
    return a


def pct(sorted_values, p):
    """Nearest-rank percentile, as load.mjs computes it."""
    if not sorted_values:
        return math.nan
    i = min(len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[i]


async def stream_once(session, url, body):
    """One streamed completion: {ok, ttft, gaps, tokens, e2e} or {ok: False, error}."""
    t0 = time.perf_counter()
    first = last = 0.0
    tokens = 0
    gaps = []
    done = False
    error = ''
    try:
        async with session.post(url, data=body, headers={'content-type': 'application/json'}) as res:
            if res.status != 200:
                text = await res.text()
                return {'ok': False, 'error': f'HTTP {res.status} {text[:200]}'}
            buf = ''
            async for chunk in res.content.iter_any():
                buf += chunk.decode('utf-8', errors='replace')
                while True:
                    idx = buf.find('\n\n')
                    if idx < 0:
                        break
                    ev, buf = buf[:idx], buf[idx + 2:]
                    if not ev.startswith('data: '):
                        continue
                    data = ev[6:]
                    if data == '[DONE]':
                        done = True
                        continue
                    try:
                        j = json.loads(data)
                    except ValueError:
                        error = 'bad JSON chunk'
                        continue
                    if j.get('error'):
                        error = j['error'].get('message', 'error')
                        continue
                    if j.get('usage'):
                        tokens = j['usage']['completion_tokens']
                    for c in j.get('choices') or []:
                        if c.get('text'):
                            now = time.perf_counter()
                            if not first:
                                first = now
                            else:
                                gaps.append((now - last) * 1000)
                            last = now
    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as e:
        return {'ok': False, 'error': str(e) or type(e).__name__}
    if done and not error:
        return {'ok': True, 'ttft': (first - t0) * 1000 if first else math.nan, 'gaps': gaps,
                'tokens': tokens, 'e2e': (time.perf_counter() - t0) * 1000}
    return {'ok': False, 'error': error or 'stream ended without [DONE]'}


async def run_level(a, concurrency):
    budget = a['requests'] if a['requests'] > 0 else max(2 * concurrency, 16)
    deadline = time.perf_counter() + a['seconds']
    url = f"{a['base']}/v1/completions"
    sent = 0
    results = []
    t0 = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def client():
            nonlocal sent
            while sent < budget and time.perf_counter() < deadline:
                i = sent
                sent += 1
                body = {'prompt': f"{a['prompt']} ({i})", 'max_tokens': a['max_tokens'],
                        'ignore_eos': True, 'temperature': a['temperature'], 'stream': True,
                        'stream_options': {'include_usage': True}}
                if a['model']:
                    body = {'model': a['model'], **body}
                results.append(await stream_once(session, url, json.dumps(body)))

        await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    ok = [r for r in results if r['ok']]
    ttft = sorted(r['ttft'] for r in ok if not math.isnan(r['ttft']))
    itl = sorted(g for r in ok for g in r['gaps'])
    tokens = sum(r['tokens'] for r in ok)
    errors = [r for r in results if not r['ok']]
    return {
        'concurrency': concurrency, 'requests': len(results), 'ok': len(ok), 'errors': len(errors),
        'first_error': errors[0]['error'] if errors else None, 'wall_s': wall,
        'output_tokens': tokens, 'tokens_per_s': tokens / wall, 'requests_per_s': len(ok) / wall,
        'ttft_ms': {'p50': pct(ttft, 50), 'p90': pct(ttft, 90), 'p99': pct(ttft, 99)},
        'itl_ms': {'p50': pct(itl, 50), 'p90': pct(itl, 90), 'p99': pct(itl, 99)},
    }


def fmt(x):
    return f'{x:.1f}' if isinstance(x, (int, float)) and math.isfinite(x) else '-'


async def main():
    a = parse_args(sys.argv)
    levels = [int(c) for c in a['concurrency'].split(',')]
    out = []
    print('| concurrency | requests | errors | output tok/s | req/s | TTFT p50 / p90 / p99 (ms) | ITL p50 / p90 / p99 (ms) |')
    print('|---:|---:|---:|---:|---:|---|---|', flush=True)
    for c in levels:
        r = await run_level(a, c)
        out.append(r)
        t, l = r['ttft_ms'], r['itl_ms']
        print(f"| {c} | {r['requests']} | {r['errors']} | {fmt(r['tokens_per_s'])} | {fmt(r['requests_per_s'])} | "
              f"{fmt(t['p50'])} / {fmt(t['p90'])} / {fmt(t['p99'])} | {fmt(l['p50'])} / {fmt(l['p90'])} / {fmt(l['p99'])} |",
              flush=True)
        if r['errors']:
            print(f"  first error: {r['first_error']}", file=sys.stderr)
    if a['json']:
        def clean(v):  # NaN is not JSON: null, as JSON.stringify writes it
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v
        with open(a['json'], 'w') as f:
            json.dump({'base': a['base'], 'max_tokens': a['max_tokens'], 'levels': [clean(r) for r in out]}, f, indent=2)
    return 1 if sum(r['errors'] for r in out) else 0


if __name__ == '__main__':
    sys.exit(asyncio.run(main()))
