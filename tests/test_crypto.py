"""`leptonhub.privacy.crypto`: chunked AES-256-GCM sealing (round trips, exact sizes, every kind of tampering) and the keyring
(file mode, passphrase, rotation, retirement)."""
from __future__ import annotations
import base64, json, os, random, stat
from pathlib import Path
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from leptonhub.privacy.crypto import (CHUNK, TAG, Envelope, IntegrityError, Keyring, KeyringError, open_blob, open_sealed,
                                      seal, seal_blob)

HEADER = 8 # magic (4 bytes) + chunk size (4 bytes)
def fast(n:int) -> settings:
    "Hypothesis settings: `n` examples, no per-example deadline (sealing 50 KB in 1-byte chunks takes a while)."
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- helpers

def rbytes(n:int, seed:int) -> bytes:
    "`n` pseudo-random bytes from `seed` (cheap to make, reproducible)."
    return random.Random(seed).randbytes(n)

def n_chunks(n:int, chunk:int) -> int: return max(1, -(-n // chunk))

def sealed_len(n:int, chunk:int) -> int: return HEADER + n + TAG * n_chunks(n, chunk)

def chunk_span(i:int, n:int, chunk:int) -> tuple[int, int]:
    "(start, stop) of sealed chunk `i` (ciphertext and tag) of an `n`-byte plaintext sealed with `chunk`."
    start = HEADER + i * (chunk + TAG)
    return start, start + min(chunk, n - i * chunk) + TAG

def rejects(sealed, key:bytes, blob_id:str) -> IntegrityError:
    "Assert opening `sealed` raises `IntegrityError` naming `blob_id` (and returns nothing); return the error."
    with pytest.raises(IntegrityError) as info: open_sealed(bytes(sealed), key, blob_id)
    assert blob_id in str(info.value), str(info.value)
    return info.value

@st.composite
def plaintexts(draw, max_len:int=50 * 1024):
    "(data, chunk): a chunk size in 1..4096 and data of 0..`max_len` bytes, often a whole number of chunks +/- 1."
    chunk = draw(st.integers(1, 4096))
    kind = draw(st.sampled_from(['any', 'boundary', 'small']))
    if kind == 'small': data = draw(st.binary(max_size=300))
    else:
        if kind == 'any': n = draw(st.integers(0, max_len))
        else:
            k = draw(st.integers(0, max_len // chunk))
            n = min(max(0, k * chunk + draw(st.sampled_from([-1, 0, 1]))), max_len)
        data = rbytes(n, draw(st.integers(0, 2**32 - 1)))
    return data, chunk

@st.composite
def multi_chunk(draw):
    "(data, chunk, id) with at least 3 chunks and small enough to tamper with quickly."
    chunk = draw(st.integers(1, 512))
    n = draw(st.integers(2 * chunk + 1, min(8 * chunk, 4096)))
    return rbytes(n, draw(st.integers(0, 2**32 - 1))), chunk, f"blob_{draw(st.integers(0, 10**6))}"

KEY, OTHER_KEY = bytes(range(32)), bytes(range(1, 33))

# ---------------------------------------------------------------- round trip and size

@fast(150)
@given(plaintexts(), st.binary(min_size=32, max_size=32), st.text(min_size=0, max_size=40))
def test_seal_round_trip_and_exact_length(dc, key, blob_id):
    data, chunk = dc
    sealed = seal(data, key, blob_id, chunk)
    assert len(sealed) == HEADER + len(data) + TAG * max(1, -(-len(data) // chunk))
    assert open_sealed(sealed, key, blob_id) == data
    assert open_sealed(memoryview(bytes(sealed)), key, blob_id) == data # bytes-like input is fine too

def test_empty_blob_is_one_tag_and_default_chunk():
    s = seal(b'', KEY, 'empty')
    assert len(s) == HEADER + TAG and s[:4] == b'LHB1' and int.from_bytes(s[4:8], 'little') == CHUNK == 4 << 20
    assert open_sealed(s, KEY, 'empty') == b''

def test_sealing_is_deterministic_per_key():
    "Same key and id give the same output (nonces are chunk counters, so a data key must seal one blob only); another key gives other ciphertext."
    d = rbytes(5000, 1)
    assert seal(d, KEY, 'x', 1000) == seal(d, KEY, 'x', 1000)
    assert seal(d, KEY, 'x', 1000)[HEADER:] != seal(d, OTHER_KEY, 'x', 1000)[HEADER:]

# ---------------------------------------------------------------- tampering: every change must raise IntegrityError

@fast(300)
@given(multi_chunk(), st.data())
def test_any_single_bit_flip_is_detected(dcb, draw):
    data, chunk, bid = dcb
    sealed = bytearray(seal(data, KEY, bid, chunk))
    bit = draw.draw(st.integers(0, 8 * len(sealed) - 1), label='bit')
    sealed[bit // 8] ^= 1 << (bit % 8)
    rejects(sealed, KEY, bid)

@pytest.mark.parametrize('n,chunk', [(0, 64), (11, 64), (64, 64), (100, 4096), (1000, CHUNK)])
def test_any_bit_flip_in_the_header_of_a_one_chunk_blob_is_detected(n, chunk):
    "The header's chunk size is part of what was sealed: changing it must not go unnoticed, even with one chunk."
    data = rbytes(n, n)
    sealed = seal(data, KEY, 'one', chunk)
    opened = []
    for bit in range(8 * HEADER):
        s = bytearray(sealed)
        s[bit // 8] ^= 1 << (bit % 8)
        try: opened.append((bit, bytes(open_sealed(s, KEY, 'one')) == data))
        except IntegrityError as e: assert 'one' in str(e)
    assert opened == [], f'header bit flips (bit, same data) that opened without error: {opened}'

@fast(200)
@given(multi_chunk(), st.data())
def test_swapping_two_chunks_is_detected(dcb, draw):
    data, chunk, bid = dcb
    sealed = bytes(seal(data, KEY, bid, chunk))
    full = len(data) // chunk # chunks of exactly `chunk` bytes: those can be swapped without changing the length
    i, j = draw.draw(st.lists(st.integers(0, full - 1), min_size=2, max_size=2, unique=True), label='i, j')
    (a, b), (c, d) = chunk_span(min(i, j), len(data), chunk), chunk_span(max(i, j), len(data), chunk)
    swapped = sealed[:a] + sealed[c:d] + sealed[b:c] + sealed[a:b] + sealed[d:]
    assert len(swapped) == len(sealed) and swapped != sealed
    rejects(swapped, KEY, bid)

@fast(200)
@given(multi_chunk(), st.data())
def test_dropping_trailing_chunks_is_detected(dcb, draw):
    "Truncation exactly at a chunk boundary: the new last chunk was not sealed as last."
    data, chunk, bid = dcb
    sealed = bytes(seal(data, KEY, bid, chunk))
    k = n_chunks(len(data), chunk)
    keep = draw.draw(st.integers(0, k - 1), label='chunks kept')
    rejects(sealed[:HEADER + keep * (chunk + TAG)], KEY, bid)

@fast(300)
@given(multi_chunk(), st.data())
def test_truncating_anywhere_is_detected(dcb, draw):
    "Cut the sealed blob at any length shorter than it is, inside a chunk or not."
    data, chunk, bid = dcb
    sealed = bytes(seal(data, KEY, bid, chunk))
    near_boundary = st.builds(lambda k, off: HEADER + k * (chunk + TAG) + off,
                              st.integers(0, n_chunks(len(data), chunk) - 1),
                              st.sampled_from([-1, 0, 1, TAG - 1, TAG, TAG + 1]) | st.integers(-TAG - 2, TAG + 2))
    cut = draw.draw(st.one_of(st.integers(0, len(sealed) - 1), near_boundary).map(lambda c: min(max(c, 0), len(sealed) - 1)), label='cut')
    rejects(sealed[:cut], KEY, bid)

@pytest.mark.parametrize('chunk', [1, 7, 16, 64, 1000])
@pytest.mark.parametrize('into', [1, 15, 16, 17, 'tag-1'])
def test_truncating_inside_a_chunk_is_detected(chunk, into):
    "Keep two whole chunks and the first `into` bytes of the third of a 4-chunk blob."
    data = rbytes(4 * chunk, chunk)
    sealed = bytes(seal(data, KEY, 'cut', chunk))
    into = chunk + TAG - 1 if into == 'tag-1' else into
    if into >= chunk + TAG: into = chunk + TAG - 1
    rejects(sealed[:HEADER + 2 * (chunk + TAG) + into], KEY, 'cut')

@pytest.mark.parametrize('chunk', [1, 16, 64])
def test_whole_chunks_plus_garbage_are_not_accepted(chunk):
    "Two genuine chunks of a longer blob followed by 16 bytes of anything: not a blob this key sealed."
    data = rbytes(5 * chunk, 3)
    sealed = bytes(seal(data, KEY, 'g', chunk))
    rejects(sealed[:HEADER + 2 * (chunk + TAG)] + os.urandom(TAG), KEY, 'g')

def test_appending_bytes_or_a_chunk_is_detected():
    data, chunk = rbytes(3000, 5), 1000
    sealed = bytes(seal(data, KEY, 'app', chunk))
    other = bytes(seal(rbytes(4000, 6), KEY, 'app', chunk))
    for extra in (b'\x00', os.urandom(TAG), os.urandom(chunk + TAG), other[HEADER + 3 * (chunk + TAG):]):
        rejects(sealed + extra, KEY, 'app')

def splice(into:bytes, frm:bytes, i:int, n:int, chunk:int) -> bytes:
    a, b = chunk_span(i, n, chunk)
    return into[:a] + frm[a:b] + into[b:]

@fast(100)
@given(multi_chunk(), st.data())
def test_splicing_a_chunk_from_a_blob_sealed_with_another_key_is_detected(dcb, draw):
    data, chunk, bid = dcb
    sealed, foreign = bytes(seal(data, KEY, bid, chunk)), bytes(seal(data, OTHER_KEY, bid, chunk))
    i = draw.draw(st.integers(0, n_chunks(len(data), chunk) - 1), label='chunk')
    rejects(splice(sealed, foreign, i, len(data), chunk), KEY, bid)

@fast(100)
@given(multi_chunk(), st.data())
def test_splicing_a_chunk_from_another_blob_id_with_the_same_key_is_detected(dcb, draw):
    data, chunk, bid = dcb
    sealed, foreign = bytes(seal(data, KEY, bid, chunk)), bytes(seal(data, KEY, bid + '_other', chunk))
    i = draw.draw(st.integers(0, n_chunks(len(data), chunk) - 1), label='chunk')
    rejects(splice(sealed, foreign, i, len(data), chunk), KEY, bid)
    rejects(foreign, KEY, bid) # the whole blob under the wrong id as well

@fast(100)
@given(plaintexts(max_len=20_000), st.binary(min_size=32, max_size=32))
def test_a_wrong_key_is_detected(dc, wrong):
    data, chunk = dc
    if wrong == KEY: wrong = OTHER_KEY
    e = rejects(seal(data, KEY, 'wk', chunk), wrong, 'wk')
    assert 'chunk 0' in str(e)

@pytest.mark.parametrize('bad', [b'', b'LHB1', b'LHB1' + (64).to_bytes(4, 'little') + b'\x00' * 15,
                                 b'XXXX' + (64).to_bytes(4, 'little') + b'\x00' * 16,
                                 b'LHB1' + (0).to_bytes(4, 'little') + b'\x00' * 16])
def test_not_a_sealed_blob(bad):
    rejects(bad, KEY, 'junk')

# ---------------------------------------------------------------- keyring

def mode(p:Path) -> int: return stat.S_IMODE(p.stat().st_mode)

def b64s(kr:Keyring) -> list[str]:
    return [base64.b64encode(v).decode() for v in (*kr.masters.values(), *kr.secrets.values())]

@pytest.mark.parametrize('pw', [None, 'correct horse'])
def test_keyring_file_is_owner_only_and_reopens(tmp_path, pw):
    p = tmp_path/'k'/'keyring.json'
    kr = Keyring.create(p, pw)
    assert p.is_file() and mode(p) == 0o600
    assert set(kr.secrets) == {'audit', 'pseudonym', 'address'} and all(len(v) == 32 for v in kr.secrets.values())
    assert list(kr.masters) == [kr.current] and len(kr.masters[kr.current]) == 32
    again = Keyring.open(p, pw)
    assert (again.masters, again.current, again.secrets) == (kr.masters, kr.current, kr.secrets)
    kr.rotate()
    assert mode(p) == 0o600
    assert [x.name for x in p.parent.iterdir()] == ['keyring.json'] # no temporary files left behind

def test_create_refuses_to_overwrite(tmp_path):
    p = tmp_path/'keyring.json'
    Keyring.create(p)
    before = p.read_bytes()
    with pytest.raises(KeyringError, match='already exists'): Keyring.create(p)
    with pytest.raises(KeyringError, match='already exists'): Keyring.create(p, 'pw')
    assert p.read_bytes() == before

def test_open_missing_keyring_names_the_path(tmp_path):
    p = tmp_path/'nowhere'/'keyring.json'
    with pytest.raises(KeyringError) as info: Keyring.open(p)
    assert str(p) in str(info.value)
    assert isinstance(info.value, LookupError)

def test_open_garbage_or_foreign_file(tmp_path):
    p = tmp_path/'keyring.json'
    p.write_text('{not json')
    with pytest.raises(KeyringError, match='cannot be read'): Keyring.open(p)
    p.write_text(json.dumps({'format': 'something-else/9'}))
    with pytest.raises(KeyringError, match='not a leptonhub keyring'): Keyring.open(p)

def test_passphrase_file_holds_no_key(tmp_path):
    p = tmp_path/'keyring.json'
    kr = Keyring.create(p, 'pw-1')
    text = p.read_text()
    assert 'sealed' in json.loads(text) and 'keys' not in json.loads(text)
    for s in b64s(kr): assert s not in text
    assert 'pw-1' not in text
    kr.rotate() # still none after a save with two master keys
    text = p.read_text()
    assert len(kr.masters) == 2
    for s in b64s(kr): assert s not in text

def test_plain_file_does_hold_the_keys(tmp_path):
    "Contrast with the protected file: without a passphrase the keys are in the file (guarded by its mode only)."
    p = tmp_path/'keyring.json'
    kr = Keyring.create(p)
    for s in b64s(kr): assert s in p.read_text()

def test_wrong_or_missing_passphrase(tmp_path):
    p = tmp_path/'keyring.json'
    Keyring.create(p, 'right')
    with pytest.raises(KeyringError, match='wrong passphrase') as info: Keyring.open(p, 'wrong')
    assert str(p) in str(info.value)
    with pytest.raises(KeyringError, match='protected by a passphrase'): Keyring.open(p)

def test_change_passphrase(tmp_path):
    p = tmp_path/'keyring.json'
    kr = Keyring.create(p, 'one')
    kr.change_passphrase('two')
    with pytest.raises(KeyringError, match='wrong passphrase'): Keyring.open(p, 'one')
    assert Keyring.open(p, 'two').masters == kr.masters
    kr.change_passphrase(None)
    plain = Keyring.open(p)
    assert (plain.masters, plain.current, plain.secrets, plain.passphrase) == (kr.masters, kr.current, kr.secrets, None)
    assert mode(p) == 0o600

def test_wrap_unwrap_and_secret(tmp_path):
    kr = Keyring.create(tmp_path/'keyring.json')
    dk = os.urandom(32)
    kid, wrapped = kr.wrap(dk, 'b1')
    assert kid == kr.current and len(wrapped) == 12 + 32 + 16 and dk not in wrapped
    assert kr.unwrap(kid, wrapped, 'b1') == dk
    assert kr.secret('audit') == kr.secrets['audit']
    with pytest.raises(KeyringError, match='nope'): kr.secret('nope')

def corruptions(w:bytes):
    yield 'bit flip in nonce', bytes([w[0] ^ 1]) + w[1:]
    yield 'bit flip in key', w[:20] + bytes([w[20] ^ 0x80]) + w[21:]
    yield 'bit flip in tag', w[:-1] + bytes([w[-1] ^ 1])
    yield 'truncated by one', w[:-1]
    yield 'truncated to 20 bytes', w[:20]
    yield 'truncated to 5 bytes', w[:5]
    yield 'empty', b''

def test_corrupted_wrapped_key_raises_integrity_error(tmp_path):
    kr = Keyring.create(tmp_path/'keyring.json')
    kid, w = kr.wrap(os.urandom(32), 'blob_w')
    wrong = []
    for what, bad in corruptions(w):
        try: kr.unwrap(kid, bad, 'blob_w'); wrong.append((what, 'returned a key'))
        except IntegrityError as e: assert 'blob_w' in str(e)
        except Exception as e: wrong.append((what, f'{type(e).__name__}: {e}'))
    assert wrong == [], f'corrupted wrapped keys not reported as IntegrityError: {wrong}'
    with pytest.raises(IntegrityError, match='blob_other'): kr.unwrap(kid, w, 'blob_other') # wrapped for another blob

def test_rotation_rewrap_retire(tmp_path):
    p = tmp_path/'keyring.json'
    kr = Keyring.create(p, 'pw')
    secrets_before = dict(kr.secrets)
    dks = {f'blob_{i}': os.urandom(32) for i in range(4)}
    old_envs = {b: kr.wrap(dk, b) for b, dk in dks.items()}
    data = rbytes(10_000, 9)
    sealed, env = seal_blob(data, kr, 'blob_s', chunk=4096)
    old = kr.current
    assert {kid for kid, _ in old_envs.values()} == {old} and env.kid == old

    new = kr.rotate()
    assert new == kr.current != old and set(kr.masters) == {old, new}
    assert Keyring.open(p, 'pw').current == new # saved
    assert all(kr.unwrap(*old_envs[b], b) == dk for b, dk in dks.items()) # old envelopes still open before retiring
    new_envs = {b: kr.rewrap(*old_envs[b], b) for b in dks}
    assert all(kid == new and w != old_envs[b][1] for b, (kid, w) in new_envs.items())
    env2 = Envelope(*kr.rewrap(env.kid, env.wrapped, 'blob_s'))
    kr.retire(old)
    assert set(kr.masters) == {new}

    fresh = Keyring.open(p, 'pw')
    assert set(fresh.masters) == {new} and fresh.current == new
    assert fresh.secrets == secrets_before == kr.secrets # secrets survive rotation unchanged
    for b, dk in dks.items():
        assert fresh.unwrap(*new_envs[b], b) == dk
        with pytest.raises(KeyringError) as info: fresh.unwrap(*old_envs[b], b)
        assert old in str(info.value) and b in str(info.value)
    assert open_blob(sealed, fresh, 'blob_s', env2) == data
    with pytest.raises(KeyringError, match='blob_s'): open_blob(sealed, fresh, 'blob_s', env)

def test_retiring_the_current_key_is_refused(tmp_path):
    p = tmp_path/'keyring.json'
    kr = Keyring.create(p)
    cur = kr.current
    with pytest.raises(KeyringError, match='current'): kr.retire(cur)
    assert cur in kr.masters and cur in Keyring.open(p).masters
    kid, w = kr.wrap(os.urandom(32), 'b')
    kr.rotate()
    with pytest.raises(KeyringError): kr.retire(kr.current)
    kr.retire(cur)
    with pytest.raises(KeyringError, match='not in the keyring'): kr.unwrap(kid, w, 'b')

# ---------------------------------------------------------------- seal_blob / open_blob

@pytest.mark.parametrize('n,chunk', [(0, CHUNK), (1, CHUNK), (200_000, CHUNK), (200_000, 4096)])
def test_seal_blob_round_trip_hides_plaintext(tmp_path, n, chunk):
    kr = Keyring.create(tmp_path/'keyring.json')
    marker = b'PATIENT-0042-DIAGNOSIS-'
    data = (marker * (n // len(marker) + 1))[:n]
    sealed, env = seal_blob(data, kr, 'blob_m', chunk)
    assert isinstance(env, Envelope) and env.kid == kr.current
    assert len(sealed) == sealed_len(n, chunk)
    if n >= len(marker): assert marker not in sealed and marker[:8] not in sealed
    assert open_blob(sealed, kr, 'blob_m', env) == data
    again, env2 = seal_blob(data, kr, 'blob_m', chunk) # a fresh data key each time
    assert env2.wrapped != env.wrapped and (n == 0 or again[HEADER:] != sealed[HEADER:])
    with pytest.raises(IntegrityError, match='blob_m'): open_blob(sealed, kr, 'blob_m', env2) # the other blob's key
    with pytest.raises(IntegrityError, match='blob_x'): open_blob(sealed, kr, 'blob_x', env) # another id
