"""The malformed inputs: bad files, bad dataset and principal names, bad options and bad request bodies.

Nothing here is stored as a file: each `Case` writes its input into a folder when asked (`case.make(folder)`), from fixed seeds,
so the corpus costs nothing in the repository and a 50 MB line or a gzip bomb exists only while its test runs.

A case names the entry points it goes through (`via`), the error class a library call must raise and the words its message
must hold (`says`). File cases also expect the file's path in the message; a case built around a path the message cannot
hold (a NUL byte) says so with `names_file=False`."""
from __future__ import annotations
import functools, gzip, io, json, zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.parquet as pq
from leptonhub.core import InputError, SchemaError, LeptonError

__all__ = ['Case', 'CASES', 'FILE_CASES', 'NAME_CASES', 'OPTION_CASES', 'BODY_CASES', 'GOOD_CSV', 'DEPTH', 'junk', 'parquet_bytes']

DEPTH = 10_000 # nesting depth of the deeply nested JSON cases
GOOD_CSV = 'id,age,city\np1,34,Bern\np2,51,Basel\np3,29,Chur\n'

@dataclass(frozen=True)
class Case:
    "One malformed input: how to make it, where it goes in, and what the refusal must say."
    name: str # the case's id
    kind: str # `file`, `name`, `option` or `body`
    make: Callable # `make(folder) -> dict`: `paths` (files), `name` (a dataset name), `argv`/`kw` (options) or `body`/`headers` (HTTP)
    says: tuple[str, ...] # words the error message must hold
    error: type = InputError # the class a library call raises
    via: tuple[str, ...] = ('ingest', 'publish', 'cli') # entry points: ingest, publish, cli, read, http
    names_file: bool = True # must the message name the file?

# ---------------------------------------------------------------- helpers that write inputs

def junk(n:int, seed:int=7, nul:bool=True) -> bytes:
    "`n` random bytes (with NUL bytes unless `nul` is false)."
    b = np.random.default_rng(seed).integers(0 if nul else 1, 256, n, dtype=np.uint8).tobytes()
    return b if nul or b'\x00' not in b else b.replace(b'\x00', b'\x01')

def _file(name:str, content:bytes|str) -> Callable:
    "A `make` that writes `content` to `folder/name`."
    def make(folder:Path) -> dict:
        p = Path(folder)/name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode('utf-8') if isinstance(content, str) else content)
        return {'paths': [p]}
    return make

def _lazy(name:str, content:Callable[[], bytes]) -> Callable:
    "A `make` that writes `content()` to `folder/name`; the bytes are built when a case first runs and kept for its other entry points."
    content = functools.cache(content)
    def make(folder:Path) -> dict: return _file(name, content())(folder)
    return make

def parquet_bytes(table:pa.Table, **kw) -> bytes:
    "`table` written as Parquet, in memory."
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **kw)
    return sink.getvalue().to_pybytes()

def _lying_parquet() -> bytes:
    "Parquet whose footer schema says column `age` is INT64 while its pages hold strings (the type byte of its schema element rewritten)."
    raw = bytearray(parquet_bytes(pa.table({'age': ['thirty', 'forty'], 'city': ['Bern', 'Basel']}), store_schema=False))
    n = int.from_bytes(raw[-8:-4], 'little')
    start = len(raw) - 8 - n
    footer = bytes(raw[start:-8])
    at = footer.rfind(b'\x15\x0c', 0, footer.find(b'age'))     # thrift compact: field 1 (type), i32 zigzag 12 = BYTE_ARRAY
    assert at >= 0, 'no BYTE_ARRAY type before the column name'
    raw[start + at + 1] = 0x04                                   # zigzag 4 = INT64
    return bytes(raw)

def _bad_footer_length() -> bytes:
    "Parquet whose footer length field points before the start of the file."
    b = bytearray(parquet_bytes(pa.table({'a': list(range(100))})))
    b[-8:-4] = (len(b) * 4).to_bytes(4, 'little')
    return bytes(b)

def _flipped_footer() -> bytes:
    "Parquet with every byte of its footer's first half inverted."
    b = bytearray(parquet_bytes(pa.table({'a': list(range(100)), 'b': ['x'] * 100})))
    n = int.from_bytes(b[-8:-4], 'little')
    start = len(b) - 8 - n
    for i in range(start, start + n // 2): b[i] ^= 0xFF
    return bytes(b)

def _hole_in_the_pages() -> bytes:
    "Parquet with its data pages overwritten by random bytes and the footer intact."
    b = bytearray(parquet_bytes(pa.table({'a': np.arange(5000), 'b': np.arange(5000) * 0.5}), compression='snappy'))
    n = int.from_bytes(b[-8:-4], 'little')
    b[4:len(b) - 8 - n] = junk(len(b) - 12 - n, seed=3)
    return bytes(b)

def _gzip_bomb() -> bytes:
    "1 GiB of zero bytes, gzip-compressed to about 1 MiB."
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode='wb', compresslevel=9) as z:
        block = bytes(1 << 20)
        for _ in range(1024): z.write(block)
    return buf.getvalue()

def _zip_bomb() -> bytes:
    "A zip archive holding 256 MiB of zeros in one member."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
        with z.open('data.csv', 'w') as f:
            block = bytes(1 << 20)
            for _ in range(256): f.write(block)
    return buf.getvalue()

def _ragged_late() -> bytes:
    "200,001 good lines, then one with a field too many: the error must name the line, far past the sniffed sample."
    rows = ''.join(f'{i},{i % 97},{i % 7}\n' for i in range(200_000))
    return ('a,b,c\n' + rows + '1,2,3,4\n').encode()

def _mixed_encoding() -> bytes:
    "UTF-8 for the first 100,000 rows, then a row in Latin-1."
    rows = ''.join(f'{i},Zürich\n' for i in range(100_000))
    return ('id,city\n' + rows).encode('utf-8') + '100000,Genève\n'.encode('latin-1')

def _symlink_loop(folder:Path) -> dict:
    "A path that is a symbolic link to itself."
    Path(folder).mkdir(parents=True, exist_ok=True)
    p = Path(folder)/'loop.csv'
    p.symlink_to(p)
    return {'paths': [p]}

def _folder(folder:Path) -> dict:
    p = Path(folder)/'site.csv'
    p.mkdir(parents=True)
    return {'paths': [p]}

def _with_kw(make:Callable, **kw) -> Callable:
    "`make`, with keywords for `ingest` and `publish`."
    return lambda folder: {**make(folder), 'kw': kw}

def _missing(folder:Path) -> dict: return {'paths': [Path(folder)/'no'/'such'/'site.csv']}

def _nul_in_path(folder:Path) -> dict:
    _file('site.csv', GOOD_CSV)(folder)
    return {'paths': [Path(str(Path(folder)/'site') + '\x00.csv')]}

def _good_then_bad(folder:Path) -> dict:
    "A good source before a bad one: the bad one must still stop the publish, with nothing of the good one kept."
    good = _file('north.csv', GOOD_CSV)(folder)['paths'][0]
    bad = _file('south.csv', 'id,age,city\np9,40,Zug\np10,41\n')(folder)['paths'][0]
    return {'paths': [good, bad], 'bad': bad}

# ---------------------------------------------------------------- bad files

FILE_CASES = [
    Case('csv-truncated-mid-row', 'file', _file('site.csv', GOOD_CSV + 'p4,3'), ('ragged table', 'expected 3 fields, found 2', 'row 5')),
    Case('csv-truncated-mid-quote', 'file', _file('site.csv', GOOD_CSV + 'p4,"3'), ('ragged table', 'row 5')),
    Case('csv-ragged-too-many', 'file', _file('site.csv', 'id,age,city\np1,34,Bern,extra\np2,51,Basel\n'), ('expected 3 fields, found 4', 'row 2')),
    Case('csv-ragged-too-few', 'file', _file('site.csv', 'id,age,city\np1,34,Bern\np2\n'), ('expected 3 fields, found 1', 'row 3')),
    Case('csv-ragged-after-200k-lines', 'file', _lazy('site.csv', _ragged_late), ('expected 3 fields, found 4', 'row 200002')),
    Case('csv-ragged-semicolons', 'file', _file('site.csv', 'id;age;city\np1;34;Bern\np2;51;Basel;CH\n'), ('expected 3 fields, found 4', 'row 3')),
    Case('csv-empty', 'file', _file('site.csv', ''), ('is empty',)),
    Case('csv-whitespace-only', 'file', _file('site.csv', ' \n\t\n  \r\n'), ('is empty',)),
    Case('csv-header-only', 'file', _file('site.csv', 'id,age,city\n'), ('has no rows',)),
    Case('csv-header-only-no-newline', 'file', _file('site.csv', 'id,age,city'), ('has no rows',)),
    Case('csv-duplicate-columns', 'file', _file('site.csv', 'id,age,age\np1,34,35\np2,51,52\n'), ('repeats the column name', "'age'", 'row 1')),
    Case('csv-duplicate-columns-after-strip', 'file', _file('site.csv', 'id,age, age\np1,34,35\n'), ('repeats the column name', "'age'")),
    Case('utf16-le-without-bom', 'file', _file('site.csv', GOOD_CSV.encode('utf-16-le')), ('UTF-16', 'byte-order mark', 'encoding=')),
    Case('utf16-be-without-bom', 'file', _file('site.csv', GOOD_CSV.encode('utf-16-be')), ('UTF-16', 'byte-order mark', 'encoding=')),
    Case('utf32-without-bom', 'file', _file('site.csv', GOOD_CSV.encode('utf-32-le')), ('UTF-32', 'byte-order mark', 'encoding=')),
    Case('latin1-declared-utf8', 'file', _with_kw(_file('site.csv', 'id,city\np1,Zürich\np2,Genève\n'.encode('latin-1')), encoding='utf-8'),
         ('is not valid utf-8 text', 'row 2', 'encoding='), via=('ingest', 'publish')),
    Case('latin1-after-64k-of-utf8', 'file', _lazy('site.csv', _mixed_encoding), ('is not valid utf-8 text', 'row 100002', 'encoding=')),
    Case('binary-junk-as-csv', 'file', _file('site.csv', junk(8192)), ('binary content', 'NUL bytes')),
    Case('binary-junk-no-suffix', 'file', _file('site', junk(8192, seed=8)), ('binary content',)),
    Case('png-renamed-csv', 'file', _file('site.csv', b'\x89PNG\r\n\x1a\n' + bytes(16) + junk(2048, seed=9)), ('binary content',)),
    Case('nul-byte-in-a-value', 'file', _file('site.csv', 'id,age\np1,3\x004\n'), ('NUL bytes',)),
    Case('gzip-bomb', 'file', _lazy('site.csv.gz', _gzip_bomb), ('binary content', 'not Parquet')),
    Case('zip-bomb', 'file', _lazy('site.zip', _zip_bomb), ('binary content', 'not Parquet')),
    Case('one-50mb-line', 'file', _lazy('site.csv', lambda: b'x' * (50 << 20)), ('has no rows',)),
    Case('one-50mb-line-of-fields', 'file', _lazy('site.csv', lambda: b'id,note\n' + b'p1,' + b'y' * (50 << 20) + b',z\n'), ('expected 2 fields, found 3', 'row 2')),
    Case('parquet-lying-schema', 'file', _lazy('site.parquet', _lying_parquet), ('is not a readable Parquet file',)),
    Case('parquet-footer-length-lies', 'file', _lazy('site.parquet', _bad_footer_length), ('is not a readable Parquet file',)),
    Case('parquet-footer-flipped', 'file', _lazy('site.parquet', _flipped_footer), ('is not a readable Parquet file',)),
    Case('parquet-pages-overwritten', 'file', _lazy('site.parquet', _hole_in_the_pages), ('is not a readable Parquet file',)),
    Case('parquet-truncated', 'file', _lazy('site.parquet', lambda: parquet_bytes(pa.table({'a': range(1000)}))[:-100]), ('is not a readable Parquet file',)),
    Case('parquet-magic-only', 'file', _file('site.parquet', b'PAR1PAR1'), ('is not a readable Parquet file',)),
    Case('csv-named-parquet', 'file', _file('site.parquet', GOOD_CSV), ('is not a readable Parquet file',)),
    Case('json-nested-10000-lists', 'file', _file('site.json', '[' * DEPTH + ']' * DEPTH), ('nested too deeply',)),
    Case('json-nested-10000-objects', 'file', _file('site.json', '[{"a": ' + '{"b": ' * DEPTH + '1' + '}' * DEPTH + '}]'), ('nested too deeply',)),
    Case('jsonl-nested-10000', 'file', _file('site.jsonl', '{"a": ' + '[' * DEPTH + ']' * DEPTH + '}\n'), ('nested too deeply',)),
    Case('json-truncated', 'file', _file('site.json', '[{"id": "p1", "age": 34}, {"id": "p2", "a'), ('is not valid JSON', 'row 1')),
    Case('json-scalar', 'file', _file('site.json', '"a string, not records"'), ('JSON must hold records',)),
    Case('json-not-utf8', 'file', _file('site.json', '[{"city": "Zürich"}]'.encode('latin-1')), ('is not UTF-8 JSON',)),
    Case('jsonl-one-bad-line', 'file', _file('site.jsonl', '{"id": 1}\n{"id": 2,}\n{"id": 3}\n'), ('is not valid JSON Lines', 'row 2')),
    Case('missing-file', 'file', _missing, ('no such file',)),
    Case('folder-not-file', 'file', _folder, ('is a folder, not a file',)),
    Case('symlink-loop', 'file', _symlink_loop, ('cannot read',)),
    Case('nul-byte-in-path', 'file', _nul_in_path, ('NUL byte', 'path'), names_file=False),
    Case('second-source-bad', 'file', _good_then_bad, ('expected 3 fields, found 2', 'row 3')),
]

# ---------------------------------------------------------------- bad dataset names

def _named(name:str) -> Callable:
    def make(folder:Path) -> dict: return {'name': name, **_file('site.csv', GOOD_CSV)(folder)}
    return make

def _name_case(case:str, name:str, via=('publish', 'cli', 'read', 'http')) -> Case:
    return Case(f'name-{case}', 'name', _named(name), ('is not allowed',), via=via, names_file=False)

NAME_CASES = [
    _name_case('dotdot-slash', '../../etc/passwd'),
    _name_case('dotdot', '..'),
    _name_case('slash', 'clinic/2024'),
    _name_case('backslash', 'clinic\\..\\x'),
    _name_case('nul-byte', 'clinic\x00.csv'),
    _name_case('sql', "x'; DROP TABLE datasets; --"),
    _name_case('shell', '$(rm -rf ~)'),
    _name_case('backticks', '`id`'),
    _name_case('pipe', 'a|b'),
    _name_case('cyrillic-a', 'clinic-d\u0430ta'),
    _name_case('rtl-override', 'clinic\u202etxt.exe'),
    _name_case('zero-width-space', 'cli\u200bnic'),
    _name_case('fullwidth', '\uff43\uff4c\uff49\uff4e\uff49\uff43'),
    _name_case('empty', ''),
    _name_case('space', 'heart disease'),
    _name_case('too-long', 'x' * 101),
    _name_case('leading-dash', '-rf', via=('publish', 'read', 'http')),
    _name_case('newline', 'clinic\nadmin'),
]

# ---------------------------------------------------------------- bad options

def _opt(argv:list, kw:dict, files:dict|None=None) -> Callable:
    "A `make` writing the good CSV (and `files`), with CLI arguments `argv` and `publish` keywords `kw` (`{f}` is the folder)."
    def make(folder:Path) -> dict:
        out = _file('site.csv', GOOD_CSV)(folder)
        for n, content in (files or {}).items(): _file(n, content)(folder)
        fill = lambda x: x.format(f=folder) if isinstance(x, str) else x
        return {**out, 'argv': [fill(a) for a in argv], 'kw': {k: fill(v) for k, v in kw.items()}}
    return make

def _schema_kw(doc) -> dict: return {'schema': 'SCHEMA:' + json.dumps(doc)}

OPTION_CASES = [
    Case('schema-not-json', 'option', _opt(['--schema', '{f}/s.json'], {'schema': 'FILE:{f}/s.json'}, {'s.json': '{"fields": {"age": '}),
         ('cannot read schema',), SchemaError, via=('cli', 'publish')),
    Case('schema-nested-10000', 'option', _opt(['--schema', '{f}/s.json'], {'schema': 'FILE:{f}/s.json'}, {'s.json': '{"fields": ' + '[' * DEPTH + ']' * DEPTH + '}'}),
         ('cannot read schema', 'nested too deeply'), SchemaError, via=('cli', 'publish')),
    Case('schema-not-utf8', 'option', _opt(['--schema', '{f}/s.json'], {'schema': 'FILE:{f}/s.json'}, {'s.json': '{"fields": {"größe": {"dtype": "int"}}}'.encode('latin-1')}),
         ('cannot read schema', 'UTF-8'), SchemaError, via=('cli', 'publish')),
    Case('schema-unknown-type', 'option', _opt(['--schema', '{f}/s.json'], {'schema': 'FILE:{f}/s.json'}, {'s.json': '{"fields": {"age": {"dtype": "int64"}}}'}),
         ("unknown type 'int64'",), SchemaError, via=('cli', 'publish')),
    Case('schema-rule-calls-code', 'option', _opt(['--schema', '{f}/s.json'], {'schema': 'FILE:{f}/s.json'},
                                                  {'s.json': json.dumps({'fields': {'id': {'dtype': 'str'}, 'age': {'dtype': 'int'}, 'city': {'dtype': 'str'}},
                                                                         'rules': [{'expr': "__import__('os').system('touch pwned')"}]})}),
         ('cannot be evaluated',), SchemaError, via=('cli', 'publish')),
    Case('keys-unknown-column', 'option', _opt(['--keys', 'patient'], {'keys': ['patient']}), ("['patient']", 'not columns of the schema'), SchemaError, via=('cli', 'publish')),
    Case('qi-unknown-column', 'option', _opt(['--qi', 'age,zip'], {'qi': ['age', 'zip']}), ("['zip']", 'quasi-identifiers'), via=('cli', 'publish')),
    Case('label-unknown-column', 'option', _opt(['--label', 'diagnosis'], {'label': 'diagnosis'}), ("'diagnosis'", 'label'), via=('cli', 'publish')),
    Case('pii-unknown-policy', 'option', _opt(['--pii', 'shred'], {'pii': 'shred'}), ("unknown PII policy 'shred'",), via=('cli', 'publish')),
    Case('names-too-few', 'option', _opt(['--names', 'a,b'], {'names': ['a', 'b']}), ('2 names', '3 columns'), via=('cli', 'publish')),
]

# ---------------------------------------------------------------- bad request bodies (HTTP only)

def _body(body:bytes|str, headers:dict|None=None) -> Callable:
    def make(folder:Path) -> dict:
        return {'body': body.encode('utf-8') if isinstance(body, str) else body, 'headers': {'content-type': 'application/json', **(headers or {})}}
    return make

BODY_CASES = [
    Case('body-nested-10000', 'body', _body('{"to": "lab", "purpose": "p", "params": ' + '{"a": ' * DEPTH + '1' + '}' * DEPTH + '}'), ('nested too deeply',), via=('http',)),
    Case('body-list-nested-10000', 'body', _body('[' * DEPTH + ']' * DEPTH), ('nested too deeply',), via=('http',)),
    Case('body-not-utf8', 'body', _body('{"to": "lab", "purpose": "Zürich"}'.encode('latin-1')), ('not UTF-8',), via=('http',)),
    Case('body-a-list', 'body', _body('[{"to": "lab", "purpose": "p"}]'), ('body',), via=('http',)),
    Case('body-empty', 'body', _body(''), ('body',), via=('http',)),
    Case('body-gzip-encoded', 'body', _body(gzip.compress(b'{"to": "lab", "purpose": "p"}'), {'content-encoding': 'gzip'}), ('body',), via=('http',)),
    Case('body-nul-in-name', 'body', _body('{"to": "lab\\u0000admin", "purpose": "p", "view": "columns", "columns": ["age"]}'), ('to',), via=('http',)),
    Case('body-huge-number', 'body', _body('{"to": "lab", "purpose": "p", "view": "aggregate", "params": {"epsilon": 1e999}}'), ('epsilon',), via=('http',)),
]

CASES = FILE_CASES + NAME_CASES + OPTION_CASES + BODY_CASES
assert len({c.name for c in CASES}) == len(CASES), 'case names must be unique'
