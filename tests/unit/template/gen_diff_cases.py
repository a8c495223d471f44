#!/usr/bin/env python3
"""Generates diff_cases.json: small templates rendered by Python's jinja2, configured as
transformers configures it for chat templates (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, transformers' tojson / raise_exception / strftime_now).

jinja_diff_test.cc renders every case with petrel's engine and compares byte for byte, so the
C++ test suite needs no Python. Regenerate after adding cases:
    python3 tests/unit/template/gen_diff_cases.py   (Debian python3-jinja2 3.1.x is enough)
"""
import json
import os
import sys
from datetime import datetime, timezone

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED_NOW = 1735689600 + 13 * 3600 + 5 * 60  # 2025-01-01 13:05:00 UTC


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.fromtimestamp(FIXED_NOW, tz=timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


V = {
    "s": "Hello, World",
    "u": "Übersetze «你好» 🙂",
    "n": 7, "f": 2.5, "neg": -7, "t": True, "no": None,
    "l": [3, 1, 2], "words": ["b", "A", "a", "c"],
    "d": {"b": 1, "a": 2, "items": "key-items"},
    "msgs": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": {"x": 1, "y": "z"}}}]},
        {"role": "tool", "content": "{\"r\": 1}"},
        {"role": "user", "content": [{"type": "text", "text": "part"}]},
    ],
    "nested": {"a": {"b": [1, {"c": "deep"}]}},
}

CASES = [
    # whitespace control, trim_blocks, lstrip_blocks, comments, raw
    "a\n{% if t %}\nyes\n{% endif %}\nb",
    "  {% if t %}\n  yes\n  {% endif %}\n  {{ 'v' }}  {% if t %}x{% endif %}\n",
    "a  {%- if t -%}  b  {%- endif -%}  c",
    "a {{- ' b ' -}} c",
    "x\n  {# comment #}\ny",
    "x {#- c -#} y",
    "{% raw %}{{ not rendered }}{% endraw %}",
    "line1\r\nline2\r\n",
    "trailing\n\n",
    "{%+ if t %}  kept{% endif +%}\n next",
    "{% for i in l %}\n  {{ i }}\n{% endfor %}\n",
    "{% for i in l -%}\n{{ i }}\n{%- endfor %}",
    # literals and printing
    "{{ 1 }} {{ 1.0 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ 1/3 }} {{ 1e-5 }} {{ 123456789.125 }}",
    "{{ true }} {{ false }} {{ none }} {{ True }} {{ None }}",
    "{{ [1, 'a', none, true, 2.5, (1, 2), (3,), {'k': \"it's\"}] }}",
    "{{ {'a': [1, {'b': none}], 1: 'x'} }}",
    "{{ 'a\\tb\\n' }}|{{ ['a\\tb\\'\"', 'é', '\\x01'] }}",
    "{{ 'multi' 'part' }} {{ \"dq\" }} {{ '\\u00e9\\x41' }}",
    "{{ s }} {{ u }} {{ n }} {{ f }} {{ t }} {{ no }} {{ l }} {{ d }}",
    "{{ a, b }} {{ (1, 2) }} {{ () }}",
    # arithmetic
    "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}",
    "{{ 7 / 2 }} {{ 6 / 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1 + 2.0 }} {{ true + 1 }}",
    "{{ 'ab' * 3 }} {{ [1] * 3 }} {{ 3 * 'x' }} {{ 'a' + 'b' }} {{ [1] + [2] }}",
    "{{ 1 ~ 2 ~ none ~ true ~ undefined_thing }}",
    "{{ 2 + 3 * 4 }} {{ (2 + 3) * 4 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ (1 + 2) ~ 3 }}",
    "{{ -n }} {{ +n }} {{ -f }} {{ not n }} {{ not not n }}",
    # comparisons, logic
    "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }}",
    "{{ 'ell' in s }} {{ 'x' not in s }} {{ 2 in l }} {{ 'a' in d }} {{ 'z' in d }}",
    "{{ n and 'yes' }} {{ 0 and 'yes' }} {{ none or 'dflt' }} {{ 'v' or 'w' }}",
    "{{ 'a' if t else 'b' }} {{ 'a' if no else 'b' }} [{{ 'a' if no }}]",
    "{{ true == 1 }} {{ none == none }} {{ undefined_x == undefined_y }} {{ 'a' != 'a' }}",
    # attribute/item lookup and undefined
    "{{ d.a }} {{ d['a'] }} {{ d['items'] }} {{ d.get('b') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }}",
    "[{{ d.missing }}] [{{ d['missing'] }}] [{{ l[10] }}] [{{ missing }}] [{{ no.attr }}]",
    "{{ nested.a.b[1].c }} {{ nested['a']['b'][0] }} {{ l.0 }} {{ l[-1] }}",
    "{{ msgs[0].role }} {{ msgs[-1]['content'][0].text }} {{ msgs[2].tool_calls[0].function.arguments }}",
    "{{ d.missing is defined }} {{ d.a is defined }} {{ missing is undefined }} {{ missing is none }}",
    "{{ missing | default('dflt') }} {{ '' | default('dflt') }} {{ '' | default('dflt', true) }} {{ none | d('x') }}",
    # slicing
    "{{ l[::-1] }} {{ l[1:] }} {{ l[:-1] }} {{ l[::2] }} {{ s[0:5] }} {{ s[::-1] }} {{ u[:3] }} {{ u[-2:] }}",
    "{% for m in msgs[::-1] %}{{ m.role }},{% endfor %}",
    "{{ l[5:] }} {{ l[-10:2] }} {{ 'abc'[1] }} {{ u[0] }} {{ u|length }}",
    # for loops
    "{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
    "{% for x in l %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('odd', 'even') }};{% endfor %}",
    "{% for x in l if x > 1 %}{{ x }}:{{ loop.index }}/{{ loop.length }};{% else %}none{% endfor %}",
    "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
    "{% for k in d %}{{ k }};{% endfor %}{% for c in 'héllo' %}{{ c }}.{% endfor %}",
    "{% for x in l %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for a in [1, 2] %}{% for b in [3, 4] %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %}",
    "{% for (a, b) in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}",
    # scoping
    "{% set x = 1 %}{% for i in range(3) %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}",
    "{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}",
    "{% set ns = namespace(c=0, items=[]) %}{% for i in range(4) %}{% set ns.c = ns.c + i %}{% endfor %}{{ ns.c }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c, d = [3, 4] %}{{ c }}{{ d }}",
    "{% set blk %}inner {{ n }}{% endset %}[{{ blk }}]",
    "{% set blk | upper %}shout{% endset %}{{ blk }}",
    "{% set t2 = (1, 2) %}{{ t2 }} {{ t2 | list }}",
    # macros and call
    "{% macro m(a, b=2) %}{{ a }}-{{ b }}{% endmacro %}{{ m(1) }} {{ m(1, 3) }} {{ m(b=5, a=4) }}",
    "{% macro outer() %}[{{ caller() }}]{% endmacro %}{% call outer() %}body {{ n }}{% endcall %}",
    "{% macro rec(k) %}{{ k }}{% if k > 0 %}{{ rec(k - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}",
    "{% macro lst(items) %}{% for i in items %}<{{ i }}>{% endfor %}{% endmacro %}{{ lst(l) }}",
    "{% macro v() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ v(1, 2, a=3) }}",
    "{% macro withcall(x) %}{{ caller(x) }}{% endmacro %}{% call(y) withcall(5) %}got {{ y }}{% endcall %}",
    # filters
    "{{ '  pad  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ s | upper }}|{{ s | lower }}|{{ 'hello world' | capitalize }}|{{ 'hello-world foo(bar' | title }}",
    "{{ l | length }} {{ s | count }} {{ d | length }} {{ l | join(',') }} {{ l | join }} {{ msgs | map(attribute='role') | join('/') }}",
    "{{ s | replace('o', '0') }} {{ s | replace('o', '0', 1) }} {{ l | first }} {{ l | last }} {{ s | first }} {{ [] | first }}",
    "{{ d | items | list }} {{ d | dictsort }} {{ {'x': 2, 'y': 1} | dictsort(by='value', reverse=true) }} {{ l | list }} {{ 'ab' | list }}",
    "{{ msgs | selectattr('role', 'equalto', 'user') | list | length }} {{ msgs | rejectattr('content') | map(attribute='role') | list }}",
    "{{ msgs | selectattr('tool_calls', 'defined') | list | length }} {{ msgs | selectattr('role', 'in', ['system', 'tool']) | map(attribute='role') | list }}",
    "{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('even') | list }} {{ [0, 1, '', 'a'] | select | list }}",
    "{{ n | string }} {{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(3) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 3 | float }}",
    "{{ -3 | abs }} {{ neg | abs }} {{ -2.5 | abs }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.567 | round(2) }} {{ 2.1 | round(0, 'ceil') }} {{ 3 | round }}",
    "{{ words | sort }} {{ words | sort(reverse=true) }} {{ words | sort(case_sensitive=true) }} {{ words | unique | list }} {{ l | sort }}",
    "{{ words | min }} {{ words | max }} {{ l | sum }} {{ l | sum(start=10) }} {{ l | reverse | list }} {{ s | reverse }}",
    "{{ 'one two  three' | wordcount }} {{ '<a href=\"x\">&' | e }} {{ 'x' | safe }} {{ [1, 2, 3, 4, 5] | batch(2) | list }} {{ [1, 2, 3] | batch(2, 0) | list }}",
    "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}|{{ 'a\\nb' | indent('> ') }}",
    "{{ '%s and %d' | format('x', 3) }} {{ '%s!' % 'hi' }} {{ '%s-%s' % (1, 2) }} {{ 'abc' | center(9) }}|",
    "{{ [1, 2] | map('string') | join('+') }} {{ ['a', 'b'] | map('upper') | list }} {{ msgs | map(attribute='missing', default='-') | join }}",
    "{{ nested | tojson }} {{ u | tojson }} {{ d | tojson(indent=2) }} {{ d | tojson(sort_keys=true) }} {{ l | tojson(separators=(',', ':')) }}",
    "{{ [1.0, 2.5, 1e20, none, true, 'q\"\\\\'] | tojson }} {{ {} | tojson }} {{ [] | tojson(indent=2) }} {{ u | tojson(ensure_ascii=true) }}",
    "{{ msgs[2].tool_calls[0].function.arguments | tojson }} {{ 'é\\u2028<>&' | tojson }}",
    "{{ d | attr('a') }} {{ range(5) | list }} {{ range(2, 10, 3) | list }} {{ range(5, 0, -2) | list }}",
    # tests
    "{{ s is string }} {{ n is string }} {{ d is mapping }} {{ l is mapping }} {{ l is iterable }} {{ n is iterable }} {{ s is sequence }} {{ d is sequence }}",
    "{{ n is number }} {{ f is number }} {{ t is number }} {{ n is integer }} {{ t is integer }} {{ f is float }} {{ t is boolean }} {{ n is boolean }}",
    "{{ t is true }} {{ t is false }} {{ 1 is true }} {{ no is none }} {{ no is not none }} {{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }}",
    "{{ 2 is in l }} {{ n is eq 7 }} {{ n is equalto 7 }} {{ n is ne 7 }} {{ n is lt 8 }} {{ n is gt 8 }} {{ n is ge 7 }} {{ n is le 6 }}",
    "{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'aBc' is lower }} {{ missing is iterable }} {{ missing is sequence }} {{ range is callable }} {{ no is sameas none }}",
    # string methods
    "{{ s.startswith('Hell') }} {{ s.endswith('ld') }} {{ s.startswith(('x', 'H')) }} {{ s.split(', ') }} {{ ' a  b '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }}",
    "{{ '  x  '.strip() }}|{{ '  x  '.lstrip() }}|{{ '  x  '.rstrip() }}|{{ '\\n\\nx\\n'.strip('\\n') }}|{{ 'abcxa'.strip('ax') }}",
    "{{ s.upper() }} {{ s.lower() }} {{ \"they're bill's\".title() }} {{ 'hELLO wORLD'.capitalize() }} {{ s.replace('l', 'L') }} {{ s.replace('l', 'L', 2) }}",
    "{{ s.find('o') }} {{ s.rfind('o') }} {{ s.find('zz') }} {{ s.count('l') }} {{ u.find('你') }} {{ '-'.join(['a', 'b']) }} {{ ''.join(words) }}",
    "{{ '{} + {} = {}'.format(1, 2, 3) }} {{ '{0}{1}{0}'.format('a', 'b') }} {{ '{name}!'.format(name='x') }} {{ '{:>5}|{:<4}|{:^5}|'.format('a', 'b', 'c') }} {{ '{:.2f}'.format(3.14159) }}",
    "{{ '123'.isdigit() }} {{ 'abc'.isalpha() }} {{ 'ab1'.isalnum() }} {{ '  '.isspace() }} {{ 'ab'.islower() }} {{ 'AB'.isupper() }} {{ 'a\\nb'.splitlines() }}",
    "{{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }} {{ l.index(2) }} {{ l.count(3) }}",
    "{{ msgs[1].content.startswith('h') and msgs[1].content.endswith('i') }}",
    # dict/list literals and namespace
    "{% set x = {'a': 1, 'b': [1, 2]} %}{{ x.a }}{{ x['b'][1] }}{{ x | length }}",
    "{% set ns = namespace(found=false) %}{% for m in msgs %}{% if m.role == 'tool' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}",
    "{{ dict(a=1, b=2) }} {{ namespace(a=1).a }}",
    # qwen-like fragments
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' }}{%- if message.content is string %}{{- message.content }}{%- else %}{%- for p in message.content %}{{- p.text }}{%- endfor %}{%- endif %}{{- '<|im_end|>\\n' }}{%- endfor %}",
    "{%- set content = '<think>\\nreason\\n</think>\\n\\nanswer' %}{{ content.split('</think>')[-1].lstrip('\\n') }}|{{ content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
    "{{ strftime_now('%Y-%m-%d %H:%M') }} {{ strftime_now('%d %b %Y') }}",
]

ERROR_CASES = [
    "{{ missing.attr }}",
    "{{ d.missing.attr }}",
    "{{ l[10].x }}",
    "{{ raise_exception('bad input') }}",
    "{% if %}",
    "{% for x in l %}no end",
    "{{ 1 + }}",
    "{{ 'a' + 1 }}",
    "{{ 1 + 2 ~ 3 }}",
    "{{ 1 / 0 }}",
    "{{ x | nosuchfilter }}",
    "{{ x is nosuchtest }}",
    "{% set x = l.append(4) %}",
    "{{ missing() }}",
    "{{ 'abc' < 1 }}",
    "{{ none | length }}",
    "{% endif %}",
    "{{ unterminated",
    "{# unterminated comment",
    "{{ 'unterminated }}",
    "{{ range(1000000) | length }}",
]


def main():
    env = make_env()
    out = {"jinja2_version": jinja2.__version__, "now_unix_seconds": FIXED_NOW,
           "vars": V, "cases": []}
    for src in CASES:
        try:
            rendered = env.from_string(src).render(**V)
        except Exception as e:  # noqa: BLE001
            print(f"case failed in jinja2: {src!r}: {e}", file=sys.stderr)
            sys.exit(1)
        out["cases"].append({"template": src, "expected": rendered})
    for src in ERROR_CASES:
        try:
            rendered = env.from_string(src).render(**V)
            print(f"error case rendered in jinja2: {src!r} -> {rendered!r}", file=sys.stderr)
            sys.exit(1)
        except Exception as e:  # noqa: BLE001
            out["cases"].append({"template": src, "error": f"{type(e).__name__}: {e}"})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "diff_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(out['cases'])} cases to {path}")


if __name__ == "__main__":
    main()
