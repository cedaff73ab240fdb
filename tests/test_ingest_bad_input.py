"""Malformed and awkward inputs for `collect`/`ingest`: each failure is one `InputError`/`SchemaError` naming its file (and line)."""
from __future__ import annotations
from pathlib import Path
import numpy as np, pandas as pd, pytest
from leptonhub.core import InputError, SchemaError
from leptonhub.platform.ingest import collect, ingest, sniff
from leptonhub.platform.schema import Schema, Field

MISSING, FOLDER = object(), object() # markers for "no file here" and "a folder with this name"
DEEP = 100_000 # nesting depth for the deeply-nested JSON cases

# ---------------------------------------------------------------- helpers

def write(path:Path, content) -> Path:
    "Create `path` holding `content` (str as UTF-8, bytes as is, `FOLDER`, or `MISSING`) and return it."
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is FOLDER: path.mkdir()
    elif isinstance(content, bytes): path.write_bytes(content)
    elif content is not MISSING: path.write_bytes(content.encode('utf-8'))
    return path

def fails(exc:type, fn, file=None, row:int|None=None, says:str|None=None) -> Exception:
    "Assert `fn()` raises exactly `exc` naming `file` (and `row`) in its message; return the exception."
    with pytest.raises(Exception) as info: fn()
    e = info.value
    assert type(e) is exc, f'expected {exc.__name__}, got {type(e).__module__}.{type(e).__name__}: {e}'
    assert isinstance(e, ValueError)
    msg = str(e)
    if file is not None: assert str(file) in msg and str(e.file) == str(file), msg
    if row is not None: assert e.row == row and f'row {row}' in msg, msg
    if says is not None: assert says in msg, msg
    return e

def listing(folder:Path) -> set[str]:
    "Every path under `folder`, relative to it."
    return {str(p.relative_to(folder)) for p in folder.rglob('*')}

# ---------------------------------------------------------------- the corpus of bad files

JUNK = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes() # random bytes, NULs included
LATIN1_VALUES = 'name,city\nJosé,Zürich\nRené,Köln\n'.encode('latin-1') # é is byte 13

BAD_FILES = [ # id, file name, content, collect kwargs, error type, row, message fragment
    ('truncated-mid-row', 't.csv', 'a,b,c\n1,2,3\n4,5', {}, InputError, 3, 'expected 3 fields, found 2'),
    ('truncated-mid-quote', 't.csv', 'a,b,c\n1,2,3\n4,5,6\n7,"8', {}, InputError, 4, 'expected 3 fields, found 2'),
    ('ragged-too-many', 'r.csv', 'a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n', {}, InputError, 3, 'expected 3 fields, found 4'),
    ('ragged-too-few', 'r.csv', 'a,b,c\n1,2,3\n4,5,6\n7,8\n', {}, InputError, 4, 'expected 3 fields, found 2'),
    ('ragged-no-header', 'r.csv', '1,2,3\n4,5,6\n7,8,9\n10,11\n', {}, InputError, 4, 'expected 3 fields, found 2'),
    ('ragged-crlf', 'r.csv', 'a,b\r\n1,2\r\n3\r\n', {}, InputError, 3, 'expected 2 fields, found 1'),
    ('ragged-semicolon', 'r.csv', 'a;b;c\n1;2;3\n4;5;6;7\n', {}, InputError, 3, 'expected 3 fields, found 4'),
    ('empty', 'e.csv', '', {}, InputError, None, 'is empty'),
    ('blank-lines-only', 'e.csv', '\n  \n\n', {}, InputError, None, 'is empty'),
    ('header-only', 'h.csv', 'a,b,c\n', {}, InputError, None, 'has no rows'),
    ('missing', 'nope.csv', MISSING, {}, InputError, None, 'no such file'),
    ('folder', 'dir.csv', FOLDER, {}, InputError, None, 'is a folder, not a file'),
    ('folder-no-suffix', 'dir', FOLDER, {}, InputError, None, 'is a folder, not a file'),
    ('binary-junk-csv', 'junk.csv', JUNK, {}, InputError, None, 'NUL bytes'),
    ('binary-junk-bin', 'junk.bin', JUNK, {}, InputError, None, 'unknown format'),
    ('binary-junk-no-nul', 'junk.csv', bytes(range(1, 256)) * 8, {}, InputError, None, None),
    ('nul-bytes', 'nul.csv', b'a,b\n1,2\n3\x00,4\n', {}, InputError, None, 'NUL bytes'),
    ('latin1-header-as-utf8', 'l.csv', 'größe;gewicht\n1,72;68\n'.encode('latin-1'), {'encoding': 'utf-8'},
     InputError, 1, 'is not valid utf-8 text (byte 2)'),
    ('latin1-values-as-utf8', 'l.csv', LATIN1_VALUES, {'encoding': 'utf-8'}, InputError, 2, 'is not valid utf-8 text (byte 13)'),
    ('invalid-json', 'bad.json', '[{"a": 1},\n {"a": 2,]', {}, InputError, 2, 'is not valid JSON'),
    ('invalid-jsonl', 'bad.jsonl', '{"a": 1}\n{"a": 2\n{"a": 3}\n', {}, InputError, 2, 'is not valid JSON'),
    ('json-list-of-numbers', 'n.json', '[1, 2, 3]', {}, InputError, None, 'JSON must hold records'),
    ('json-list-of-lists', 'n.json', '[[1, 2], [3, 4]]', {}, InputError, None, 'JSON must hold records'),
    ('json-records-and-junk', 'n.json', '[{"a": 1}, 2]', {}, InputError, None, 'JSON must hold records'),
    ('json-data-of-numbers', 'n.json', '{"data": [1, 2]}', {}, InputError, None, 'JSON must hold records'),
    ('json-string', 'n.json', '"text"', {}, InputError, None, 'JSON must hold records'),
    ('json-number', 'n.json', '42', {}, InputError, None, 'JSON must hold records'),
    ('json-null', 'n.json', 'null', {}, InputError, None, 'JSON must hold records'),
    ('json-true', 'n.json', 'true', {}, InputError, None, 'JSON must hold records'),
    ('jsonl-numbers', 'n.jsonl', '1\n2\n', {}, InputError, None, 'JSON must hold records'),
    ('json-empty-list', 'n.json', '[]', {}, InputError, None, 'has no rows'),
    ('deep-lists', 'deep.json', '[' * DEEP + ']' * DEEP, {}, InputError, None, 'nested too deeply'),
    ('deep-dicts', 'deep.json', '{"a":' * DEEP + '1' + '}' * DEEP, {}, InputError, None, 'nested too deeply'),
    ('deep-in-record', 'deep.json', '[{"x": ' + '{"a":' * DEEP + '1' + '}' * DEEP + '}]', {}, InputError, None, 'nested too deeply'),
    ('deep-jsonl', 'deep.jsonl', '{"x": ' + '[' * DEEP + ']' * DEEP + '}\n', {}, InputError, None, 'nested too deeply'),
    ('fake-parquet', 'fake.parquet', b'name,age\nann,3\n', {}, InputError, None, 'is not a readable Parquet file'),
    ('fake-parquet-magic', 'fake.parquet', b'PAR1' + JUNK + b'PAR1', {}, InputError, None, 'is not a readable Parquet file'),
]

@pytest.mark.parametrize('name,content,kw,exc,row,says', [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_file(tmp_path, name, content, kw, exc, row, says):
    "Each bad file fails with one `InputError` that names the file, and the line where it is known."
    path = write(tmp_path/name, content)
    e = fails(exc, lambda: collect(path, **kw), file=path, row=row, says=says)
    if row is None: assert e.row is None

def test_bad_file_through_ingest(tmp_path):
    "`ingest` lets the first bad source's error through unchanged, after reading the good ones."
    good, bad = write(tmp_path/'good.csv', 'a,b\n1,2\n'), write(tmp_path/'bad.csv', 'a,b\n1,2\n3,4,5\n')
    fails(InputError, lambda: ingest([good, bad]), file=bad, row=3, says='expected 2 fields, found 3')

def test_missing_file_behind_dotdot(tmp_path):
    "A path that climbs out with `..` is reported as given, not resolved elsewhere."
    path = tmp_path/'sub'/'..'/'..'/'nope.csv'
    fails(InputError, lambda: collect(path), file=path, says='no such file')

def test_nul_byte_past_the_sniffed_sample_is_quarantined(tmp_path):
    "A NUL byte beyond the first 64 KiB reaches the data: the schema sees an unreadable number and quarantines its row."
    rows = ''.join(f'{i},{i % 7}\n' for i in range(20_000))
    path = write(tmp_path/'late.csv', ('a,b\n' + rows).encode() + b'3\x00,4\n')
    assert path.stat().st_size > 1 << 16
    res = ingest([path], schema=Schema({'a': Field('int'), 'b': Field('int')}))
    assert len(res.data) == 20_000
    q = res.quarantine
    assert q.source_row.tolist() == [20_002]
    assert q.reason.tolist() == ["a: '3\\x00' is not a valid int"]

# ---------------------------------------------------------------- databases

@pytest.fixture
def clinic(tmp_path) -> str:
    "SQLite URL of a database with one table `visits`."
    import sqlalchemy as sa
    url = f"sqlite:///{tmp_path/'clinic.db'}"
    eng = sa.create_engine(url)
    pd.DataFrame({'id': [1, 2, 3], 'bp': [120, 135, 150]}).to_sql('visits', eng, index=False)
    eng.dispose()
    return url

@pytest.mark.parametrize('query,says', [('select * from nope', 'no such table: nope'), ('selec 1', 'syntax error')],
                         ids=['missing-table', 'syntax-error'])
def test_sql_error(clinic, query, says):
    "A failing query is an `InputError` naming the database, through `collect` and `ingest` alike."
    fails(InputError, lambda: collect(clinic, query=query), file=clinic, says=says)
    fails(InputError, lambda: ingest([(clinic, query)]), file=clinic, says=says)

def test_sql_no_rows(clinic):
    "A query that returns nothing is an `InputError` naming the database."
    fails(InputError, lambda: collect(clinic, query='select * from visits where bp > 999'), file=clinic, says='has no rows')

def test_sql_read(clinic):
    "A query's rows arrive with provenance."
    df = collect(clinic, query='select * from visits where bp > 125', name='clinic')
    assert df.bp.tolist() == [135, 150] and df.source.tolist() == ['clinic'] * 2 and df.source_row.tolist() == [1, 2]

def test_sql_missing_driver_is_input_error():
    "A URL whose database driver is not installed (or unreachable) is an `InputError`, not an `ImportError`."
    e = fails(InputError, lambda: collect('postgresql://u:s3cret@127.0.0.1:1/db', query='select 1'))
    assert '127.0.0.1' in str(e)

def test_sql_error_hides_password(tmp_path):
    "A database password never appears in an error message or its `file`."
    url = f"sqlite://u:s3cret@/{tmp_path/'x.db'}"
    e = fails(InputError, lambda: collect(url, query='select 1'))
    assert 's3cret' not in str(e) and 's3cret' not in str(e.file)

# ---------------------------------------------------------------- schema mismatches

def test_schema_column_no_source_has(tmp_path):
    "A schema column that no source has is a `SchemaError` naming the column and the sources."
    a, b = write(tmp_path/'north.csv', 'age,sex\n50,1\n'), write(tmp_path/'south.csv', 'age,sex\n60,0\n')
    sch = Schema({'age': Field('int'), 'pulse': Field('int')})
    e = fails(SchemaError, lambda: ingest([a, b], schema=sch), says="needs ['pulse']")
    assert e.column == 'pulse' and 'north' in str(e) and 'south' in str(e)

def test_every_row_invalid(tmp_path):
    "When every row breaks the schema the error names the file, the first row and why it failed."
    path = write(tmp_path/'inv.csv', 'a,b\n100,2\n300,4\n')
    sch = Schema({'a': Field('int', max=10), 'b': Field('int')})
    fails(InputError, lambda: ingest([path], schema=sch), file=path, row=2, says='every row is invalid (2); the first: a: 100 is above 10')

def test_every_row_unreadable(tmp_path):
    "Values that cannot be read as the declared type make every row invalid, with the bad value quoted."
    path = write(tmp_path/'txt.csv', 'a\nx\ny\n')
    fails(InputError, lambda: ingest([path], schema=Schema({'a': Field('int')})), file=path, row=2,
          says="every row is invalid (2); the first: a: 'x' is not a valid int")

def test_keys_not_in_schema(tmp_path):
    "Dedupe keys that are not schema columns are a `SchemaError` naming the key."
    path = write(tmp_path/'k.csv', 'id,age,bp\np1,50,120\n')
    e = fails(SchemaError, lambda: ingest([path], schema=SCHEMA, keys=['patient']), says="['patient']")
    assert e.column == 'patient'

CONFUSABLES = {'cyrillic-a': '\u0430ge', 'fullwidth': '\uff41\uff47\uff45', 'zero-width-space': 'age\u200b',
               'greek-omicron': 'bl\u03bfod'}

@pytest.mark.parametrize('col', CONFUSABLES.values(), ids=CONFUSABLES.keys())
def test_confusable_column_is_not_the_schema_column(tmp_path, col):
    "A column name that only looks like the schema's is kept as written and does not satisfy the schema."
    path = write(tmp_path/'conf.csv', f'{col},sex\n50,1\n')
    assert collect(path).columns.tolist()[:2] == [col, 'sex']
    target = 'blood' if 'bl' in col else 'age'
    e = fails(SchemaError, lambda: ingest([path], schema=Schema({target: Field('int'), 'sex': Field('int')})),
              says=f"needs [{target!r}] but no source (conf) has it")
    assert e.column == target

def test_confusable_columns_stay_apart(tmp_path):
    "Look-alike column names in one file are three columns, not one."
    path = write(tmp_path/'conf.csv', '\u0430ge,age,\uff41\uff47\uff45\n1,2,3\n')
    df = collect(path)
    assert df[['\u0430ge', 'age', '\uff41\uff47\uff45']].iloc[0].tolist() == [1, 2, 3]

# ---------------------------------------------------------------- hostile names and values

def test_dotdot_source_name_is_only_a_label(tmp_path):
    "A source name with `../` is kept verbatim as a label; nothing is written anywhere."
    data = write(tmp_path/'in'/'site.csv', 'a,b\n1,2\n3,4\n')
    before = listing(tmp_path)
    res = ingest({'../../etc/passwd': data, '..\\..\\x': pd.DataFrame({'a': [5], 'b': [6]})})
    assert listing(tmp_path) == before
    assert res.data.source.astype(str).tolist() == ['../../etc/passwd'] * 2 + ['..\\..\\x']
    assert res.data.source_file.astype(str).tolist() == [str(data)] * 2 + ['<dataframe>']
    assert res.data.a.tolist() == [1, 3, 5]

def test_dotdot_in_path_reads_that_file(tmp_path):
    "A path with `..` segments reads the file it points to, named after its stem."
    write(tmp_path/'data'/'site.csv', 'a,b\n1,2\n')
    (tmp_path/'other').mkdir()
    df = collect(tmp_path/'other'/'..'/'data'/'site.csv')
    assert df.source.tolist() == ['site'] and df.a.tolist() == [1]

METACHARACTERS = ['1; DROP TABLE visits; --', "'; DELETE FROM x WHERE '1'='1", '$(rm -rf /)', '`whoami`',
                  'a | b && c > /tmp/pwned', '%s %n {0} {__class__}', '=cmd|" /C calc"!A0', '<script>alert(1)</script>',
                  '\\x00 \\n', 'Robert"); DROP TABLE Students;--']

def _meta_csv(path:Path) -> Path:
    "A CSV whose `v` column holds `METACHARACTERS`, quoted as CSV requires."
    quote = lambda s: '"' + s.replace('"', '""') + '"'
    return write(path, 'id,v\n' + ''.join(f'{i},{quote(s)}\n' for i, s in enumerate(METACHARACTERS)))

def test_metacharacters_are_plain_data(tmp_path):
    "SQL and shell metacharacters in values are read as text, unchanged, and nothing is executed."
    path = _meta_csv(tmp_path/'meta.csv')
    before = listing(tmp_path)
    res = ingest([path], schema=Schema({'id': Field('int'), 'v': Field('str')}))
    assert res.data.v.tolist() == METACHARACTERS and len(res.quarantine) == 0
    assert listing(tmp_path) == before

def test_metacharacters_through_sql(clinic):
    "Values read back from a database are unchanged and the query ran only once (the table is still there)."
    import sqlalchemy as sa
    eng = sa.create_engine(clinic)
    pd.DataFrame({'v': METACHARACTERS}).to_sql('notes', eng, index=False)
    assert collect(clinic, query='select v from notes').v.tolist() == METACHARACTERS
    assert collect(clinic, query='select count(*) as n from visits').n.item() == 3

# ---------------------------------------------------------------- formats that must work

def test_semicolon_csv_is_sniffed(tmp_path):
    "A semicolon-separated file with a header is recognised and read."
    path = write(tmp_path/'semi.csv', 'id;age;city\np1;50;Bern\np2;61;Basel\n')
    assert sniff(path) == {'encoding': 'utf-8', 'sep': ';', 'header': True}
    df = collect(path)
    assert df.id.tolist() == ['p1', 'p2'] and df.age.tolist() == [50, 61] and df.city.tolist() == ['Bern', 'Basel']
    assert df.source_row.tolist() == [2, 3]

def test_tsv(tmp_path):
    "A `.tsv` file is read as tab-separated, with `?` as missing."
    df = collect(write(tmp_path/'t.tsv', 'a\tb\n1\t2.5\n3\t?\n'))
    assert df.a.tolist() == [1, 3] and df.b.iloc[0] == 2.5 and pd.isna(df.b.iloc[1])

def test_utf8_bom(tmp_path):
    "A byte-order mark is not part of the first column's name."
    path = write(tmp_path/'bom.csv', '\ufeffage,name\n1,Zoë\n2,Ärni\n')
    assert sniff(path)['encoding'] == 'utf-8-sig'
    df = collect(path)
    assert df.columns.tolist()[:2] == ['age', 'name'] and df.name.tolist() == ['Zoë', 'Ärni']

def test_latin1_detected(tmp_path):
    "A Latin-1 file read without `encoding=` decodes its accents."
    df = collect(write(tmp_path/'lat.csv', LATIN1_VALUES))
    assert df.name.tolist() == ['José', 'René'] and df.city.tolist() == ['Zürich', 'Köln']

@pytest.mark.parametrize('marker', ['?', '', 'NA', 'N/A', 'n/a', 'NaN', 'null', 'NULL', 'None', '-'])
def test_missing_markers(tmp_path, marker):
    "Every missing marker reads as missing in a typed column, and a row with one is kept, not quarantined."
    path = write(tmp_path/'q.csv', f'a,b\n1,{marker}\n{marker},2\n3,4\n')
    res = ingest([path], schema=Schema({'a': Field('int'), 'b': Field('float')}))
    assert len(res.quarantine) == 0
    assert res.data.a.isna().tolist() == [False, True, False] and res.data.b.isna().tolist() == [True, False, False]
    assert res.missing.loc['a', 'missing'] == 1 and res.missing.loc['b', 'missing'] == 1

def test_jsonl(tmp_path):
    "JSON Lines: one record per line, nested objects flattened, blank lines skipped."
    df = collect(write(tmp_path/'r.jsonl', '{"id": 1, "bp": {"sys": 120}}\n\n{"id": 2, "bp": {"sys": 135}}\n'))
    assert df.columns.tolist() == ['id', 'bp.sys', 'source', 'source_file', 'source_row']
    assert df['bp.sys'].tolist() == [120, 135] and df.source.tolist() == ['r', 'r']

def test_json_records_under_a_key(tmp_path):
    "`{'data': [...]}` is read as its records."
    df = collect(write(tmp_path/'d.json', '{"meta": {"v": 1}, "data": [{"a": 1}, {"a": 2}]}'))
    assert df.a.tolist() == [1, 2]

def test_parquet(tmp_path):
    "A Parquet file is read by its suffix, and by its magic bytes under another name."
    df = pd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z']})
    df.to_parquet(tmp_path/'ok.parquet')
    (tmp_path/'ok.data').write_bytes((tmp_path/'ok.parquet').read_bytes())
    for name in ('ok.parquet', 'ok.data'):
        got = collect(tmp_path/name)
        assert got.a.tolist() == [1, 2, 3] and got.b.tolist() == ['x', 'y', 'z'] and got.source_row.tolist() == [1, 2, 3]

def test_dataframe_source():
    "A DataFrame gets provenance and is not modified."
    df = pd.DataFrame({'x': [1, 2], 'source': ['lab', 'lab']})
    got = collect(df, name='notebook')
    assert df.columns.tolist() == ['x', 'source']
    assert got.columns.tolist() == ['x', 'source_original', 'source', 'source_file', 'source_row']
    assert got.source.tolist() == ['notebook'] * 2 and got.source_file.tolist() == ['<dataframe>'] * 2
    assert got.source_row.tolist() == [1, 2] and got.source_original.tolist() == ['lab', 'lab']

ROWS_WITH_GAPS = [ # file content, the line each data row starts on
    ('a,b\n1,2\n\n3,4\n', [2, 4]),
    ('a,b\n1,"x\ny"\n3,4\n', [2, 4]),
    ('a,b\n1,2\n3,4\n', [2, 3]),
]

@pytest.mark.parametrize('text,lines', ROWS_WITH_GAPS, ids=['blank-line', 'multi-line-value', 'plain'])
def test_source_row_is_the_line_in_the_file(tmp_path, text, lines):
    "`source_row` is the line a row starts on, so a person can open the file there."
    assert collect(write(tmp_path/'g.csv', text)).source_row.tolist() == lines

# ---------------------------------------------------------------- duplicates, quarantine and the ledger

SCHEMA = Schema({'id': Field('str', nullable=False), 'age': Field('int', min=18, max=100), 'bp': Field('float', min=60, max=250)})
MIXED = ('id,age,bp\n'
         'p1,50,120\n'      # line 2: kept
         'p2,61,135.5\n'    # line 3: kept
         'p1,50,120\n'      # line 4: exact duplicate of line 2
         'p3,150,110\n'     # line 5: age out of range
         'p4,40,n/a-x\n'    # line 6: bp unreadable
         'p1,50,120\n'      # line 7: exact duplicate of line 2
         'p2,62,140\n'      # line 8: repeats the key of line 3
         ',30,100\n'        # line 9: id missing
         'p5,45,?\n')       # line 10: kept, bp missing

def test_exact_duplicates_keep_the_first(tmp_path):
    "The first copy stays; each later copy is quarantined with a reason naming the first's line."
    res = ingest([write(tmp_path/'mixed.csv', MIXED)], schema=SCHEMA)
    assert res.data.source_row.tolist() == [2, 3, 8, 10]
    dups = res.quarantine[res.quarantine.reason.str.startswith('exact duplicate')]
    assert dups.source_row.tolist() == [4, 7] and dups.reason.tolist() == ['exact duplicate of row 2 of mixed'] * 2

def test_quarantine_reasons(tmp_path):
    "Every rejected row is in the quarantine, in file order, as read, with one reason."
    q = ingest([write(tmp_path/'mixed.csv', MIXED)], schema=SCHEMA, keys=['id']).quarantine
    assert q.source_row.tolist() == [4, 5, 6, 7, 8, 9]
    assert q.reason.tolist() == ['exact duplicate of row 2 of mixed', 'age: 150 is outside [18, 100]', "bp: 'n/a-x' is not a valid float",
                                 'exact duplicate of row 2 of mixed', "repeats the ['id'] of row 3 of mixed", 'id: missing but required']
    assert q.bp.tolist()[2] == 'n/a-x'

def test_key_dedupe_across_sources(tmp_path):
    "Rows repeating an earlier row's key in another source are quarantined, naming that source's row."
    a = write(tmp_path/'north.csv', 'id,age,bp\np1,50,120\np2,61,130\n')
    b = pd.DataFrame({'id': ['p3', 'p1'], 'age': [70, 51], 'bp': [140, 125]})
    res = ingest({'north': a, 'south': b}, schema=SCHEMA, keys=['id'])
    assert res.data.id.tolist() == ['p1', 'p2', 'p3'] and res.data.source.astype(str).tolist() == ['north', 'north', 'south']
    assert res.quarantine.reason.tolist() == ["repeats the ['id'] of row 2 of north"]
    assert res.quarantine.source.astype(str).tolist() == ['south'] and res.quarantine.source_row.tolist() == [2]

@pytest.mark.parametrize('keys', [None, ['id']], ids=['exact', 'keys'])
def test_counts_add_up_and_match_the_ledger(tmp_path, keys):
    "Kept plus quarantined rows are the rows read, and the ledger's counts say the same."
    res = ingest([write(tmp_path/'mixed.csv', MIXED)], schema=SCHEMA, keys=keys)
    n_dup, n_inv = (2 if keys is None else 3), 3
    assert len(res.data) + len(res.quarantine) == 9
    led = res.ledger.frame().set_index('step')
    assert led.loc['collect', ['rows_in', 'rows_out']].tolist() == [9, 9]
    assert led.loc['collect', 'bytes'] == len(MIXED.encode())
    assert led.loc['integrate', ['rows_in', 'rows_out']].tolist() == [9, 9]
    assert led.loc['clean', ['rows_in', 'rows_out', 'duplicates', 'invalid']].tolist() == [9, 9 - n_dup - n_inv, n_dup, n_inv]
    is_dup = res.quarantine.reason.str.contains('duplicate of|repeats the', regex=True)
    assert is_dup.sum() == n_dup and (~is_dup).sum() == n_inv
    assert res.ledger.totals()['rows_out'] == 9 + 9 + len(res.data)

# ---------------------------------------------------------------- numbers pandas cannot parse

HUGE_EXPONENTS = 'id,code,dose\n1,93008e7223344505,1.5\n2,A17,1e2147483648\n3,B2,2\n' # text with a huge exponent; a number column with one

@pytest.mark.parametrize('filler', ['', 'x' * 1_100_000], ids=['fast-reader', 'pandas-reader']) # a value over 1 MB sends the file to pandas' own reader
def test_huge_exponents_do_not_crash(tmp_path, filler):
    "Exponents of ten or more digits (which crash pandas 2.3's number parser with a segfault) are read through ingest, in a child process."
    import subprocess, sys, json
    path = write(tmp_path/'huge.csv', HUGE_EXPONENTS.replace('A17', 'A17' + filler))
    code = ("import sys, json; from leptonhub.platform.ingest import ingest; c = ingest(sys.argv[1]); d = c.data.drop(columns=['source', 'source_file', 'source_row']);"
            "print(json.dumps({'dtypes': {k: f.dtype for k, f in c.schema.fields.items()}, 'dose': d.dose.tolist(), 'code': d.code.str.len().tolist()}))")
    run = subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got['dtypes'] == {'id': 'int', 'code': 'str', 'dose': 'float'}, got['dtypes']
    assert got['dose'] == [1.5, float('inf'), 2.0] and got['code'] == [16, 3 + len(filler), 2], got
